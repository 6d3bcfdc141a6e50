package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
	"github.com/tidwall/gjson"
)

// TestBrowserDeliveryPageOfARealServeToHubSpot drives the delivery page of
// a real switchyard serve, delivering to `switchyard hubspot-sandbox`, in
// headless Chromium: it logs in, posts identifies through the Go SDK and
// sees the overview's counts and the live events move; one contact is
// refused by HubSpot because a stale duplicate holds its unique customer
// number (HubSpot answers CONFLICT "Contact already exists. Existing ID: …",
// hubspot-api.md §3 [C-conflict]), and is dead-lettered at once. The test
// finds that dead letter on the page with HubSpot's message, clears the
// duplicate's number in HubSpot, replays the dead letter from the page, sees
// the replay deliver it with no new dead letter, the contact in HubSpot and
// the replay's delivery on the event's live outcomes. Last, the event
// tester shows the contact upsert an identify makes. Each step saves a screenshot.
func TestBrowserDeliveryPageOfARealServeToHubSpot(t *testing.T) {
	sandbox := startSandbox(t)
	// The portal identifies customers by a unique customer number, and
	// holds a stale duplicate of Ada under her number.
	sandboxCall(t, sandbox, "POST", "/crm/v3/properties/contacts",
		`{"name":"customer_number","label":"Customer number","type":"string","fieldType":"text","groupName":"contactinformation","hasUniqueValue":true}`)
	duplicate := sandboxCall(t, sandbox, "POST", "/crm/v3/objects/contacts/batch/create",
		`{"inputs":[{"properties":{"email":"ada.old@acme.example","customer_number":"C-42"}}]}`).Get("results.0.id").String()
	if duplicate == "" {
		t.Fatal("creating the duplicate contact failed")
	}

	cfgPath := writeConfig(t, `sources:
  - name: app
    write_keys: [k]
destinations:
  - name: crm
    type: hubspot
    hubspot:
      max_wait: 50ms
`)
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir(), "--admin-token", uiTestToken,
		"--hubspot-url", sandbox, "--hubspot-token", "pat-e2e", "--hubspot-hub-id", "777", "--hubspot-tier", "free")
	base := "http://" + addr

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH: run scripts/chromium.sh (%v)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	page, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()
	requests := recordNetwork(t, page)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nrequests:\n%s\nswitchyard:\n%s", append(args, requests, srv.logs())...)
	}
	wait := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second))
	}
	field := func(sel string) string {
		v, _ := chromedp.Run(page, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		return v
	}

	// a. Log in through the form.
	if err := chromedp.Do(page,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), uiTestToken),
		chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
		wait(`document.getElementById("stream-status").dataset.state === "live"`),
	); err != nil {
		fail("log in and open the overview's stream: %v", err)
	}
	saveScreenshot(t, page, "e2e-1-logged-in")

	// The live events in a second tab of the same browser, signed in by
	// the same cookie.
	live, cancelLive := chromedp.NewContext(page)
	defer cancelLive()
	if err := chromedp.Do(live,
		chromedp.Navigate(base+"/ui/live"),
		chromedp.WaitVisible(chromedp.CSS("#events")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-status").dataset.state === "live"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		fail("open the live events: %v", err)
	}

	// b. Identifies through the SDK: five new contacts, and Ada, whose
	// customer number the duplicate holds.
	client, err := analytics.NewWithConfig("k", analytics.Config{Endpoint: base, BatchSize: 10, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if err := client.Enqueue(analytics.Identify{MessageId: fmt.Sprint("e2e-", i), UserId: fmt.Sprint("user-", i),
			Traits: analytics.NewTraits().SetEmail(fmt.Sprintf("person-%d@acme.example", i)).SetFirstName(fmt.Sprint("Person ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Enqueue(analytics.Identify{MessageId: "e2e-ada", UserId: "user-ada",
		Traits: analytics.NewTraits().SetEmail("ada@acme.example").SetFirstName("Ada").Set("customer_number", "C-42")}); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("the SDK's flush: %v", err)
	}

	if err := chromedp.Do(page,
		wait(fmt.Sprintf(`(document.querySelector('[data-destination="crm"] [data-field="delivered"]') || {}).textContent === "%d"`, n)),
		wait(`(document.querySelector('[data-destination="crm"] [data-field="dead-lettered"]') || {}).textContent === "1"`),
		wait(`(document.querySelector('[data-source="tracking-api"] [data-field="received"]') || {}).textContent === "6"`),
	); err != nil {
		fail("the overview did not show 6 received, %d delivered and 1 dead-lettered: %v\nit shows: %s", n, err, field("#overview"))
	}
	if retried := field(`[data-destination="crm"] [data-field="retried"]`); retried != "0" {
		t.Errorf("HubSpot's refusal was retried (%s retries), want it dead-lettered at once", retried)
	}
	if classes := field(`[data-destination="crm"] [data-field="classes"]`); !strings.Contains(classes, "hubspot_conflict: 1") {
		t.Errorf("the dead letter's class is not hubspot_conflict: %q", classes)
	}
	saveScreenshot(t, page, "e2e-2-overview")

	outcome := func(messageID string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#events tr[data-message-id=%q] td`, messageID))),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector("#event-detail .event h2") || {}).textContent === "Event %s"`, messageID),
				chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)),
		)
	}
	liveText := func() string {
		v, _ := chromedp.Run(live, chromedp.Text(chromedp.CSS("body")))
		return v
	}
	if err := chromedp.Do(live,
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#events tbody tr").length === 6`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)),
		outcome("e2e-0"),
	); err != nil {
		fail("the live events did not show the six identifies, or e2e-0 did not open: %v\n%s", err, liveText())
	}
	detail, err := chromedp.Run(live, chromedp.Evaluate[map[string]string](`(() => {
		const d = document.getElementById("event-detail");
		const o = d.querySelector('.outcome[data-destination="crm"]');
		return {json: d.querySelector(".json").textContent, final: o ? o.dataset.final : ""};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail["json"], `"email": "person-0@acme.example"`) || !strings.Contains(detail["json"], `"messageId": "e2e-0"`) {
		t.Errorf("the opened event's JSON is not the identify posted:\n%s", detail["json"])
	}
	if detail["final"] != "delivered" {
		t.Errorf("the opened event's outcome at crm is %q, want delivered:\n%s", detail["final"], liveText())
	}
	saveScreenshot(t, live, "e2e-3-live-event")
	if err := chromedp.Do(live, outcome("e2e-ada"),
		chromedp.Poll[chromedp.Void](`(document.querySelector('#event-detail .outcome[data-destination="crm"]') || {dataset: {}}).dataset.final === "dead_lettered"`,
			chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		fail("Ada's identify is not shown dead-lettered at crm: %v\n%s", err, liveText())
	}
	saveScreenshot(t, live, "e2e-4-live-dead-lettered")

	// c, d. HubSpot's refusal is on the dead-letter panel.
	hubspotMessage := "Contact already exists. Existing ID: " + duplicate
	if err := chromedp.Do(page,
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/deadletters"]`)),
		chromedp.WaitVisible(chromedp.CSS("#f-reason")),
		chromedp.SendKeys(chromedp.CSS("#f-destination"), "crm"),
		chromedp.SendKeys(chromedp.CSS("#f-reason"), "already exists"),
		chromedp.Click(chromedp.CSS("#filter button")),
		chromedp.WaitVisible(chromedp.CSS(`#deadletters[data-filter="destination=crm&reason=already+exists"]`)),
		wait(`document.querySelectorAll("#deadletters tr[data-deadletter]").length === 1`),
	); err != nil {
		fail("filter the dead letters by destination and reason: %v\nthe page: %s", err, field("body"))
	}
	if reason := field(`#deadletters [data-field="reason"]`); !strings.Contains(reason, hubspotMessage) {
		t.Errorf("the dead letter's reason %q lacks HubSpot's message %q", reason, hubspotMessage)
	}
	saveScreenshot(t, page, "e2e-5-deadletters-filtered")
	if err := chromedp.Do(page,
		chromedp.Click(chromedp.CSS("#deadletters a")),
		chromedp.WaitVisible(chromedp.CSS("#deadletter")),
	); err != nil {
		fail("open the dead letter: %v", err)
	}
	if class := field(`#deadletter [data-field="class"]`); class != "hubspot_conflict" {
		t.Errorf("the dead letter's class is %q, want hubspot_conflict", class)
	}
	if reason := field(`#deadletter [data-field="reason"]`); !strings.Contains(reason, hubspotMessage) {
		t.Errorf("the dead letter's reason %q lacks HubSpot's message", reason)
	}
	if attempts := field(`#deadletter [data-field="attempts"]`); attempts != "1" {
		t.Errorf("the dead letter took %s attempts, want 1: HubSpot's refusal is not retried", attempts)
	}
	response := field("#last-response")
	if !strings.Contains(response, `"category":"CONFLICT"`) || !strings.Contains(response, hubspotMessage) {
		t.Errorf("the last response %q is not HubSpot's error", response)
	}
	if ev := field("#event"); !strings.Contains(ev, `"customer_number": "C-42"`) {
		t.Errorf("the dead letter's event lacks the customer number:\n%s", ev)
	}
	saveScreenshot(t, page, "e2e-6-deadletter")

	// The fix is HubSpot's: the duplicate's stale number is cleared.
	sandboxCall(t, sandbox, "POST", "/crm/v3/objects/contacts/batch/update",
		fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"customer_number":""}}]}`, duplicate))

	if err := chromedp.Do(page,
		chromedp.Navigate(base+"/ui/deadletters?destination=crm&reason=already+exists"),
		chromedp.WaitVisible(chromedp.CSS(`#deadletters[data-filter="destination=crm&reason=already+exists"]`)),
		chromedp.Click(chromedp.CSS(`#deadletters tr[data-deadletter] input[name="pick"]`)),
		chromedp.Click(chromedp.CSS("#replay-selected-button")),
		chromedp.WaitVisible(chromedp.CSS("#replays li")),
		wait(`document.querySelector('#replays li').dataset.finished === "true"`),
	); err != nil {
		fail("select the dead letter and replay it: %v\nthe replays: %s", err, field("#replays"))
	}
	if state := field(`#replays [data-field="state"]`); !strings.HasPrefix(state, "done at") {
		fail("the replay ended with %q", state)
	}
	if progress := field(`#replays [data-field="progress"]`); progress != "1 of 1 delivered" {
		t.Errorf("the replay's progress reads %q, want 1 of 1 delivered", progress)
	}
	saveScreenshot(t, page, "e2e-7-replayed")
	ada := func() gjson.Result {
		return sandboxGet(t, sandbox, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="ada@acme.example")`)
	}
	eventuallyTrue(t, "Ada is in HubSpot with her customer number", func() bool { return ada().Get("properties.customer_number").String() == "C-42" })
	if first := ada().Get("properties.firstname").String(); first != "Ada" {
		t.Errorf("Ada's firstname in HubSpot is %q", first)
	}
	// Delivered, the replay wrote no new dead letter: a refused replay
	// would add one to the list.
	if err := chromedp.Do(page,
		chromedp.Navigate(base+"/ui/deadletters?destination=crm"),
		chromedp.WaitVisible(chromedp.CSS(`#deadletters[data-filter="destination=crm"]`)),
	); err != nil {
		fail("open the dead letters after the replay: %v", err)
	}
	if n, err := chromedp.Run(page, chromedp.Evaluate[int](`document.querySelectorAll("#deadletters tr[data-deadletter]").length`)); err != nil || n != 1 {
		t.Errorf("after the replay crm has %d dead letters (%v), want the one replayed and no new one:\n%s", n, err, field("#deadletters"))
	}
	saveScreenshot(t, page, "e2e-8-no-new-deadletter")
	// Opened again, Ada's identify shows the replay's delivery after the
	// dead letter.
	if err := chromedp.Do(live, outcome("e2e-ada"),
		chromedp.Poll[chromedp.Void](`(document.querySelector('#event-detail .outcome[data-destination="crm"]') || {dataset: {}}).dataset.final === "delivered"`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		fail("Ada's identify is not shown delivered at crm after the replay: %v\n%s", err, liveText())
	}
	results, err := chromedp.Run(live, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#event-detail .outcome[data-destination="crm"] li')].map(li => (li.closest(".replayed") ? "replay " : "") + li.dataset.result)`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(results, ", "); got != "dead_lettered, replay delivered" {
		t.Errorf("Ada's identify at crm shows the outcomes %q, want dead_lettered, replay delivered:\n%s", got, liveText())
	}
	saveScreenshot(t, live, "e2e-8b-live-replayed")

	// e. The event tester shows the contact upsert of an identify.
	identify := `{"type":"identify","userId":"u-tester","traits":{"email":"grace@acme.example","firstName":"Grace","customer_number":"C-7"}}`
	if err := chromedp.Do(page,
		chromedp.Navigate(base+"/ui/tester"),
		chromedp.WaitVisible(chromedp.CSS("#tester-calls")),
		chromedp.SetValue(chromedp.CSS("#tester-calls"), identify),
		chromedp.Click(chromedp.CSS("#tester-run")),
		wait(`document.querySelector("#upsert") !== null || (() => {
			const r = [...document.querySelectorAll("#tester-result .request")].find(r => r.querySelector(".path").textContent === "/crm/v3/objects/contacts/batch/upsert");
			if (r) r.id = "upsert";
			return !!r;
		})()`),
	); err != nil {
		fail("the tester did not show the contact upsert: %v\nthe result: %s", err, field("#tester-result"))
	}
	if method := field("#upsert .method"); method != "POST" {
		t.Errorf("the upsert's method is %q, want POST", method)
	}
	body := field("#upsert pre")
	for _, want := range []string{`"id": "grace@acme.example"`, `"idProperty": "email"`, `"firstname": "Grace"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the upsert's body lacks %s:\n%s", want, body)
		}
	}
	if property := field(`#tester-result tr[data-key="firstName"] [data-field="property"]`); property != "firstname" {
		t.Errorf("trait firstName became %q, want firstname", property)
	}
	// The tester's portal is a new one, without the customer number.
	if skipped := field(`#tester-result tr[data-key="customer_number"] [data-field="skipped"]`); !strings.Contains(skipped, "unknown contact property") {
		t.Errorf("trait customer_number shows %q as why it was skipped", skipped)
	}
	saveScreenshot(t, page, "e2e-9-tester")
}
