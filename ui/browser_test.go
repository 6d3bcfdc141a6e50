package ui

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's chromium package, installed by
// scripts/chromium.sh) and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH: run scripts/chromium.sh (%v)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the tab as name.png in the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// fieldIs waits until the overview cell matching sel shows want.
func fieldIs(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want),
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second))
}

func TestBrowserOverviewLive(t *testing.T) {
	m := newTestMetrics()
	h := newTestHandler(t, testToken, m, 250*time.Millisecond)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the browser's cleanup, so its stream has ended
	ctx := browser(t)

	// Without a session the page sends the browser to the login form, and
	// its data endpoints, its stream and its actions answer 401.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatal(err)
	}
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`Promise.all([
		fetch("/ui/overview").then(r => r.status),
		fetch("/ui/stream").then(r => r.status),
		fetch("/ui/logout", {method: "POST"}).then(r => r.status),
	])`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(statuses) != "[401 401 401]" {
		t.Errorf("overview, stream and logout without a session answered %v, want [401 401 401]", statuses)
	}
	screenshot(t, ctx, "login")

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-status").dataset.state === "live"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		t.Fatalf("log in and open the stream: %v", err)
	}

	// Counters move; the page follows without a reload.
	m.messages.WithLabelValues("accepted").Add(5)
	m.messages.WithLabelValues("invalid").Add(2)
	m.events.WithLabelValues("hubspot", "delivered").Add(3)
	m.events.WithLabelValues("hubspot", "dead_lettered").Add(1)
	m.dead.WithLabelValues("hubspot", "permanent").Add(1)
	m.lag.WithLabelValues("hubspot").Set(42)
	if err := chromedp.Do(ctx,
		fieldIs(`[data-source="tracking-api"] [data-field="received"]`, "5"),
		fieldIs(`[data-source="tracking-api"] [data-field="rejected"]`, "2"),
		fieldIs(`[data-destination="hubspot"] [data-field="delivered"]`, "3"),
		fieldIs(`[data-destination="hubspot"] [data-field="dead-lettered"]`, "1"),
		fieldIs(`[data-destination="hubspot"] [data-field="lag"]`, "42"),
	); err != nil {
		t.Fatalf("the overview did not show the first counts: %v", err)
	}
	navigations, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation").length`))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		m.messages.WithLabelValues("accepted").Add(100)
		m.events.WithLabelValues("hubspot", "delivered").Add(50)
		time.Sleep(300 * time.Millisecond)
	}
	if err := chromedp.Do(ctx,
		fieldIs(`[data-source="tracking-api"] [data-field="received"]`, "405"),
		fieldIs(`[data-destination="hubspot"] [data-field="delivered"]`, "203"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#charts .chart canvas').length >= 2`,
			chromedp.WithPollingTimeout(10*time.Second)),
	); err != nil {
		t.Fatalf("the overview did not follow the counters: %v", err)
	}
	after, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation").length`))
	if err != nil {
		t.Fatal(err)
	}
	if after != navigations {
		t.Errorf("the page reloaded (%d navigations, then %d)", navigations, after)
	}
	screenshot(t, ctx, "overview")

	// What the overview transferred: the page and every asset.
	transferred, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
		.filter(e => !e.name.includes("/ui/stream")).reduce((n, e) => n + e.transferSize, 0)`))
	if err != nil {
		t.Fatal(err)
	}
	if transferred <= 0 || transferred > 300_000 {
		t.Errorf("the overview transferred %v bytes, want between 0 and 300 KB", transferred)
	}
	t.Logf("overview transferred %.0f bytes", transferred)
}

func TestBrowserCrossSitePostRefused(t *testing.T) {
	m := newTestMetrics()
	h := newTestHandler(t, testToken, m, 0)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the browser's cleanup, so its stream has ended
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
	); err != nil {
		t.Fatal(err)
	}
	csrf, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`form.logout input[name="csrf"]`)))
	if err != nil || csrf == "" {
		t.Fatalf("the page has no CSRF token: %q, %v", csrf, err)
	}

	// Another origin (same host, another port) posts the sign-out form, even
	// with the session's CSRF token: the browser sends the cookie (same
	// site), and the Origin check must refuse it.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/logout"><input name="csrf" value="%s"></form>
<script>document.getElementById("f").submit()</script>`, srv.URL, html.EscapeString(csrf))
	}))
	defer evil.Close()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(evil.URL),
		chromedp.Poll[chromedp.Void](`location.pathname === "/ui/logout" && document.body.innerText.includes("refused")`,
			chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		t.Fatalf("the cross-site POST was not refused: %v", err)
	}
	screenshot(t, ctx, "cross-site-refused")
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	t.Logf("cross-site POST answer: %s", body)

	// The session survived: the page still opens without the login form.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#overview"))); err != nil {
		t.Fatalf("after the refused POST the session is gone: %v", err)
	}
	// The same form posted from the page itself signs out.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("form.logout button")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	); err != nil {
		t.Fatalf("signing out from the page: %v", err)
	}
}

func TestBrowserDeadLetterReplay(t *testing.T) {
	d := newTestDLQ(t, 2)
	d.add(t, 30, 0, "hubspot", "http_4xx", "HubSpot refused the contact: Email is invalid")
	d.add(t, 1, 30, "hubspot", "hubspot_validation_error", "HubSpot refused the contact: Property values were not valid")
	d.add(t, 30, 31, "hubspot", "http_4xx", "HubSpot refused the contact: Email is invalid")
	srv := httptest.NewServer(newDLQHandler(t, testToken, d))
	t.Cleanup(srv.Close)
	ctx := browser(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Navigate(srv.URL+"/ui/deadletters"),
		chromedp.WaitVisible(chromedp.CSS("#f-reason")),
		chromedp.SendKeys(chromedp.CSS("#f-reason"), "property values"),
		chromedp.Click(chromedp.CSS("#filter button")),
		chromedp.WaitVisible(chromedp.CSS(`#deadletters[data-filter="reason=property+values"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#deadletters tr[data-deadletter]").length === 1`,
			chromedp.WithPollingTimeout(10*time.Second)),
	); err != nil {
		t.Fatalf("log in and filter the dead letters by reason: %v", err)
	}
	reason, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#deadletters [data-field="reason"]').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if reason != "HubSpot refused the contact: Property values were not valid #30" {
		t.Fatalf("the filtered dead letter's reason is %q", reason)
	}
	screenshot(t, ctx, "deadletters-filtered")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#deadletters a")),
		chromedp.WaitVisible(chromedp.CSS("#last-response")),
		fieldIs(`#deadletter [data-field="class"]`, "hubspot_validation_error"),
	); err != nil {
		t.Fatalf("open the dead letter: %v", err)
	}
	screenshot(t, ctx, "deadletter")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#replay-one button")),
		chromedp.WaitVisible(chromedp.CSS("#replays")),
		chromedp.Poll[chromedp.Void](`(document.querySelector('#replays [data-field="state"]') || {}).textContent?.startsWith("done at")`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second)),
		fieldIs(`#replays [data-field="progress"]`, "1 of 1 delivered"),
	); err != nil {
		t.Fatalf("replay it and see the progress end: %v", err)
	}
	screenshot(t, ctx, "deadletter-replayed")
	got := d.replayedNow()
	if len(got) != 1 || !strings.HasPrefix(got[0], "hubspot/") {
		t.Fatalf("replayed %v, want the one dead letter", got)
	}
}
