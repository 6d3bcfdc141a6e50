package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserStreamOpensWhenTheExtensionArrivesLate serves htmx's SSE
// extension half a second after htmx itself, as a busy server or network
// may, and checks that the page still opens its stream: htmx must not start
// processing the page before the extension is registered.
func TestBrowserStreamOpensWhenTheExtensionArrivesLate(t *testing.T) {
	m := newTestMetrics()
	h := newTestHandler(t, testToken, m, 250*time.Millisecond)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/hx-sse.min.js") {
			time.Sleep(500 * time.Millisecond)
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close) // after the browser's cleanup, so its stream has ended
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-status").dataset.state === "live"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second)),
	); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("stream-status").dataset.state`))
		t.Fatalf("with the extension late, the stream did not open: %v (the stream's state: %s)", err, state)
	}
	m.events.WithLabelValues("hubspot", "delivered").Add(7)
	if err := chromedp.Do(ctx, fieldIs(`[data-destination="hubspot"] [data-field="delivered"]`, "7")); err != nil {
		t.Fatalf("the overview did not follow the stream: %v", err)
	}
}
