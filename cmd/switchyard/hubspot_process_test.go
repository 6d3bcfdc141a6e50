package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// startSandbox runs `switchyard hubspot-sandbox` at the free tier for portal
// 777 and returns its base URL once it answers.
func startSandbox(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	startReady(t, addr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", "777")
	return "http://" + addr
}

// sandboxGet reads a sandbox control endpoint, failing unless it answers 200.
func sandboxGet(t testing.TB, base, path string) gjson.Result {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	return gjson.ParseBytes(raw)
}

// portalCounts is how many records of each kind the sandbox holds.
type portalCounts struct {
	Contacts, Companies, Associations, EventOccurrences, ListMembers int
}

// countPortal counts the sandbox's contacts, companies, associations, event
// occurrences and the members of all its lists.
func countPortal(t *testing.T, base string) portalCounts {
	t.Helper()
	results := func(path string) []gjson.Result { return sandboxGet(t, base, path).Get("results").Array() }
	c := portalCounts{
		Contacts:         len(results("/_sandbox/objects/contacts")),
		Companies:        len(results("/_sandbox/objects/companies")),
		Associations:     len(results("/_sandbox/associations")),
		EventOccurrences: len(results("/_sandbox/events")),
	}
	for _, list := range results("/_sandbox/lists") {
		c.ListMembers += len(list.Get("members").Array())
	}
	return c
}

// sandboxCall makes an API call to the sandbox and returns its answer.
func sandboxCall(t *testing.T, base, method, path, body string) gjson.Result {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer pat-e2e")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return gjson.ParseBytes(raw)
}

// TestServeDeliversToHubSpot runs the sandbox as its own process and
// switchyard serve pointed at it, and checks contacts, companies,
// associations (group before identify) and events, and that one bad record
// is dead-lettered alone.
func TestServeDeliversToHubSpot(t *testing.T) {
	base := startSandbox(t)

	// The portal already has Globex, and a manual list for an audience.
	sandboxCall(t, base, "POST", "/crm/v3/objects/companies/batch/create", `{"inputs":[{"properties":{"domain":"globex.example","name":"Globex"}}]}`)
	listID := sandboxCall(t, base, "POST", "/crm/v3/lists", `{"name":"VIP","objectTypeId":"0-1","processingType":"MANUAL"}`).Get("list.listId").String()
	if listID == "" {
		t.Fatal("creating the list failed")
	}

	cfgPath := writeConfig(t, `sources:
  - name: app
    write_keys: [k]
destinations:
  - name: crm
    type: hubspot
    hubspot:
      max_wait: 50ms
      lists: {vip: "`+listID+`"}
`)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir,
		"--hubspot-url", base, "--hubspot-token", "pat-e2e", "--hubspot-hub-id", "777", "--hubspot-tier", "free")

	post(t, addr, "/v1/batch", "k", `{"batch":[
	  {"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme","website":"https://www.acme.example/about"}},
	  {"type":"identify","userId":"u1","traits":{"email":"ada@acme.example","firstName":"Ada","title":"CTO"}},
	  {"type":"track","userId":"u1","event":"Order Completed","properties":{"total":42}},
	  {"type":"identify","userId":"u2","traits":{"email":"bad@@acme..example"}},
	  {"type":"identify","userId":"u3","traits":{"email":"grace@acme.example","lastName":"Hopper"}},
	  {"type":"track","userId":"u1","event":"Audience Entered","properties":{"audience_key":"vip","audience_name":"VIP"}}
	]}`)
	// identify first, then group, for an existing company.
	post(t, addr, "/v1/identify", "k", `{"userId":"u4","traits":{"email":"bob@globex.example"}}`)
	post(t, addr, "/v1/group", "k", `{"userId":"u4","groupId":"g4","traits":{"name":"Globex Corp","website":"http://www.globex.example"}}`)

	eventuallyTrue(t, "contacts, companies, associations, events and the list are in HubSpot", func() bool {
		return len(sandboxGet(t, base, "/_sandbox/objects/contacts").Get("results").Array()) == 3 &&
			sandboxGet(t, base, "/_sandbox/objects/companies").Get(`results.#(properties.name=="Globex Corp")`).Exists() &&
			len(sandboxGet(t, base, "/_sandbox/associations").Get("results").Array()) >= 2 &&
			len(sandboxGet(t, base, "/_sandbox/events").Get("results").Array()) == 2 &&
			len(sandboxGet(t, base, "/_sandbox/lists").Get("results.0.members").Array()) == 1
	})
	companies := sandboxGet(t, base, "/_sandbox/objects/companies").Get("results")
	if n := len(companies.Array()); n != 2 {
		t.Fatalf("%d companies, want Acme (new) and Globex (reused, not duplicated): %s", n, companies.Raw)
	}
	bob := sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="bob@globex.example")`)
	globex := companies.Get(`#(properties.domain=="globex.example")`)
	if !sandboxGet(t, base, "/_sandbox/associations").Get(fmt.Sprintf(`results.#(fromObjectId==%q)#`, bob.Get("id").String())).Get(fmt.Sprintf(`#(toObjectId==%q)`, globex.Get("id").String())).Exists() {
		t.Fatalf("bob not associated with globex: %s", sandboxGet(t, base, "/_sandbox/associations").Raw)
	}
	contacts := sandboxGet(t, base, "/_sandbox/objects/contacts")
	ada := contacts.Get(`results.#(properties.email=="ada@acme.example")`)
	if ada.Get("properties.firstname").String() != "Ada" || ada.Get("properties.jobtitle").String() != "CTO" {
		t.Fatalf("contact %s", ada.Raw)
	}
	company := companies.Get(`#(properties.domain=="acme.example")`)
	if !company.Exists() {
		t.Fatalf("companies %s", companies.Raw)
	}
	if m := sandboxGet(t, base, "/_sandbox/lists").Get("results.0.members.0").String(); m != ada.Get("id").String() {
		t.Fatalf("list members %s, want ada %s", sandboxGet(t, base, "/_sandbox/lists").Raw, ada.Get("id").String())
	}
	assoc := sandboxGet(t, base, "/_sandbox/associations").Get(fmt.Sprintf(`results.#(fromObjectId==%q)`, ada.Get("id").String()))
	if assoc.Get("toObjectId").String() != company.Get("id").String() {
		t.Fatalf("associations %s", sandboxGet(t, base, "/_sandbox/associations").Raw)
	}
	event := sandboxGet(t, base, "/_sandbox/events").Get(`results.#(eventName=="pe777_order_completed")`)
	if event.Get("properties.total").String() != "42" {
		t.Fatalf("events %s", sandboxGet(t, base, "/_sandbox/events").Raw)
	}
	definition := sandboxCall(t, base, "GET", "/events/v3/event-definitions/order_completed?includeProperties=true", "")
	if definition.Get("fullyQualifiedName").String() != "pe777_order_completed" || !definition.Get(`properties.#(name=="total")`).Exists() {
		t.Fatalf("the event was not defined before it was sent: %s", definition.Raw)
	}

	// A late event from an offline device, older than what HubSpot has:
	// its new property is written, its stale one is not.
	post(t, addr, "/v1/identify", "k", `{"userId":"u1","timestamp":"2026-01-01T00:00:00Z","traits":{"email":"ada@acme.example","title":"Intern","lastName":"Lovelace"}}`)
	adaNow := func() gjson.Result {
		return sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="ada@acme.example")`)
	}
	eventuallyTrue(t, "the late identify is delivered", func() bool { return adaNow().Get("properties.lastname").String() == "Lovelace" })
	if title := adaNow().Get("properties.jobtitle").String(); title != "CTO" {
		t.Fatalf("a late event rolled jobtitle back from CTO to %q", title)
	}

	srv.stop(t, syscall.SIGTERM)
	var bad []gjson.Result
	for _, d := range tailAll(t, "--config", cfgPath, "--data-dir", dataDir, "--topic", "dlq") {
		bad = append(bad, d)
	}
	if len(bad) != 1 || bad[0].Get("message.traits.email").String() != "bad@@acme..example" || bad[0].Get("stage").String() != "crm" ||
		!strings.Contains(bad[0].Get("reason").String(), "bad@@acme..example") {
		t.Fatalf("dead letters: %v", bad)
	}

	// Replaying the whole log, older events included, changes nothing: no
	// record is added or lost, and no property rolls back.
	before := countPortal(t, base)
	if before.Contacts != 3 || before.Companies != 2 || before.Associations < 2 || before.EventOccurrences != 2 || before.ListMembers != 1 {
		t.Fatalf("before the replay the portal holds %+v, want 3 contacts, 2 companies, at least 2 associations, 2 event occurrences and 1 list member", before)
	}
	upsertCalls := func() (n int64) {
		sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(endpoint, statuses gjson.Result) bool {
			if endpoint.Str == "POST /crm/v3/objects/{objectType}/batch/upsert" {
				n = statuses.Get("200").Int() + statuses.Get("207").Int()
			}
			return true
		})
		return n
	}
	upserts := upsertCalls()
	replay := exec.Command(binary, "replay", "--config", cfgPath, "--data-dir", dataDir, "--destination", "crm", "--from", "0",
		"--hubspot-url", base, "--hubspot-token", "pat-e2e", "--hubspot-hub-id", "777", "--hubspot-tier", "free")
	if out, err := replay.CombinedOutput(); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if upsertCalls() == upserts {
		t.Fatal("the replay sent no contacts")
	}
	if title := adaNow().Get("properties.jobtitle").String(); title != "CTO" {
		t.Fatalf("the replay rolled jobtitle back from CTO to %q", title)
	}
	if last := adaNow().Get("properties.lastname").String(); last != "Lovelace" {
		t.Fatalf("the replay changed lastname from Lovelace to %q", last)
	}
	if after := countPortal(t, base); after != before {
		t.Fatalf("the replay changed the portal from %+v to %+v", before, after)
	}
}

// TestAReplayAddsNoEventOccurrences sends 20 tracks through serve into the
// sandbox, then replays the whole log to the same portal: each occurrence
// goes with the uuid of its message, so HubSpot still holds 20.
func TestAReplayAddsNoEventOccurrences(t *testing.T) {
	base := startSandbox(t)
	cfgPath := writeConfig(t, `sources:
  - name: app
    write_keys: [k]
destinations:
  - name: crm
    type: hubspot
    hubspot:
      max_wait: 50ms
`)
	dataDir := t.TempDir()
	hubspotArgs := []string{"--hubspot-url", base, "--hubspot-token", "pat-e2e", "--hubspot-hub-id", "777", "--hubspot-tier", "free"}
	srv := start(t, freeAddr(t), append([]string{"serve", "--config", cfgPath, "--data-dir", dataDir}, hubspotArgs...)...)
	var tracks []string
	for i := 0; i < 20; i++ {
		tracks = append(tracks, fmt.Sprintf(`{"type":"track","userId":"u1","event":"Report Exported","properties":{"email":"replay@example.com","n":%d}}`, i))
	}
	post(t, srv.addr, "/v1/batch", "k", `{"batch":[`+strings.Join(tracks, ",")+`]}`)
	occurrences := func() int { return len(sandboxGet(t, base, "/_sandbox/events").Get("results").Array()) }
	eventuallyTrue(t, "20 occurrences are in HubSpot", func() bool { return occurrences() == 20 })
	srv.stop(t, syscall.SIGTERM)

	eventCalls := func() (n int64) {
		sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(endpoint, statuses gjson.Result) bool {
			if strings.HasPrefix(endpoint.Str, "POST /events/v3/send") {
				statuses.ForEach(func(_, c gjson.Result) bool { n += c.Int(); return true })
			}
			return true
		})
		return n
	}
	calls := eventCalls()
	replay := exec.Command(binary, append([]string{"replay", "--config", cfgPath, "--data-dir", dataDir, "--destination", "crm", "--from", "0"}, hubspotArgs...)...)
	if out, err := replay.CombinedOutput(); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if eventCalls() == calls {
		t.Fatal("the replay sent no events")
	}
	if n := occurrences(); n != 20 {
		t.Fatalf("%d occurrences after the replay, want 20", n)
	}
	uuids := map[string]bool{}
	for _, e := range sandboxGet(t, base, "/_sandbox/events").Get("results").Array() {
		uuids[e.Get("uuid").String()] = true
	}
	if len(uuids) != 20 {
		t.Fatalf("%d distinct uuids among 20 occurrences", len(uuids))
	}
}

// TestServeWithoutATokenUsesTheSandboxAndSaysSo checks the out-of-the-box
// pipeline: no destination configured, no token.
func TestServeWithoutATokenUsesTheSandboxAndSaysSo(t *testing.T) {
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--data-dir", t.TempDir(), "--write-key", "k")
	post(t, addr, "/v1/identify", "k", `{"userId":"u1","traits":{"email":"demo@example.com"}}`)
	var base string
	eventuallyTrue(t, "the sandbox address is logged", func() bool {
		m := regexp.MustCompile(`"sandbox":"(http://127\.0\.0\.1:\d+)"`).FindStringSubmatch(srv.logs())
		if m != nil {
			base = m[1]
		}
		return base != ""
	})
	if !strings.Contains(srv.logs(), "NO HUBSPOT TOKEN") {
		t.Fatalf("no loud warning:\n%s", srv.logs())
	}
	eventuallyTrue(t, "the contact reaches the sandbox", func() bool {
		return sandboxGet(t, base, "/_sandbox/objects/contacts").Get(`results.#(properties.email=="demo@example.com")`).Exists()
	})
}

// count429 sums the sandbox's 429 answers.
func count429(t *testing.T, base string) int {
	t.Helper()
	n := 0
	sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(_, byStatus gjson.Result) bool {
		n += int(byStatus.Get("429").Int())
		return true
	})
	return n
}

// TestTwoRoutersShareOneHubSpotToken runs two router processes in one
// consumer group on the real Kafka broker, both serving one free-tier
// sandbox token, and offers more contacts than the token's ceiling: each
// router takes the share of the partitions it owns, so HubSpot sees no 429
// at steady state, and together they use at least 70% of the ceiling.
func TestTwoRoutersShareOneHubSpotToken(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	base := startSandbox(t)
	suffix := uniqueSuffix()
	cfgPath := writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [k]
log:
  events_topic: share-events-%s
  dlq_topic: share-dlq-%s
  partitions: 8
destinations:
  - name: crm
    type: hubspot
    hubspot:
      url: %s
      token: shared-token
      hub_id: 777
      tier: free
      max_wait: 100ms
`, suffix, suffix, base))
	args := []string{"--config", cfgPath, "--kafka-brokers", brokers}
	gw := start(t, freeAddr(t), append([]string{"gateway", "--data-dir", t.TempDir()}, args...)...)
	r1 := start(t, freeAddr(t), append([]string{"router", "--data-dir", t.TempDir()}, args...)...)
	r2 := start(t, freeAddr(t), append([]string{"router", "--data-dir", t.TempDir()}, args...)...)

	next := 0
	postContacts := func(n int) {
		var items []string
		for i := 0; i < n; i++ {
			items = append(items, fmt.Sprintf(`{"type":"identify","userId":"u%d","traits":{"email":"c%d@example.com","firstname":"C%d"}}`, next, next, next))
			next++
		}
		post(t, gw.addr, "/v1/batch", "k", `{"batch":[`+strings.Join(items, ",")+`]}`)
	}
	// Settle: until each router says it owns 4 of the 8 partitions.
	shared := regexp.MustCompile(`"msg":"budget share","destination":"crm","partitions":4,"of":8`)
	eventuallyTrue(t, "both routers take half the budget", func() bool {
		postContacts(20)
		time.Sleep(200 * time.Millisecond)
		return shared.MatchString(r1.logs()) && shared.MatchString(r2.logs())
	})
	before := count429(t, base)
	callsBefore := sandboxGet(t, base, "/_sandbox/stats").Get("endpoints")

	// Steady state: 1,500 contacts/s offered for 12 s against the free
	// tier's ceiling: 100 calls per 10 s, each upserting up to 100
	// contacts, is 1,000 contacts/s.
	const ceiling = 1000.0
	contacts := func() int { return len(sandboxGet(t, base, "/_sandbox/objects/contacts").Get("results").Array()) }
	first := next
	began := time.Now()
	// The rate is measured from 10 s on: before, the routers may spend what
	// the rolling window saved while they settled; after, the backlog keeps
	// them at the ceiling.
	var from int
	var fromAt time.Time
	for tick := 0; tick < 120; tick++ {
		if fromAt.IsZero() && time.Since(began) >= 10*time.Second {
			from, fromAt = contacts(), time.Now()
		}
		postContacts(150)
		time.Sleep(time.Until(began.Add(time.Duration(tick+1) * 100 * time.Millisecond)))
	}
	last := next
	t.Logf("posted %d contacts in %.1fs; %d in HubSpot at %.1fs", last-first, time.Since(began).Seconds(), from, fromAt.Sub(began).Seconds())
	// Polled every 250 ms: reading every contact holds the sandbox's lock.
	var ended time.Time
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if contacts() >= last {
			ended = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until every contact is in HubSpot: %d of %d", contacts(), last)
		}
	}
	var calls []string
	sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(route, byStatus gjson.Result) bool {
		if n := byStatus.Get("200").Int() - callsBefore.Get(gjson.Escape(route.String())+".200").Int(); n > 0 {
			calls = append(calls, fmt.Sprintf("%s: %d", route, n))
		}
		return true
	})
	seconds := ended.Sub(fromAt).Seconds()
	rate := float64(last-from) / seconds
	n429 := count429(t, base) - before
	t.Logf("%d contacts at steady state in %.1fs, %d 429s; after the first 10 s %d contacts in %.1fs: %.0f/s, %.0f%% of the %.0f/s ceiling; calls: %s",
		last-first, ended.Sub(began).Seconds(), n429, last-from, seconds, rate, 100*rate/ceiling, ceiling, strings.Join(calls, ", "))
	if n429 != 0 {
		t.Fatalf("%d answers were 429 at steady state with two routers on one token", n429)
	}
	if rate < 0.7*ceiling {
		t.Fatalf("the two routers delivered %.0f contacts/s, under 70%% of the token's %.0f/s ceiling", rate, ceiling)
	}
}

// TestServeSaysWhenHubSpotRefusesTheToken runs serve with a token the
// sandbox refuses (401): it logs one ERROR naming the problem however many
// batches fail, /readyz stays 200 (the gateway still takes events) and
// names the destination unhealthy, and the gauge reads 0.
func TestServeSaysWhenHubSpotRefusesTheToken(t *testing.T) {
	addr := freeAddr(t)
	startReady(t, addr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", "777", "--tokens", "pat-granted")
	base := "http://" + addr

	cfgPath := writeConfig(t, `sources:
  - name: app
    write_keys: [k]
destinations:
  - name: crm
    type: hubspot
    hubspot:
      max_wait: 20ms
`)
	gw := freeAddr(t)
	srv := start(t, gw, "serve", "--config", cfgPath, "--data-dir", t.TempDir(),
		"--hubspot-url", base, "--hubspot-token", "pat-refused", "--hubspot-hub-id", "777", "--hubspot-tier", "free")
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + gw + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventuallyTrue(t, "/readyz names the destination unhealthy", func() bool {
		_, body := readyz()
		return gjson.Get(body, "destinations.crm").Exists() && !gjson.Get(body, "destinations.crm.healthy").Bool()
	})
	for i := 0; i < 10; i++ {
		post(t, gw, "/v1/identify", "k", fmt.Sprintf(`{"userId":"u%d","traits":{"email":"u%d@example.com"}}`, i, i))
	}
	eventuallyTrue(t, "several refused calls", func() bool {
		return count401(t, base) >= 3
	})
	status, body := readyz()
	if status != http.StatusOK || gjson.Get(body, "status").String() != "ready" ||
		!strings.Contains(gjson.Get(body, "destinations.crm.reason").String(), "invalid or expired") {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if n := strings.Count(srv.logs(), "invalid or expired"); n != 1 {
		t.Fatalf("%d log lines name the refused token, want 1:\n%s", n, srv.logs())
	}
	if strings.Contains(srv.logs(), "pat-refused") {
		t.Fatalf("the token is in the log:\n%s", srv.logs())
	}
	if v, ok := scrapeCounter(gw, `switchyard_destination_healthy{destination="crm"}`); !ok || v != 0 {
		t.Fatalf("switchyard_destination_healthy = %v (found %v), want 0", v, ok)
	}
}

// count401 sums the sandbox's 401 answers.
func count401(t *testing.T, base string) int {
	t.Helper()
	n := 0
	sandboxGet(t, base, "/_sandbox/stats").Get("endpoints").ForEach(func(_, byStatus gjson.Result) bool {
		n += int(byStatus.Get("401").Int())
		return true
	})
	return n
}
