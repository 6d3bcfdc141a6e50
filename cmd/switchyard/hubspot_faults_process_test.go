package main

// HubSpot fault storms: switchyard serve on the embedded log delivers mixed
// traffic to the sandbox (run as its own process) while the sandbox answers
// 429s, 5xx, 423s or too slowly. Each test prints what it injected and what
// it counted, and checks that every acknowledged event is delivered or
// dead-lettered with a reason, and that HubSpot holds one contact per email
// and one company per domain.

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// stormCompanies is how many companies the storm's users belong to: each
// domain is shared by many users, so many batches write it at once.
const stormCompanies = 12

// stormTraffic is the mixed traffic a storm posts, and what it expects
// HubSpot to hold: per user an identify with an email, a group whose
// website names the user's company, and two tracks; every 20th user also
// brings an identify whose email HubSpot refuses, to be dead-lettered.
type stormTraffic struct {
	t    *testing.T
	addr string

	users   int
	emails  []string          // each user's email
	domain  map[string]string // email -> company domain
	tracks  map[string]bool   // the tracks' messageIds
	badIDs  map[string]bool   // messageIds that must be dead-lettered
	acked   int               // events the gateway answered 200 for
	batches int
}

func newStormTraffic(t *testing.T, addr string) *stormTraffic {
	return &stormTraffic{t: t, addr: addr, domain: map[string]string{}, tracks: map[string]bool{}, badIDs: map[string]bool{}}
}

// post sends the events of n new users in one batch.
func (tr *stormTraffic) post(n int) {
	tr.t.Helper()
	var items []string
	for k := 0; k < n; k++ {
		i := tr.users
		tr.users++
		user, company := fmt.Sprintf("u%d", i), i%stormCompanies
		email := fmt.Sprintf("u%d@storm%d.example", i, company)
		tr.emails = append(tr.emails, email)
		tr.domain[email] = fmt.Sprintf("storm%d.example", company)
		identify := fmt.Sprintf(`{"type":"identify","messageId":"identify-%s","userId":%q,"traits":{"email":%q,"firstName":"U%d"}}`, user, user, email, i)
		group := fmt.Sprintf(`{"type":"group","messageId":"group-%s","userId":%q,"groupId":"g%d","traits":{"name":"Storm %d","website":"https://www.storm%d.example/"}}`,
			user, user, company, company, company)
		var tracks []string
		for step := 0; step < 2; step++ {
			id := fmt.Sprintf("track-%s-%d", user, step)
			tr.tracks[id] = true
			tracks = append(tracks, fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Storm Step","properties":{"email":%q,"step":%q}}`, id, user, email, id))
		}
		if i%2 == 0 { // group before identify: the association waits for the contact
			items = append(items, group, identify)
		} else {
			items = append(items, identify, group)
		}
		items = append(items, tracks...)
		if i%20 == 0 {
			id := fmt.Sprintf("bad-%s", user)
			tr.badIDs[id] = true
			items = append(items, fmt.Sprintf(`{"type":"identify","messageId":%q,"userId":"bad%d","traits":{"email":"bad%d@@storm..example"}}`, id, i, i))
		}
	}
	post(tr.t, tr.addr, "/v1/batch", "k", `{"batch":[`+strings.Join(items, ",")+`]}`)
	tr.acked += len(items)
	tr.batches++
}

// run posts two users' events every 250ms for load, or until one of done
// (checked after each tick) says so, calling inject first at each tick with
// the time since the load began.
func (tr *stormTraffic) run(load time.Duration, inject func(elapsed time.Duration), done ...func() bool) {
	tr.t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for start := time.Now(); time.Since(start) < load; <-tick.C {
		inject(time.Since(start))
		tr.post(2)
		for _, d := range done {
			if d() {
				return
			}
		}
	}
}

// startStormPipeline starts the sandbox and switchyard serve delivering to
// it through a hubspot destination with the given extra hubspot settings;
// it returns the sandbox's base URL, the serve process, and the config and
// data dir for reading the dead letters.
func startStormPipeline(t *testing.T, hubspotExtra string) (base string, srv *server, cfgPath, dataDir string) {
	t.Helper()
	base = startSandbox(t)
	cfgPath = writeConfig(t, `sources:
  - name: app
    write_keys: [k]
destinations:
  - name: crm
    type: hubspot
    backoff_min: 100ms
    backoff_max: 2s
    hubspot:
      max_wait: 100ms
`+hubspotExtra)
	dataDir = t.TempDir()
	srv = start(t, freeAddr(t), "serve", "--config", cfgPath, "--data-dir", dataDir,
		"--hubspot-url", base, "--hubspot-token", "pat-storm", "--hubspot-hub-id", "777", "--hubspot-tier", "free")
	return base, srv, cfgPath, dataDir
}

// sandboxControl posts a switch to the sandbox, failing unless it answers 204.
func sandboxControl(t *testing.T, base, path, body string) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s %s: %d", path, body, resp.StatusCode)
	}
}

// answersByStatus sums the sandbox's API answers by status.
func answersByStatus(t *testing.T, base string) map[int]int {
	t.Helper()
	out := map[int]int{}
	sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(_, byStatus gjson.Result) bool {
		byStatus.ForEach(func(status, n gjson.Result) bool {
			out[int(status.Int())] += int(n.Int())
			return true
		})
		return true
	})
	return out
}

// hubspotCalls counts serve's HubSpot calls by endpoint ("companies/upsert")
// and outcome (ok, http_429, transient, ...).
func hubspotCalls(t *testing.T, addr string) map[string]map[string]int {
	t.Helper()
	families, err := scrapeMetrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for _, m := range families["switchyard_hubspot_calls_total"].GetMetric() {
		var endpoint, outcome string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "endpoint":
				endpoint = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		if out[endpoint] == nil {
			out[endpoint] = map[string]int{}
		}
		out[endpoint][outcome] += int(m.GetCounter().GetValue())
	}
	return out
}

// hubspotCallOutcomes sums serve's HubSpot calls by outcome.
func hubspotCallOutcomes(t *testing.T, addr string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, byOutcome := range hubspotCalls(t, addr) {
		for outcome, n := range byOutcome {
			out[outcome] += n
		}
	}
	return out
}

// routerOutcomes reads serve's crm router counts: delivered, retried,
// dead_lettered, and the dead letters by class.
func routerOutcomes(t *testing.T, addr string) (outcomes, deadByClass map[string]int) {
	t.Helper()
	families, err := scrapeMetrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	read := func(family, label string) map[string]int {
		out := map[string]int{}
		for _, m := range families[family].GetMetric() {
			var dest, key string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "destination":
					dest = l.GetValue()
				case label:
					key = l.GetValue()
				}
			}
			if dest == "crm" {
				out[key] += int(m.GetCounter().GetValue())
			}
		}
		return out
	}
	return read("switchyard_router_events_total", "outcome"), read("switchyard_router_dead_letters_total", "class")
}

// checkStorm waits up to within for every acknowledged event to be
// delivered or dead-lettered, then checks what HubSpot holds: one contact
// per email and every email's contact, one company per domain, every
// contact associated with its company, and every track's occurrence once.
// It stops serve and checks that the dead letters are exactly the refused
// emails, each with a reason. It logs what it counted, and returns serve's
// HubSpot calls by endpoint and outcome.
func (tr *stormTraffic) checkStorm(base string, srv *server, cfgPath, dataDir string, within time.Duration) map[string]map[string]int {
	t := tr.t
	t.Helper()
	drained := time.Now()
	var outcomes, dead map[string]int
	for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
		outcomes, dead = routerOutcomes(t, srv.addr)
		if outcomes["delivered"]+outcomes["dead_lettered"] >= tr.acked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d acknowledged events are finished (%v)\n%s", within,
				outcomes["delivered"]+outcomes["dead_lettered"], tr.acked, outcomes, tailLines(srv.logs(), 20))
		}
	}
	t.Logf("counted: %d events acknowledged in %d batches (%d users), all finished %v after the load: router outcomes %v, dead letters by class %v",
		tr.acked, tr.batches, tr.users, time.Since(drained).Round(100*time.Millisecond), outcomes, dead)
	calls := hubspotCalls(t, srv.addr)
	t.Logf("counted: HubSpot calls by endpoint and outcome %v; sandbox answers by status %s", calls, sortedStatuses(answersByStatus(t, base)))

	// One contact per email, and every user's.
	contactID := map[string]string{}
	contacts := sandboxGet(t, base, "/_sandbox/objects/contacts").Get("results").Array()
	for _, c := range contacts {
		email := c.Get("properties.email").String()
		if contactID[email] != "" {
			t.Errorf("two contacts for %s", email)
		}
		contactID[email] = c.Get("id").String()
	}
	for _, email := range tr.emails {
		if contactID[email] == "" {
			t.Errorf("no contact for %s", email)
		}
	}
	if len(contacts) != len(tr.emails) {
		t.Errorf("%d contacts, want %d", len(contacts), len(tr.emails))
	}

	// One company per domain, and every contact associated with its own.
	companyID := map[string]string{}
	companies := sandboxGet(t, base, "/_sandbox/objects/companies").Get("results").Array()
	for _, c := range companies {
		domain := c.Get("properties.domain").String()
		if companyID[domain] != "" {
			t.Errorf("two companies for %s", domain)
		}
		companyID[domain] = c.Get("id").String()
	}
	if len(companies) != min(stormCompanies, tr.users) {
		t.Errorf("%d companies, want %d", len(companies), min(stormCompanies, tr.users))
	}
	linked := map[[2]string]bool{}
	associations := sandboxGet(t, base, "/_sandbox/associations").Get("results").Array()
	for _, a := range associations {
		linked[[2]string{a.Get("fromObjectId").String(), a.Get("toObjectId").String()}] = true
	}
	missing := 0
	for _, email := range tr.emails {
		if !linked[[2]string{contactID[email], companyID[tr.domain[email]]}] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d contacts are not associated with their company", missing, len(tr.emails))
	}

	// Every track once.
	seen := map[string]int{}
	occurrences := sandboxGet(t, base, "/_sandbox/events").Get("results").Array()
	for _, e := range occurrences {
		seen[e.Get("properties.step").String()]++
	}
	for id := range tr.tracks {
		if seen[id] != 1 {
			t.Errorf("track %s has %d occurrences, want 1", id, seen[id])
		}
	}
	if len(occurrences) != len(tr.tracks) {
		t.Errorf("%d occurrences, want %d", len(occurrences), len(tr.tracks))
	}
	t.Logf("counted: HubSpot holds %d contacts (%d emails), %d companies (%d domains), %d associations, %d event occurrences (%d tracks)",
		len(contacts), len(tr.emails), len(companies), min(stormCompanies, tr.users), len(associations), len(occurrences), len(tr.tracks))

	// The dead letters are the refused emails, each with its reason; none
	// is there for a transient reason.
	srv.stop(t, syscall.SIGTERM)
	letters := tailAll(t, "--config", cfgPath, "--data-dir", dataDir, "--topic", "dlq")
	got := map[string]bool{}
	for _, d := range letters {
		id := d.Get("message.messageId").String()
		got[id] = true
		if !tr.badIDs[id] {
			t.Errorf("dead-lettered %s, which HubSpot can take: %s", id, d.Get("reason").String())
			continue
		}
		if email := d.Get("message.traits.email").String(); !strings.Contains(d.Get("reason").String(), email) {
			t.Errorf("dead letter %s: the reason %q does not name the email %q", id, d.Get("reason").String(), email)
		}
	}
	for id := range tr.badIDs {
		if !got[id] {
			t.Errorf("%s was not dead-lettered", id)
		}
	}
	if len(letters) != len(tr.badIDs) {
		t.Errorf("%d dead letters, want %d", len(letters), len(tr.badIDs))
	}
	t.Logf("counted: %d dead letters, %d identifies with a refused email sent", len(letters), len(tr.badIDs))
	return calls
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sortedStatuses prints a status count map in status order.
func sortedStatuses(m map[int]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// TestHubSpotStormOf429sAnd5xx posts mixed traffic for 70 s: 429 bursts
// every 2 s before and after a minute in which every HubSpot call fails
// with 500, 502, 503 and 504 in turn. Once it ends, every event is
// delivered and only the refused emails are dead-lettered.
func TestHubSpotStormOf429sAnd5xx(t *testing.T) {
	t.Parallel()
	base, srv, cfgPath, dataDir := startStormPipeline(t, "")
	tr := newStormTraffic(t, srv.addr)
	const stormFrom, stormFor, load = 5 * time.Second, time.Minute, 70 * time.Second
	bursts, stormed := 0, false
	lastBurst := -time.Hour
	tr.run(load, func(elapsed time.Duration) {
		switch {
		case elapsed >= stormFrom && !stormed:
			sandboxControl(t, base, "/_sandbox/fail-for", fmt.Sprintf(`{"ms":%d,"statuses":[500,502,503,504]}`, stormFor.Milliseconds()))
			stormed = true
		case (elapsed < stormFrom || elapsed >= stormFrom+stormFor) && elapsed-lastBurst >= 2*time.Second:
			sandboxControl(t, base, "/_sandbox/ratelimit-burst", `{"count":10}`)
			bursts++
			lastBurst = elapsed
		}
	})
	answers := answersByStatus(t, base)
	t.Logf("injected: %d bursts of 10 429s (TEN_SECONDLY_ROLLING), and every call failing for %v from %v into a %v load; answers so far %s",
		bursts, stormFor, stormFrom, load, sortedStatuses(answers))
	if answers[429] == 0 || answers[500] == 0 || answers[502] == 0 || answers[503] == 0 || answers[504] == 0 {
		t.Fatalf("the storm did not reach HubSpot's calls: answers %s", sortedStatuses(answers))
	}
	tr.checkStorm(base, srv, cfgPath, dataDir, 60*time.Second)
}

// TestHubSpotStormOf423s posts mixed traffic for 20 s while the sandbox
// answers 423 Locked to 25 calls every second.
func TestHubSpotStormOf423s(t *testing.T) {
	t.Parallel()
	base, srv, cfgPath, dataDir := startStormPipeline(t, "")
	tr := newStormTraffic(t, srv.addr)
	locks := 0
	lastLock := -time.Hour
	tr.run(20*time.Second, func(elapsed time.Duration) {
		if elapsed-lastLock >= time.Second {
			sandboxControl(t, base, "/_sandbox/lock", `{"count":25}`)
			locks += 25
			lastLock = elapsed
		}
	})
	answers := answersByStatus(t, base)
	t.Logf("injected: 423 Locked for up to %d calls, 25 each second; answers so far %s", locks, sortedStatuses(answers))
	if answers[423] < 50 {
		t.Fatalf("only %d calls were answered 423", answers[423])
	}
	tr.checkStorm(base, srv, cfgPath, dataDir, 60*time.Second)
}

// slowWrites are the endpoints whose calls write to HubSpot: the slow
// storm lasts until a call to each has been applied and timed out.
var slowWrites = []string{"contacts/upsert", "companies/upsert", "properties/create", "event-definitions/create", "events/batch", "associations/default"}

// TestHubSpotStormOfSlowAnswers gives the client a 400ms timeout and has
// the sandbox apply calls but answer them 1.5 s later: every call for 5 s,
// then every third call to each path, the first one included, until the
// first write of each kind (contacts, companies, the domain property, the
// event definition, occurrences, associations) has been applied and timed
// out, then none for 5 s more. The retries must add no contact, company or
// occurrence.
func TestHubSpotStormOfSlowAnswers(t *testing.T) {
	t.Parallel()
	base, srv, cfgPath, dataDir := startStormPipeline(t, "      timeout: 400ms\n")
	tr := newStormTraffic(t, srv.addr)
	sandboxControl(t, base, "/_sandbox/slow", `{"ms":1500,"ratio":1}`)
	phase, cleared := 0, time.Duration(0)
	tr.run(50*time.Second, func(elapsed time.Duration) {
		switch {
		case phase == 0 && elapsed >= 5*time.Second:
			sandboxControl(t, base, "/_sandbox/slow", `{"ms":1500,"ratio":0.34}`)
			phase++
		case phase == 1 && (allTimedOut(hubspotCalls(t, srv.addr)) || elapsed >= 40*time.Second):
			sandboxControl(t, base, "/_sandbox/faults/clear", "")
			phase, cleared = phase+1, elapsed
		case phase == 2 && elapsed >= cleared+5*time.Second:
			phase++
		}
	}, func() bool { return phase == 3 })
	t.Logf("injected: a 400ms client timeout; answers 1.5 s late for every call for 5 s, then for every third call to each path until %v; calls by outcome so far %v",
		cleared.Round(100*time.Millisecond), hubspotCallOutcomes(t, srv.addr))
	calls := tr.checkStorm(base, srv, cfgPath, dataDir, 60*time.Second)
	if !allTimedOut(calls) {
		t.Errorf("not every write timed out once (%v): calls %v", slowWrites, calls)
	}
}

// allTimedOut tells whether a call to each of slowWrites timed out.
func allTimedOut(calls map[string]map[string]int) bool {
	for _, endpoint := range slowWrites {
		if calls[endpoint]["transient"] == 0 {
			return false
		}
	}
	return true
}
