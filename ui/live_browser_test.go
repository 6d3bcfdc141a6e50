package ui

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/router"
)

// refusing is a destination that refuses "Refused" events with a
// HubSpot-like answer and delivers the rest.
type refusing struct{}

func (refusing) Policy() destinations.Policy {
	return destinations.Policy{MaxItems: 10, MaxWait: 5 * time.Millisecond, MaxInFlight: 1}
}

func (refusing) Send(_ context.Context, batch []destinations.Event) []destinations.Outcome {
	out := make([]destinations.Outcome, len(batch))
	for i, e := range batch {
		out[i] = destinations.Ok()
		if e.Get("event").String() == "Refused" {
			out[i] = destinations.Outcome{Result: destinations.DeadLetter, Class: "http_4xx", Status: 400,
				Reason: "HubSpot answered 400: Property values were not valid", Response: `{"status":"error","category":"VALIDATION_ERROR"}`}
		}
	}
	return out
}

// runRouter delivers the log's events to dest until the test ends, telling
// outcomes what became of each.
func runRouter(t *testing.T, log queue.Log, dest destinations.Destination, outcomes router.Observer) {
	t.Helper()
	m, err := router.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Destination: "hubspot", Observer: outcomes}, dest, log, zap.NewNop(), m)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := log.Subscribe(t.Context(), queue.SubscribeConfig{Group: r.Group(), Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		sub.Close()
	})
}

func TestBrowserLiveEvents(t *testing.T) {
	log := openTestLog(t)
	outcomes := router.NewOutcomes(100, "hubspot")
	runRouter(t, log, refusing{}, outcomes)
	h := newLiveHandler(t, LiveConfig{Log: log, Topic: "events", DLQTopic: "dlq", Outcomes: outcomes})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the browser's cleanup, so its stream has ended
	ctx := browser(t)

	rows := func(n int) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll("#events tbody tr").length === %d`, n),
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second))
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Click(chromedp.CSS(`a[href="/ui/live"]`)),
		chromedp.WaitVisible(chromedp.CSS("#filter")),
		chromedp.SendKeys(chromedp.CSS(`#filter input[name="userId"]`), "u-watched"),
		chromedp.Click(chromedp.CSS("#filter button")),
	); err != nil {
		t.Fatalf("log in and filter the live events by userId: %v", err)
	}
	// The form's GET navigates: ask until the filtered page's stream is open.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new URLSearchParams(location.search).get("userId") === "u-watched" &&
			(document.getElementById("stream-status") || {dataset: {}}).dataset.state === "live"`))
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live events filtered by userId did not open: %v", err)
		}
	}
	publish(t, log,
		segmentEvent("track", "Signed Up", "u-other", "other-1", "web"),
		segmentEvent("track", "Refused", "u-watched", "watched-refused", "web"),
		segmentEvent("identify", "", "u-other", "other-2", "web"),
		segmentEvent("track", "Signed Up", "u-watched", "watched-signed-up", "web"),
	)
	if err := chromedp.Do(ctx, rows(2)); err != nil {
		t.Fatalf("the list did not show the watched user's two events: %v", err)
	}
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr")].map(r => r.dataset.messageId)`))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[watched-signed-up watched-refused]" {
		t.Errorf("the filtered list shows %v, want the watched user's events, newest first", ids)
	}

	// Paused, the list stays still and counts what comes.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#pause"))); err != nil {
		t.Fatal(err)
	}
	publish(t, log, segmentEvent("page", "", "u-watched", "watched-page-1", "web"), segmentEvent("page", "", "u-watched", "watched-page-2", "web"))
	if err := chromedp.Do(ctx,
		fieldIs("#paused-count", "2 new — show"),
		rows(2),
		chromedp.Click(chromedp.CSS("#paused-count")),
		rows(4),
	); err != nil {
		t.Fatalf("pause did not count the new events, or show did not add them: %v", err)
	}

	// Opened, the refused event shows its JSON and its dead letter's
	// reason and HubSpot's answer.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#events tr[data-message-id="watched-refused"] td`)),
		chromedp.WaitVisible(chromedp.CSS(`#event-detail .event`)),
		chromedp.Poll[chromedp.Void](`(() => {
			const d = document.getElementById("event-detail");
			const o = d.querySelector('.outcome[data-destination="hubspot"]');
			return d.querySelector(".json").textContent.includes('"messageId": "watched-refused"') &&
				o && o.dataset.final === "dead_lettered" && o.textContent.includes("Property values were not valid") &&
				o.querySelector(".response").textContent === '{"status":"error","category":"VALIDATION_ERROR"}';
		})()`, chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#event-detail")))
		t.Fatalf("the opened event does not show its JSON and dead letter: %v\n%s", err, body)
	}
	screenshot(t, ctx, "live-events")
}
