package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// netLog records what a tab's requests did, as Chromium reports them, so
// that a test that waits on the network can say where a request stopped.
type netLog struct {
	mu    sync.Mutex
	start time.Time
	lines []string
	urls  map[network.RequestID]string
}

func (l *netLog) add(id network.RequestID, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	url := l.urls[id]
	l.lines = append(l.lines, fmt.Sprintf("%6dms %s %s", time.Since(l.start).Milliseconds(), url, fmt.Sprintf(format, args...)))
}

func (l *netLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// recordNetwork starts recording the tab's requests.
func recordNetwork(t *testing.T, ctx context.Context) *netLog {
	t.Helper()
	l := &netLog{start: time.Now(), urls: map[network.RequestID]string{}}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.mu.Lock()
			l.urls[e.RequestID] = e.Request.Method + " " + e.Request.URL
			l.mu.Unlock()
			l.add(e.RequestID, "sent")
		case *network.EventResponseReceived:
			l.add(e.RequestID, "response %d on connection %v (reused %v)", e.Response.Status, e.Response.ConnectionID, e.Response.ConnectionReused)
		case *network.EventLoadingFinished:
			l.add(e.RequestID, "finished")
		case *network.EventLoadingFailed:
			l.add(e.RequestID, "failed: %s canceled=%v blocked=%v", e.ErrorText, e.Canceled, e.BlockedReason)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sockets lists the TCP connections to addr, with their queues.
func sockets(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("ss", "-tnoi", "( sport = :"+port+" or dport = :"+port+" )").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ss: %v", err)
	}
	return string(out)
}

// TestBrowserOverviewOfARealServe logs in to a real switchyard serve in
// headless Chromium, posts events with the Go SDK, watches the overview's
// delivered count follow them and saves a screenshot of the overview.
func TestBrowserOverviewOfARealServe(t *testing.T) {
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir(), "--admin-token", uiTestToken)
	base := "http://" + addr

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH: run scripts/chromium.sh (%v)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	requests := recordNetwork(t, ctx)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), uiTestToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-status").dataset.state === "live"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("stream-status").dataset.state`))
		t.Fatalf("log in and open the stream: %v\nthe stream's state: %s\nrequests:\n%s\nsockets:\n%s\n%s", err, state, requests, sockets(addr), srv.logs())
	}

	client, err := analytics.NewWithConfig("k", analytics.Config{Endpoint: base, BatchSize: 10, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	for i := range n {
		if err := client.Enqueue(analytics.Track{MessageId: fmt.Sprint("browser-", i), UserId: fmt.Sprint("user-", i%5), Event: "Order Completed",
			Properties: analytics.NewProperties().SetRevenue(42.5).SetCurrency("EUR")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatalf("the SDK's flush: %v", err)
	}
	sel := `[data-destination="hook"] [data-field="delivered"]`
	if err := chromedp.Do(ctx,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, strconv.Itoa(n)),
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#charts .chart canvas').length >= 2`,
			chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		shown, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#overview")))
		t.Fatalf("the overview did not show %d delivered: %v\nit shows: %s\nrequests:\n%s\n%s", n, err, shown, requests, srv.logs())
	}
	saveScreenshot(t, ctx, "overview")
}

// screenshotDirEnv names a directory where the browser tests also write
// their screenshots, for the README's picture of the overview.
const screenshotDirEnv = "SWITCHYARD_SCREENSHOT_DIR"

// saveScreenshot saves the tab as name.png in the test's artifact directory
// and, when screenshotDirEnv is set, in that directory.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{t.ArtifactDir()}
	if dir := os.Getenv(screenshotDirEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
}
