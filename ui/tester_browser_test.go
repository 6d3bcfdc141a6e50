package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserTesterShowsTheContactUpsert(t *testing.T) {
	_, srv := newTesterServer(t, &fakeTester{dests: []string{"hubspot", "hubspot-eu"}})
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/tester"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tester-calls")),
	); err != nil {
		t.Fatalf("log in and open the tester: %v", err)
	}
	navigations, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation").length`))
	if err != nil {
		t.Fatal(err)
	}

	// Bad input first: the error shows on the page.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#tester-calls"), `{"type":"identify",`),
		chromedp.Click(chromedp.CSS("#tester-run")),
		chromedp.Poll[chromedp.Void](`(document.querySelector("#tester-error") || {}).textContent?.includes("not valid JSON")`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		t.Fatalf("the tester did not show the JSON error: %v", err)
	}
	screenshot(t, ctx, "tester-error")

	identify := `{"type":"identify","userId":"u1","traits":{"email":"ada@example.com","First":"Ada","2fa":true}}`
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#tester-calls"), identify),
		chromedp.SetValue(chromedp.CSS("#tester-destination"), "hubspot-eu"),
		chromedp.Click(chromedp.CSS("#tester-run")),
		chromedp.Poll[chromedp.Void](`(document.querySelector("#tester-result .request .path") || {}).textContent === "/crm/v3/objects/contacts/batch/upsert"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		t.Fatalf("the tester did not show the contact upsert: %v", err)
	}
	method, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#tester-result .request .method")))
	if err != nil || method != "POST" {
		t.Errorf("the request's method is %q (%v), want POST", method, err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#tester-result .request pre")))
	if err != nil || !strings.Contains(body, `"id": "ada@example.com"`) {
		t.Errorf("the request's body %q (%v) lacks the contact's email", body, err)
	}
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#tester-result tr[data-key="First"] [data-field="property"]`)))
	if err != nil || row != "first" {
		t.Errorf("trait First became %q (%v), want first", row, err)
	}
	skipped, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#tester-result tr[data-key="2fa"] [data-field="skipped"]`)))
	if err != nil || skipped == "" {
		t.Errorf("trait 2fa shows no skip reason (%v)", err)
	}
	after, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation").length`))
	if err != nil {
		t.Fatal(err)
	}
	if after != navigations {
		t.Errorf("the tester reloaded the page (%d navigations, then %d)", navigations, after)
	}
	screenshot(t, ctx, "tester")
	t.Log(fmt.Sprintf("request body: %s", body))
}
