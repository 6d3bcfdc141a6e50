package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/schemas"
)

// openTestLog opens an embedded log in the test's directory.
func openTestLog(t testing.TB) queue.Log {
	t.Helper()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: 2}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

func newLiveHandler(t testing.TB, live LiveConfig) *Handler {
	t.Helper()
	h, err := New(Config{AdminToken: testToken, Metrics: newTestMetrics().reg, Context: t.Context(), Live: live})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

// segmentEvent is an event as the gateway appends it.
func segmentEvent(typ, name, user, id, source string) queue.Message {
	v := map[string]any{"type": typ, "userId": user, "messageId": id, "_switchyard": map[string]string{"source": source},
		"receivedAt": time.Now().UTC().Format(time.RFC3339Nano), "properties": map[string]any{"plan": "pro"}}
	if name != "" {
		v["event"] = name
	}
	b, _ := json.Marshal(v)
	return queue.Message{Topic: "events", Key: []byte(user), Value: b}
}

func publish(t testing.TB, log queue.Log, msgs ...queue.Message) {
	t.Helper()
	if err := log.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// sseReader reads a stream's events by name.
type sseReader struct {
	events chan [2]string // name, data
	open   chan struct{}
}

func readSSE(t *testing.T, url string) *sseReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream %s: status %d", url, resp.StatusCode)
	}
	r := &sseReader{events: make(chan [2]string, 1000), open: make(chan struct{})}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": tap":
				close(r.open)
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && name != "":
				r.events <- [2]string{name, data}
				name, data = "", ""
			}
		}
	}()
	select {
	case <-r.open:
	case <-time.After(10 * time.Second):
		t.Fatal("the live stream did not open")
	}
	return r
}

// until reads tap events until one has messageId last, and returns the
// messageIds read.
func (r *sseReader) until(t *testing.T, last string) []string {
	t.Helper()
	var ids []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if ev[0] != "tap" {
				continue
			}
			var e liveEvent
			if err := json.Unmarshal([]byte(ev[1]), &e); err != nil {
				t.Fatalf("tap event %q: %v", ev[1], err)
			}
			ids = append(ids, e.MessageID)
			if e.MessageID == last {
				return ids
			}
		case <-timeout:
			t.Fatalf("no tap event %s; read %v", last, ids)
		}
	}
}

func TestLiveFilterMatches(t *testing.T) {
	e := liveEvent{Source: "web", Type: "track", UserID: "u1", Event: "Signed Up"}
	for _, tc := range []struct {
		f    liveFilter
		want bool
	}{
		{liveFilter{}, true},
		{liveFilter{Source: "web"}, true},
		{liveFilter{Source: "ios"}, false},
		{liveFilter{Type: "identify"}, false},
		{liveFilter{UserID: "u1", Event: "Signed Up", Type: "track", Source: "web"}, true},
		{liveFilter{UserID: "u2"}, false},
		{liveFilter{Event: "signed up"}, false},
	} {
		if got := tc.f.matches(e); got != tc.want {
			t.Errorf("%+v matches %+v: %v, want %v", tc.f, e, got, tc.want)
		}
	}
}

func TestLiveStreamFiltersOnTheServer(t *testing.T) {
	log := openTestLog(t)
	publish(t, log, segmentEvent("track", "Signed Up", "u2", "before", "web"))
	srv := httptest.NewServer(newLiveHandler(t, LiveConfig{Log: log, Topic: "events"}))
	t.Cleanup(srv.Close)

	byUser := readSSE(t, srv.URL+"/ui/stream?live=1&userId=u2")
	byAll := readSSE(t, srv.URL+"/ui/stream?live=1&source=web&type=track&event=Signed+Up")
	publish(t, log,
		segmentEvent("track", "Signed Up", "u1", "u1-signed-up", "web"),
		segmentEvent("identify", "", "u2", "u2-identify", "web"),
		segmentEvent("track", "Signed Up", "u3", "u3-from-ios", "ios"),
		segmentEvent("track", "Logged In", "u3", "u3-logged-in", "web"),
		segmentEvent("track", "Signed Up", "u2", "u2-signed-up", "web"),
	)
	if got := fmt.Sprint(byUser.until(t, "u2-signed-up")); got != "[u2-identify u2-signed-up]" {
		t.Errorf("userId=u2 saw %s", got)
	}
	if got := fmt.Sprint(byAll.until(t, "u2-signed-up")); got != "[u1-signed-up u2-signed-up]" {
		t.Errorf("source=web, type=track, event=Signed Up saw %s", got)
	}
}

func TestTheTapDropsForAViewerThatFallsBehindAndSaysHowMany(t *testing.T) {
	log := openTestLog(t)
	h := newLiveHandler(t, LiveConfig{Log: log, Topic: "events", Buffer: 2})
	v, err := h.tap.subscribe(liveFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// The viewer reads nothing while five events come: the tap keeps
	// reading, buffers two and counts three dropped.
	for i := range 5 {
		publish(t, log, segmentEvent("track", "E", "u", fmt.Sprint("m", i), "web"))
	}
	publish(t, log, segmentEvent("track", "E", "u", "m5", "web"))
	deadline := time.Now().Add(10 * time.Second)
	for v.dropped.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d, buffered %d; want 4 dropped", v.dropped.Load(), len(v.ch))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(v.ch) != 2 {
		t.Fatalf("buffered %d, want 2", len(v.ch))
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out strings.Builder
	err = h.runTap(ctx, v, func(b []byte) error { out.Write(b); cancel(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "event: tap\n"); n != 2 {
		t.Errorf("%d tap events written, want 2:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "event: tap-dropped\ndata: {\"dropped\":4}\n") {
		t.Errorf("no dropped count of 4 in:\n%s", out.String())
	}
	h.tap.unsubscribe(v)
	if h.tap.stop != nil {
		t.Error("the read goes on after the last viewer left")
	}
}

func TestLiveEndpointsRefuseWithoutAuth(t *testing.T) {
	log := openTestLog(t)
	srv := httptest.NewServer(newLiveHandler(t, LiveConfig{Log: log, Topic: "events"}))
	t.Cleanup(srv.Close)
	c := noRedirect()
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		want int
	}{
		{"/ui/live/event?partition=0&offset=0", nil, 401},
		{"/ui/live/event?partition=0&offset=0", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"/ui/stream?live=1", nil, 401},
		{"/ui/stream?live=1&userId=u", map[string]string{"Cookie": sessionCookie + "=forged.value"}, 401},
		{"/ui/live", nil, http.StatusSeeOther},
	} {
		if resp := do(t, c, "GET", srv.URL+tc.path, nil, tc.hdr); resp.StatusCode != tc.want {
			t.Errorf("GET %s %v: status %d, want %d", tc.path, tc.hdr, resp.StatusCode, tc.want)
		}
	}
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	if resp := do(t, c, "GET", srv.URL+"/ui/live/event?partition=0&offset=x", nil, bearer); resp.StatusCode != 400 {
		t.Errorf("a bad offset: status %d, want 400", resp.StatusCode)
	}
	if resp := do(t, c, "GET", srv.URL+"/ui/live/event?partition=0&offset=7", nil, bearer); resp.StatusCode != 404 {
		t.Errorf("an offset never written: status %d, want 404", resp.StatusCode)
	}
}

func TestAnOpenedEventShowsItsJSONAndEachDestinationsOutcome(t *testing.T) {
	log := openTestLog(t)
	ev := segmentEvent("track", "Signed Up", "u1", "msg-1", "web")
	publish(t, log, ev)
	partition := queue.PartitionFor(ev.Key, 2)
	outcomes := router.NewOutcomes(10, "hubspot", "hook", "quiet")
	outcomes.Observe(router.Outcome{Destination: "hook", Topic: "events", Partition: partition, Offset: 0, Result: router.ResultRetried, Attempt: 1, Class: "http_5xx", Reason: "answered 503", Status: 503})
	outcomes.Observe(router.Outcome{Destination: "hook", Topic: "events", Partition: partition, Offset: 0, Result: router.ResultDelivered, Attempt: 2})
	outcomes.Observe(router.Outcome{Destination: "hubspot", Topic: "events", Partition: partition, Offset: 0, Result: router.ResultDeadLettered, Attempt: 1,
		Class: "http_4xx", Reason: "HubSpot refused the contact", Status: 400, Response: `{"category":"VALIDATION_ERROR"}`})
	srv := httptest.NewServer(newLiveHandler(t, LiveConfig{Log: log, Topic: "events", DLQTopic: "dlq", Outcomes: outcomes}))
	t.Cleanup(srv.Close)

	body := get(t, srv.URL+fmt.Sprintf("/ui/live/event?partition=%d&offset=0", partition))
	for _, want := range []string{
		`"messageId": "msg-1"`, `"plan": "pro"`,
		`data-destination="hook" data-final="delivered"`, "attempt 1: retried · status 503", "answered 503",
		`data-destination="hubspot" data-final="dead_lettered"`, "HubSpot refused the contact", `{"category":"VALIDATION_ERROR"}`,
		`data-destination="quiet" data-final="not recorded"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the opened event lacks %q:\n%s", want, body)
		}
	}

	// A process without a router finds dead letters in the dead-letter
	// topic by messageId.
	dl, _ := json.Marshal(queue.DeadLetter{Reason: "still refused", Stage: "hubspot", Attempts: 3, LastStatus: 400, LastResponse: "bad email", FailedAt: time.Now(), Message: ev.Value})
	other, _ := json.Marshal(queue.DeadLetter{Reason: "another event", Stage: "hook", Message: json.RawMessage(`{"messageId":"msg-2"}`)})
	publish(t, log, queue.Message{Topic: "dlq", Key: []byte("u1"), Value: other}, queue.Message{Topic: "dlq", Key: []byte("u1"), Value: dl})
	gw := httptest.NewServer(newLiveHandler(t, LiveConfig{Log: log, Topic: "events", DLQTopic: "dlq"}))
	t.Cleanup(gw.Close)
	body = get(t, gw.URL+fmt.Sprintf("/ui/live/event?partition=%d&offset=0", partition))
	for _, want := range []string{"This process runs no router", `data-destination="hubspot" data-final="dead_lettered"`, "after 3 attempts", "still refused", "bad email"} {
		if !strings.Contains(body, want) {
			t.Errorf("the gateway's opened event lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "another event") || strings.Contains(body, `data-destination="hook"`) {
		t.Errorf("the gateway's opened event shows another event's dead letter:\n%s", body)
	}
}

// TestAnOpenedEventShowsTheReplayOfItsDeadLetter opens an event its router
// dead-lettered and a replay from the dead-letter topic delivered since: the
// replay's outcomes are kept under the dead letter's place, found by the
// event's messageId.
func TestAnOpenedEventShowsTheReplayOfItsDeadLetter(t *testing.T) {
	log := openTestLog(t)
	ev := segmentEvent("identify", "", "u1", "msg-1", "web")
	publish(t, log, ev)
	partition := queue.PartitionFor(ev.Key, 2)
	outcomes := router.NewOutcomes(10, "hubspot")
	outcomes.Observe(router.Outcome{Destination: "hubspot", Topic: "events", Partition: partition, Offset: 0, Result: router.ResultDeadLettered, Attempt: 1,
		Class: "hubspot_conflict", Reason: "Contact already exists", Status: 409, At: time.Now()})
	srv := httptest.NewServer(newLiveHandler(t, LiveConfig{Log: log, Topic: "events", DLQTopic: "dlq", Outcomes: outcomes}))
	t.Cleanup(srv.Close)
	open := func() string {
		return get(t, srv.URL+fmt.Sprintf("/ui/live/event?partition=%d&offset=0", partition))
	}
	if body := open(); !strings.Contains(body, `data-destination="hubspot" data-final="dead_lettered"`) || strings.Contains(body, "Replayed") {
		t.Errorf("before the replay the event is not shown dead-lettered alone:\n%s", body)
	}

	dl, _ := json.Marshal(queue.DeadLetter{Reason: "Contact already exists", Stage: "hubspot", Class: "hubspot_conflict", Attempts: 1, FailedAt: time.Now(), Message: ev.Value})
	publish(t, log, queue.Message{Topic: "dlq", Key: ev.Key, Value: dl})
	dlqPartition := queue.PartitionFor(ev.Key, 2)
	outcomes.Observe(router.Outcome{Destination: "hubspot", Topic: "dlq", Partition: dlqPartition, Offset: 0, Result: router.ResultDeadLettered, Attempt: 1,
		Reason: "Contact already exists, still", At: time.Now()})
	dl2, _ := json.Marshal(queue.DeadLetter{Reason: "Contact already exists, still", Stage: "hubspot", Attempts: 1, FailedAt: time.Now(), Message: ev.Value})
	publish(t, log, queue.Message{Topic: "dlq", Key: ev.Key, Value: dl2})
	outcomes.Observe(router.Outcome{Destination: "hubspot", Topic: "dlq", Partition: dlqPartition, Offset: 1, Result: router.ResultDelivered, Attempt: 1, At: time.Now()})
	body := open()
	for _, want := range []string{`data-destination="hubspot" data-final="delivered"`, `attempt 1: dead_lettered · status 409 · <span class="reason">hubspot_conflict</span>`, "Replayed from its dead letter",
		`<li data-result="dead_lettered">attempt 1: dead_lettered · <span class="why">Contact already exists, still</span></li><li data-result="delivered">attempt 1: delivered</li>`} {
		if !strings.Contains(body, want) {
			t.Errorf("after the replays the opened event lacks %q:\n%s", want, body)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp := do(t, http.DefaultClient, "GET", url, nil, map[string]string{"Authorization": "Bearer " + testToken})
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return html.UnescapeString(string(b))
}

// The live row reads each field as schemas.Event's accessors do.
func TestLiveEventReadsWhatTheEventsAccessorsRead(t *testing.T) {
	for _, raw := range []string{
		`{"type":"track","event":"Signed Up","userId":"u1","anonymousId":"a1","messageId":"m1","_switchyard":{"source":"web"}}`,
		`{"type":"identify","userId":42,"anonymousId":null,"messageId":"m2","_switchyard":{"source":"app"},"type":"track"}`,
		`{"messageId":"m3","anonymousId":"a3","userId":true,"event":{"x":1}}`,
		`{}`, `{"_switchyard":"web","userId":"","anonymousId":7.5}`,
	} {
		got := newLiveEvent(queue.Message{Value: []byte(raw), Partition: 1, Offset: 2, Time: time.Unix(0, 0)})
		ev := schemas.NewEvent([]byte(raw))
		want := liveEvent{Partition: 1, Offset: 2, Time: time.Unix(0, 0).UTC().Format(time.RFC3339Nano),
			Type: ev.Type(), Event: ev.Get("event").String(), UserID: ev.UserID(), AnonymousID: ev.AnonymousID(),
			Source: ev.Source(), MessageID: ev.MessageID()}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", raw, got, want)
		}
	}
}
