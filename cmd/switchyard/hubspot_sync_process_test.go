package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// syncSecret is the app's client secret in the tests of the source's
// syncs and email events.
const syncSecret = "sync-client-secret"

// syncE2E is `switchyard serve`, stopped and started again on one data
// dir, with a hubspot source crm-in on a `switchyard hubspot-sandbox` run
// as its own process and a webhook destination to a receiver standing for
// the app. Its config names serve's address, so that `switchyard sync`
// finds the process holding the data dir.
type syncE2E struct {
	t       *testing.T
	addr    string // serve's
	base    string // the sandbox's URL
	dataDir string
	cfgPath string
	app     *webhooktest.Server
	srv     *server
}

// newSyncE2E starts the sandbox, sending its webhooks to serve when
// webhooks is set (retrying a failed one twice within a third of a
// second), and writes serve's config, the source's settings (lines
// indented under its hubspot block) being settings; serve is not started.
func newSyncE2E(t *testing.T, settings string, webhooks bool) *syncE2E {
	t.Helper()
	e := &syncE2E{t: t, addr: freeAddr(t), dataDir: t.TempDir(), app: webhooktest.NewServer(t)}
	sandboxAddr := freeAddr(t)
	args := []string{"hubspot-sandbox", "--tier", "free", "--hub-id", "777"}
	if webhooks {
		args = append(args, "--webhook-url", "http://"+e.addr+"/hubspot/webhooks/crm-in", "--client-secret", syncSecret,
			"--webhook-retry-delays", "100ms,200ms")
	}
	startReady(t, sandboxAddr, "/_sandbox/stats", args...)
	e.base = "http://" + sandboxAddr
	e.cfgPath = writeConfig(t, `addr: `+e.addr+`
sources:
  - name: app
    write_keys: [k]
  - name: crm-in
    type: hubspot
    hubspot:
      token: pat-e2e
      url: `+e.base+`
      client_secret: `+syncSecret+`
      contacts: {firstname: first_name}
      batch_wait: 100ms
`+settings+`destinations:
  - name: app-hook
    type: webhook
    backoff_min: 100ms
    webhook:
      url: `+e.app.URL+`
      batch: true
      max_wait: 20ms
`)
	return e
}

// serve starts serve on the test's data dir and waits until the
// scheduled catch-up it runs at its start, when the source has no
// recent checkpoint, has ended, so that no sync is running.
func (e *syncE2E) serve(firstStart bool) {
	e.t.Helper()
	e.srv = start(e.t, e.addr, "serve", "--config", e.cfgPath, "--data-dir", e.dataDir)
	if firstStart {
		eventuallyTrueWithin(e.t, 20*time.Second, "the first scheduled catch-up ends", func() bool { return e.syncRuns("catch-up", "done") >= 1 })
	}
}

// counter reads one of serve's counters, 0 while it is not reported.
func (e *syncE2E) counter(series string) float64 {
	v, _ := scrapeCounter(e.addr, series)
	return v
}

// syncRuns counts serve's syncs of kind that ended with outcome.
func (e *syncE2E) syncRuns(kind, outcome string) float64 {
	return e.counter(`switchyard_hubspot_source_sync_runs_total{source="crm-in",kind="` + kind + `",outcome="` + outcome + `"}`)
}

// logs are serve's logs so far.
func (e *syncE2E) logs() string {
	if e.srv == nil {
		return ""
	}
	return e.srv.logs()
}

// syncCommand is `switchyard sync --source crm-in` on the test's config
// and data dir, with args.
func (e *syncE2E) syncCommand(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(binary, append([]string{"sync", "--source", "crm-in", "--config", e.cfgPath, "--data-dir", e.dataDir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// runSync runs `switchyard sync --source crm-in` with args to its end and
// returns its output and the calls it says were appended, failing the
// test unless it exits 0 with the sync done.
func (e *syncE2E) runSync(args ...string) (string, int) {
	e.t.Helper()
	cmd, out := e.syncCommand(args...)
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("switchyard sync %v: %v\n%s\nserve:\n%s", args, err, out, e.logs())
	}
	return out.String(), syncAppended(e.t, out.String())
}

// syncSummary is the last line `switchyard sync` prints.
var syncSummary = regexp.MustCompile(`sync of crm-in: done, (\d+) records read, (\d+) calls appended`)

// syncAppended reads the calls appended from the output of a sync done.
func syncAppended(t *testing.T, out string) int {
	t.Helper()
	m := syncSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("switchyard sync does not say the sync is done:\n%s", out)
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// identifyUsers sends the identify of user-{i} with email
// user-{i}@example.com for i in [from, to) through the gateway, in
// batches of 500, and waits until the app has them all: the source's
// directory reads them from the same log.
func (e *syncE2E) identifyUsers(from, to int) {
	e.t.Helper()
	for lo := from; lo < to; lo += 500 {
		var items []string
		for i := lo; i < min(lo+500, to); i++ {
			items = append(items, fmt.Sprintf(`{"type":"identify","userId":"user-%d","traits":{"email":"user-%d@example.com"}}`, i, i))
		}
		post(e.t, e.addr, "/v1/batch", "k", `{"batch":[`+strings.Join(items, ",")+`]}`)
	}
	e.waitCalls("app", to-from)
	// The directory tails the log as the router does; a moment more and
	// it has learned them.
	time.Sleep(300 * time.Millisecond)
}

// waitCalls waits until the app got at least n calls from source.
func (e *syncE2E) waitCalls(source string, n int) []gjson.Result {
	e.t.Helper()
	return waitForSourceCalls(e.t, e.app, source, n, e.logs)
}

// createContacts creates the contact of user-{i}@example.com, first name
// F{i}, for i in [from, to) as people in HubSpot's UI would, eight at a
// time, and returns their ids by user.
func (e *syncE2E) createContacts(from, to int) map[string]string {
	e.t.Helper()
	ids := make(map[string]string, to-from)
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := fmt.Sprintf(`{"properties":{"email":"user-%d@example.com","firstname":"F%d"}}`, i, i)
				resp, err := http.Post(e.base+"/_sandbox/edit/contacts", "application/json", strings.NewReader(body))
				if err != nil {
					e.t.Error(err)
					continue
				}
				var rec struct {
					ID string `json:"id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					e.t.Errorf("creating contact %d: %d %v", i, resp.StatusCode, err)
					continue
				}
				mu.Lock()
				ids[fmt.Sprintf("user-%d", i)] = rec.ID
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	return ids
}

// webhooksDropped is how many notifications the sandbox gave up sending.
func (e *syncE2E) webhooksDropped() int {
	return int(sandboxGet(e.t, e.base, "/_sandbox/webhooks").Get("stats.dropped").Int())
}

// waitWebhooksGiveUp waits until the sandbox has given up more
// notifications than before and sends no more.
func (e *syncE2E) waitWebhooksGiveUp(before int) int {
	e.t.Helper()
	last, since := -1, time.Now()
	eventuallyTrueWithin(e.t, 20*time.Second, "the sandbox gives up its webhooks", func() bool {
		s := sandboxGet(e.t, e.base, "/_sandbox/webhooks").Get("stats")
		n := int(s.Get("dropped").Int() + s.Get("requests").Int())
		if n != last {
			last, since = n, time.Now()
		}
		return s.Get("dropped").Int() > int64(before) && time.Since(since) > time.Second
	})
	return e.webhooksDropped()
}

// missedEdits runs serve with five known contacts delivered to the app
// by the webhooks, stops it, and while it is down edits three of them and
// creates an unknown contact in the sandbox, whose webhooks fail and are
// given up. It returns the edited users' new first names.
func (e *syncE2E) missedEdits() map[string]string {
	e.t.Helper()
	e.serve(true)
	e.identifyUsers(0, 5)
	ids := e.createContacts(0, 5)
	for _, c := range e.waitCalls("crm-in", 5) {
		if c.Get("traits.first_name").String() != "F"+strings.TrimPrefix(c.Get("userId").String(), "user-") {
			e.t.Fatalf("the app got %s", c.Raw)
		}
	}
	began := time.Now()
	if err := e.srv.stop(e.t, syscall.SIGTERM); err != nil {
		e.t.Fatalf("serve exited with %v\n%s", err, e.logs())
	}
	if took := time.Since(began); took > 10*time.Second {
		e.t.Errorf("serve took %v to stop\n%s", took, e.logs())
	}

	dropped := e.webhooksDropped()
	edited := map[string]string{}
	for _, user := range []string{"user-1", "user-3", "user-4"} {
		edited[user] = "Edited " + user
		sandboxEdit(e.t, e.base, "contacts/"+ids[user], `{"properties":{"firstname":"`+edited[user]+`"}}`)
	}
	sandboxEdit(e.t, e.base, "contacts", `{"properties":{"email":"stranger@example.com","firstname":"Stranger"}}`)
	e.t.Logf("the sandbox gave up %d notifications while serve was down", e.waitWebhooksGiveUp(dropped)-dropped)
	return edited
}

// checkMissedDelivered checks that the app got, after the five calls it
// had, exactly one call for each edited user with its new first name.
func (e *syncE2E) checkMissedDelivered(edited map[string]string) {
	e.t.Helper()
	e.waitCalls("crm-in", 5+len(edited))
	time.Sleep(time.Second) // anything more would have come by now
	calls := sourceCalls(e.app, "crm-in")
	if len(calls) != 5+len(edited) {
		e.t.Fatalf("the app got %d calls from the source, want %d: 5 before and %d missed\n%s", len(calls), 5+len(edited), len(edited), e.logs())
	}
	seen := map[string]bool{}
	for _, c := range calls[5:] {
		user := c.Get("userId").String()
		if want, ok := edited[user]; !ok || seen[user] || c.Get("type").String() != "identify" || c.Get("traits.first_name").String() != want {
			e.t.Errorf("after the five delivered the app got %s; want one identify of each of %v with its edit", c.Raw, edited)
		}
		seen[user] = true
	}
}

// TestSyncDeliversTheChangesMissedWhileServeWasDown stops serve while a
// person edits contacts in the sandbox, whose webhooks fail and are given
// up; serve started again, `switchyard sync --source crm-in` finds the
// data dir held by serve and asks it for the catch-up, which delivers
// exactly the missed changes to the app, each once, and nothing the
// webhooks had delivered.
func TestSyncDeliversTheChangesMissedWhileServeWasDown(t *testing.T) {
	e := newSyncE2E(t, "", true)
	edited := e.missedEdits()

	e.serve(false)
	time.Sleep(500 * time.Millisecond)
	if got := len(sourceCalls(e.app, "crm-in")); got != 5 {
		t.Fatalf("the app got %d calls from the source before the sync, want the 5 delivered before", got)
	}
	out, appended := e.runSync()
	if !strings.Contains(out, "held by a running switchyard") {
		t.Errorf("sync did not ask the running serve:\n%s", out)
	}
	if appended != len(edited) {
		t.Errorf("the catch-up appended %d calls, want the %d missed changes\n%s", appended, len(edited), out)
	}
	e.checkMissedDelivered(edited)
	if n := e.syncRuns("catch-up", "done"); n != 1 {
		t.Errorf("serve ran %v catch-ups, want the one asked for", n)
	}
	t.Logf("missed changes: %d edits, the catch-up appended %d, the app got %d new calls; %s",
		len(edited), appended, len(sourceCalls(e.app, "crm-in"))-5, syncSummary.FindString(out))
}

// TestSyncOnItsOwnCatchesUpBeforeServeStarts runs `switchyard sync` while
// serve is down, on the embedded log serve left: it catches up itself, and
// the missed changes reach the app, each once, when serve starts.
func TestSyncOnItsOwnCatchesUpBeforeServeStarts(t *testing.T) {
	e := newSyncE2E(t, "", true)
	edited := e.missedEdits()

	out, appended := e.runSync()
	if strings.Contains(out, "held by a running switchyard") {
		t.Errorf("sync asked a process though none runs:\n%s", out)
	}
	if appended != len(edited) {
		t.Errorf("the catch-up appended %d calls, want the %d missed changes\n%s", appended, len(edited), out)
	}
	if got := len(sourceCalls(e.app, "crm-in")); got != 5 {
		t.Fatalf("the app got %d calls with serve down, want the 5 from before", got)
	}
	e.serve(false)
	e.checkMissedDelivered(edited)
	if n := e.syncRuns("catch-up", "done"); n != 0 {
		t.Errorf("serve ran %v catch-ups itself; the command's was the one", n)
	}
	t.Logf("missed changes: %d edits, the local catch-up appended %d, the app got %d new calls once serve started; %s",
		len(edited), appended, len(sourceCalls(e.app, "crm-in"))-5, syncSummary.FindString(out))
}

// syncProgress reads serve's GET /admin/sources/crm-in/sync; false while
// it answers no progress.
func (e *syncE2E) syncProgress() (gjson.Result, bool) {
	resp, err := http.Get("http://" + e.addr + "/admin/sources/crm-in/sync")
	if err != nil {
		return gjson.Result{}, false
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	return gjson.ParseBytes(raw.Bytes()), resp.StatusCode == http.StatusOK
}

// emittedOnce counts calls by messageId and by contact, failing the test
// unless each of the contacts ids has exactly one messageId and no other
// contact has any; it returns the calls and the distinct messageIds.
func emittedOnce(t *testing.T, where string, calls []gjson.Result, ids map[string]string) (int, int) {
	t.Helper()
	byContact := map[string]map[string]bool{}
	messageIDs := map[string]bool{}
	for _, c := range calls {
		id := c.Get("_switchyard.hubspot.objectId").String()
		if byContact[id] == nil {
			byContact[id] = map[string]bool{}
		}
		byContact[id][c.Get("messageId").String()] = true
		messageIDs[c.Get("messageId").String()] = true
	}
	bad := 0
	for user, id := range ids {
		if n := len(byContact[id]); n != 1 {
			if bad++; bad <= 5 {
				t.Errorf("%s: contact %s of %s has %d messageIds, want 1", where, id, user, n)
			}
		}
		delete(byContact, id)
	}
	if len(byContact) != 0 || bad != 0 || len(messageIDs) != len(ids) {
		t.Fatalf("%s: %d calls, %d messageIds, %d contacts with other than one, %d unknown contacts; want one messageId for each of %d contacts",
			where, len(calls), len(messageIDs), bad, len(byContact), len(ids))
	}
	return len(calls), len(messageIDs)
}

// TestFullSyncKilledHalfwayResumesAndEmitsEachRecordOnce runs `switchyard
// sync --full` of 3,000 contacts of known users against serve, SIGKILLs
// serve halfway, starts it again and runs `sync --full` once more: it
// resumes where the first stopped (its progress starts above 0), and in
// the end the app and the log hold one messageId for each contact.
func TestFullSyncKilledHalfwayResumesAndEmitsEachRecordOnce(t *testing.T) {
	const contacts = 3000
	e := newSyncE2E(t, "", false)
	e.serve(true)
	e.identifyUsers(0, contacts)
	ids := e.createContacts(0, contacts)
	// Slow each HubSpot call a little, so that the sync takes some
	// seconds and the kill lands mid-way.
	resp, err := http.Post(e.base+"/_sandbox/latency", "application/json", strings.NewReader(`{"ms":120}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	first, firstOut := e.syncCommand("--full")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var atKill gjson.Result
	eventuallyTrueWithin(t, 30*time.Second, "the full sync is a third done", func() bool {
		p, ok := e.syncProgress()
		if ok && p.Get("kind").String() == "full" && p.Get("state").String() != "running" {
			t.Fatalf("the full sync ended before the kill: %s\n%s", p.Raw, e.logs())
		}
		atKill = p
		return ok && p.Get("total").Int() > 0 && p.Get("done").Int() >= contacts/3
	})
	e.srv.kill()
	if err := first.Wait(); err == nil {
		t.Fatalf("sync exited 0 though serve was killed mid-way:\n%s", firstOut)
	}
	if atKill.Get("done").Int() > 2*contacts/3 {
		t.Fatalf("the kill came late: %s", atKill.Raw)
	}

	e.serve(false)
	second, secondOut := e.syncCommand("--full")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	var resumed gjson.Result
	eventuallyTrueWithin(t, 30*time.Second, "the resumed full sync reports its place", func() bool {
		p, ok := e.syncProgress()
		resumed = p
		return ok && p.Get("kind").String() == "full" && p.Get("total").Int() > 0
	})
	if err := second.Wait(); err != nil {
		t.Fatalf("the resumed sync: %v\n%s\nserve:\n%s", err, secondOut, e.logs())
	}
	appended := syncAppended(t, secondOut.String())
	done, total := resumed.Get("done").Int(), resumed.Get("total").Int()
	if done <= 0 || done > atKill.Get("done").Int()+200 || total != contacts {
		t.Errorf("the resumed sync started at %d of %d; want above 0, at most two pages past the %d read at the kill, of %d", done, total, atKill.Get("done").Int(), contacts)
	}
	if want := contacts - int(done); appended != want {
		t.Errorf("the resumed sync appended %d calls, want the %d records it had left", appended, want)
	}
	// The delivery page's overview shows the sync done.
	var pageRow string
	eventuallyTrueWithin(t, 10*time.Second, "the overview shows the full sync done", func() bool {
		_, page := uiGet(t, e.addr, "/ui/", "")
		pageRow = regexp.MustCompile(`(?s)<tr data-sync-source="crm-in">.*?</tr>`).FindString(page)
		return strings.Contains(pageRow, `data-state="done"`)
	})
	for _, want := range []string{
		`<td data-field="sync-kind">full</td>`,
		fmt.Sprintf(`<td data-field="sync-read">%d of %d</td>`, contacts, contacts),
		`<td data-field="sync-percent">100%</td>`,
		fmt.Sprintf(`<td data-field="sync-emitted">%d</td>`, appended),
	} {
		if !strings.Contains(pageRow, want) {
			t.Errorf("the overview's sync row lacks %s:\n%s", want, pageRow)
		}
	}

	var calls []gjson.Result
	eventuallyTrueWithin(t, 30*time.Second, "the app has a call for every contact", func() bool {
		calls = sourceCalls(e.app, "crm-in")
		seen := map[string]bool{}
		for _, c := range calls {
			seen[c.Get("messageId").String()] = true
		}
		return len(seen) >= contacts
	})
	time.Sleep(time.Second) // anything more would have come by now
	appCalls, appIDs := emittedOnce(t, "the app", sourceCalls(e.app, "crm-in"), ids)
	if err := e.srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("serve exited with %v\n%s", err, e.logs())
	}
	var logged []gjson.Result
	for _, c := range tailAll(t, "--config", e.cfgPath, "--data-dir", e.dataDir) {
		if c.Get("_switchyard.source").String() == "crm-in" {
			logged = append(logged, c)
		}
	}
	logCalls, logIDs := emittedOnce(t, "the log", logged, ids)
	t.Logf("full sync of %d contacts: killed at %d of %d read; resumed at %d of %d, appending %d; "+
		"the app got %d calls with %d messageIds, the log holds %d with %d messageIds",
		contacts, atKill.Get("done").Int(), atKill.Get("total").Int(), done, total, appended, appCalls, appIDs, logCalls, logIDs)
}

// TestEmailEventsReachTheAppForKnownUsersOnly: with email_events on, the
// email events added to the sandbox for a known user reach the app as the
// tracks Heap names, each once, also after serve restarts; those of an
// unknown recipient do not.
func TestEmailEventsReachTheAppForKnownUsersOnly(t *testing.T) {
	e := newSyncE2E(t, "      email_events: true\n      email_events_interval: 300ms\n", false)
	e.serve(true)
	e.identifyUsers(0, 1)
	created := time.Now().Add(-time.Minute).UnixMilli()
	events := fmt.Sprintf(`{"events":[
		{"id":"ev-open","created":%d,"type":"OPEN","recipient":"user-0@example.com","emailCampaignId":42},
		{"id":"ev-click","created":%d,"type":"CLICK","recipient":"user-0@example.com","emailCampaignId":42,"url":"https://example.com/pricing"},
		{"id":"ev-bounce","created":%d,"type":"BOUNCE","recipient":"user-0@example.com","emailCampaignId":43,"category":"HARD_BOUNCE","status":"5.1.1"},
		{"id":"ev-stranger","created":%d,"type":"OPEN","recipient":"stranger@example.com","emailCampaignId":42}]}`,
		created, created+1, created+2, created+3)
	resp, err := http.Post(e.base+"/_sandbox/email-events", "application/json", strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_sandbox/email-events: %d", resp.StatusCode)
	}

	check := func(when string) {
		t.Helper()
		calls := e.waitCalls("crm-in", 3)
		if len(calls) != 3 {
			t.Fatalf("%s: the app got %d calls from the source, want 3", when, len(calls))
		}
		want := []struct{ event, prop, value string }{
			{"Opened Email", "campaign_id", "42"},
			{"Clicked Email Link", "url", "https://example.com/pricing"},
			{"Bounced Email", "bounce_category", "HARD_BOUNCE"},
		}
		messageIDs := map[string]bool{}
		for i, w := range want {
			c := calls[i]
			messageIDs[c.Get("messageId").String()] = true
			ts, _ := time.Parse(time.RFC3339Nano, c.Get("timestamp").String())
			if c.Get("type").String() != "track" || c.Get("event").String() != w.event || c.Get("userId").String() != "user-0" ||
				c.Get("properties."+w.prop).String() != w.value || ts.UnixMilli() != created+int64(i) {
				t.Errorf("%s: call %d is %s; want the track %q of user-0 with %s %s at %d", when, i, c.Raw, w.event, w.prop, w.value, created+int64(i))
			}
		}
		if calls[2].Get("properties.bounce_status").String() != "5.1.1" || len(messageIDs) != 3 {
			t.Errorf("%s: the bounce lacks its status, or a messageId repeats: %v", when, messageIDs)
		}
	}
	check("first poll")
	unknown := `switchyard_hubspot_source_email_events_total{source="crm-in",outcome="unknown_user"}`
	polls := `switchyard_hubspot_source_email_polls_total{source="crm-in",result="ok"}`
	leftOut := e.counter(unknown)
	if leftOut != 1 {
		t.Errorf("%v email events counted of unknown users, want 1", leftOut)
	}
	before := e.counter(polls)
	eventuallyTrueWithin(t, 10*time.Second, "three more polls", func() bool { return e.counter(polls) >= before+3 })
	time.Sleep(300 * time.Millisecond) // the router delivers what a poll appended
	check("later polls")

	if err := e.srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("serve exited with %v\n%s", err, e.logs())
	}
	e.serve(false)
	eventuallyTrueWithin(t, 10*time.Second, "three polls after the restart", func() bool { return e.counter(polls) >= 3 })
	time.Sleep(300 * time.Millisecond)
	check("after a restart")
	t.Logf("email events: 4 added, the app got %d tracks, %v of an unknown user left out", len(sourceCalls(e.app, "crm-in")), leftOut)
}
