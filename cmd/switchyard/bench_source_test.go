package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// The source's benchmark rig: the source's name, the sandbox's portal and
// the app's client secret.
const (
	benchSourceName   = "crm-in"
	benchSourceHubID  = 777
	benchSourceSecret = "bench-client-secret"
)

// BenchmarkSource measures the HubSpot source through `switchyard serve`
// (embedded log) with a hubspot source, a hubspot destination to a
// free-tier `switchyard hubspot-sandbox` process and a webhook destination
// to a local receiver standing for the app, and prints one table of
// figures with the machine they were measured on. Each scenario is a
// sub-benchmark with a rig of its own, so `-bench 'BenchmarkSource/edits'`
// runs one:
//
//   - webhooks: 10 concurrent HubSpot-style deliveries of 100 signed (v1
//     and v3) notifications each, posted to the source's webhook target for
//     BENCH_DURATION; notifications/s answered 200 and the requests'
//     p50/p99.
//   - edits: BENCH_RATE edits/s (default 100) for BENCH_DURATION made in the
//     sandbox as a person in HubSpot's UI would; p50/p99 from each edit to
//     its identify in the log (the log's append time, which `switchyard
//     tail --meta` reads once serve has stopped) and at the app's receiver.
//   - catch-up: BENCH_RECORDS (default 5,000) known users' contacts edited
//     in the sandbox with no webhook reaching serve, then one catch-up
//     through serve's admin endpoint, timed to its end; records/s against
//     the search ceiling (5 searches/s of 200) and the searches made.
//   - full-sync: BENCH_FULL_RECORDS (default 30,000) known users' contacts
//     and one full sync with the destination idle, then one while a steady
//     BENCH_RATE identifies/s through the gateway keep the hubspot
//     destination spending part of the token's budget; records/s against
//     the free tier's 1,000 and the share of the token's 10-second budget
//     used, both over the sync's whole 10-second windows.
//
// BENCH_HUBSPOT_LATENCY (default 0) delays each of the sandbox's API
// answers in the syncs' measured runs, as HubSpot's own time to answer
// would.
//
// BENCH_DURATION defaults to 30s; BENCH_BATCH_WAIT sets the source's
// batch_wait (default: the source's own default). Run it with
// `make bench-source`.
func BenchmarkSource(b *testing.B) {
	env := sourceBenchEnvFrom(b)
	// A scenario starts a rig of its own (startSourceRig) and returns its
	// figures, a ceiling or goal in their against column. Add a scenario
	// to this list.
	scenarios := []struct {
		name string
		run  func(*testing.B, sourceBenchEnv) []sourceFigure
	}{
		{"webhooks", benchSourceWebhooks},
		{"edits", benchSourceEdits},
		{"catch-up", benchSourceCatchUp},
		{"full-sync", benchSourceFullSync},
	}
	var figures []sourceFigure
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				figures = append(figures, sc.run(b, env)...)
			}
		})
	}
	if len(figures) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "scenario\tfigure\tvalue\tagainst\t\n")
	for _, f := range figures {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", f.scenario, f.figure, f.value, f.against)
	}
	w.Flush()
	batchWait := env.batchWait
	if batchWait == "" {
		batchWait = "the default"
	}
	fmt.Printf("webhooks and edits %s each; catch-up %d records, full sync %d, HubSpot latency in the syncs %s; source batch_wait %s; serve on the embedded log, sandbox at the free tier; %s, %d logical CPUs\n",
		env.duration, env.records, env.fullRecords, env.latency, batchWait, cpuModel(), numCPU())
}

// sourceBenchEnv is the benchmark's settings, from the environment.
type sourceBenchEnv struct {
	duration  time.Duration
	rate      int    // edits per second
	batchWait string // the source's batch_wait; "" for its default
	// records is the catch-up's contacts, fullRecords the full sync's.
	records, fullRecords int
	// latency delays every sandbox API answer of the syncs' measured runs.
	latency time.Duration
}

func sourceBenchEnvFrom(b *testing.B) sourceBenchEnv {
	env := sourceBenchEnv{duration: 30 * time.Second, rate: 100, batchWait: os.Getenv("BENCH_BATCH_WAIT"),
		records: 5000, fullRecords: 30000}
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			b.Fatalf("BENCH_DURATION=%q: want a Go duration of at least 1s", v)
		}
		env.duration = d
	}
	if v := os.Getenv("BENCH_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < 1 || r > 1000 {
			b.Fatalf("BENCH_RATE=%q: want edits per second, 1 to 1000", v)
		}
		env.rate = r
	}
	for _, n := range []struct {
		name string
		into *int
	}{{"BENCH_RECORDS", &env.records}, {"BENCH_FULL_RECORDS", &env.fullRecords}} {
		if v := os.Getenv(n.name); v != "" {
			r, err := strconv.Atoi(v)
			if err != nil || r < 1 || r > 200000 {
				b.Fatalf("%s=%q: want a number of contacts, 1 to 200000", n.name, v)
			}
			*n.into = r
		}
	}
	if v := os.Getenv("BENCH_HUBSPOT_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 10*time.Second {
			b.Fatalf("BENCH_HUBSPOT_LATENCY=%q: want a Go duration, 0 to 10s", v)
		}
		env.latency = d
	}
	if env.batchWait != "" {
		if _, err := time.ParseDuration(env.batchWait); err != nil {
			b.Fatalf("BENCH_BATCH_WAIT=%q: %v", env.batchWait, err)
		}
	}
	return env
}

// sourceFigure is one line of the table: a scenario's figure, its value
// with its unit, and the goal or ceiling it is read against ("" when none).
type sourceFigure struct {
	scenario, figure, value, against string
}

// sourceRig is a running sandbox and serve with the source between them.
type sourceRig struct {
	serve   *server
	config  string       // serve's config file
	dataDir string       // serve's data directory
	sandbox string       // the sandbox's base URL
	app     *appRecorder // the app's receiver
	client  *http.Client // for the benchmark's own requests
	hook    string       // the source's webhook target URL
}

// startSourceRig starts the app's receiver, the sandbox (sending its
// signed webhooks to serve when webhooks is set, else none), and serve
// with the source, a hubspot destination to the sandbox and a webhook
// destination to the app.
func startSourceRig(b *testing.B, env sourceBenchEnv, webhooks bool) *sourceRig {
	b.Helper()
	app := &appRecorder{source: benchSourceName}
	receiver := httptest.NewServer(app)
	b.Cleanup(receiver.Close)

	addr, sandboxAddr := freeAddr(b), freeAddr(b)
	hook := "http://" + addr + "/hubspot/webhooks/" + benchSourceName
	sandboxArgs := []string{"hubspot-sandbox", "--tier", "free", "--hub-id", strconv.Itoa(benchSourceHubID), "--log-level", "warn"}
	if webhooks {
		sandboxArgs = append(sandboxArgs, "--webhook-url", hook, "--client-secret", benchSourceSecret)
	}
	startReady(b, sandboxAddr, "/_sandbox/stats", sandboxArgs...)
	sandboxURL := "http://" + sandboxAddr
	batchWait := ""
	if env.batchWait != "" {
		batchWait = "      batch_wait: " + env.batchWait + "\n"
	}
	cfgPath := writeConfig(b, fmt.Sprintf(`log_level: warn
sources:
  - name: app
    write_keys: [bench-key]
  - name: %s
    type: hubspot
    hubspot:
      token: pat-bench
      url: %s
      client_secret: %s
      contacts: {firstname: first_name}
%sdestinations:
  - name: crm
    type: hubspot
    hubspot:
      token: pat-bench
      url: %s
      hub_id: %d
      tier: free
  - name: app-hook
    type: webhook
    webhook:
      url: %s
`, benchSourceName, sandboxURL, benchSourceSecret, batchWait, sandboxURL, benchSourceHubID, receiver.URL))
	dataDir := filepath.Join(b.TempDir(), "data")
	srv := start(b, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)
	b.Cleanup(func() { srv.stop(b, syscall.SIGTERM) })
	return &sourceRig{serve: srv, config: cfgPath, dataDir: dataDir, sandbox: sandboxURL, app: app, hook: hook,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 20}}}
}

// benchSourceWebhooks posts HubSpot-style deliveries to the source's
// webhook target from 10 connections, each a signed array of 100 contact
// propertyChange notifications, and returns the notifications/s answered
// 200 and the requests' p50/p99 (after 2 s of warm-up).
func benchSourceWebhooks(b *testing.B, env sourceBenchEnv) []sourceFigure {
	const deliveries, perDelivery = 10, 100
	rig := startSourceRig(b, env, true)
	var (
		stop     atomic.Bool
		accepted atomic.Int64 // requests answered 200 after the warm-up
		total    atomic.Int64 // requests answered 200, the warm-up's included
		failed   atomic.Int64
		eventID  atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		wg       sync.WaitGroup
	)
	warmup := 2 * time.Second
	measureFrom := time.Now().Add(warmup)
	for c := 0; c < deliveries; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var latencies []time.Duration
			for !stop.Load() {
				first := eventID.Add(perDelivery) - perDelivery
				body := hubspotDelivery(first, perDelivery, time.Now())
				t0 := time.Now()
				status := rig.postSigned(body, t0)
				elapsed := time.Since(t0)
				if status == http.StatusOK {
					total.Add(1)
				}
				if t0.Before(measureFrom) {
					continue
				}
				if status != http.StatusOK {
					failed.Add(1)
					continue
				}
				accepted.Add(1)
				latencies = append(latencies, elapsed)
			}
			mu.Lock()
			all = append(all, latencies...)
			mu.Unlock()
		}()
	}
	time.Sleep(warmup + env.duration)
	stop.Store(true)
	wg.Wait()
	counted, _ := scrapeCounter(rig.serve.addr, `switchyard_hubspot_source_notifications_total{source="`+benchSourceName+`"}`)

	slices.Sort(all)
	perSec := float64(accepted.Load()*perDelivery) / env.duration.Seconds()
	const name = "webhooks (10 deliveries of 100)"
	return []sourceFigure{
		{name, "notifications/s accepted", fmt.Sprintf("%.0f", perSec), ""},
		{name, "request p50", fmtMS(percentile(all, 0.50)), ""},
		{name, "request p99", fmtMS(percentile(all, 0.99)), "HubSpot waits 5 s"},
		{name, "requests not answered 200", strconv.FormatInt(failed.Load(), 10), ""},
		{name, "notifications serve counted as appended", fmt.Sprintf("%.0f of %d answered 200", counted, total.Load()*perDelivery), "warm-up included"},
	}
}

// hubspotDelivery is a delivery's body: n contact.propertyChange
// notifications, eventIds from first, over 1,000 contacts, as HubSpot
// sends them.
func hubspotDelivery(first int64, n int, at time.Time) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := int64(0); i < int64(n); i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		id := first + i
		fmt.Fprintf(&buf, `{"eventId":%d,"subscriptionId":1,"portalId":%d,"appId":4242,"occurredAt":%d,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"firstname","propertyValue":"Name %d","changeSource":"CRM_UI","sourceId":"userId:1"}`,
			id+1, benchSourceHubID, at.UnixMilli(), 100000+id%1000, id)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// postSigned posts body to the source's webhook target with the headers
// HubSpot signs with at ts and returns the status, 0 when the request
// failed.
func (r *sourceRig) postSigned(body []byte, ts time.Time) int {
	req, err := http.NewRequest(http.MethodPost, r.hook, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header = signature.Headers(benchSourceSecret, http.MethodPost, r.hook, body, ts)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// benchSourceEdits makes the app's users known and their contacts (through
// the hubspot destination), then edits a contact's firstname env.rate times
// a second for env.duration in the sandbox, each edit a value of its own,
// cycling over enough contacts that each is edited every 5 s, and returns
// the p50/p99 from the edit to its identify in the log and at the app.
func benchSourceEdits(b *testing.B, env sourceBenchEnv) []sourceFigure {
	rig := startSourceRig(b, env, true)
	users := max(10, env.rate*5)
	contacts := rig.knownContacts(b, users)

	// One edit through before the measured ones: the webhooks, the source
	// and the app's receiver are all up.
	if status := rig.edit(contacts[0], "warm"); status/100 != 2 {
		b.Fatalf("the warm-up edit answered %d", status)
	}
	eventuallyTrueWithin(b, time.Minute, "the warm-up edit reaches the app", func() bool { return rig.app.seen("warm") })

	edits := int(env.duration.Seconds() * float64(env.rate))
	sent := make([]time.Time, edits)
	var failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(env.rate))
	for n := 0; n < edits; n++ {
		<-tick.C
		sent[n] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status := rig.edit(contacts[n%users], editValue(n)); status/100 != 2 {
				failed.Add(1)
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	// The rest arrive, or stop arriving.
	last, lastChange := -1, time.Now()
	for rig.app.count() < edits-int(failed.Load()) && time.Since(lastChange) < 20*time.Second {
		if n := rig.app.count(); n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The log's append times, read once serve has let go of the log.
	if err := rig.serve.stop(b, syscall.SIGTERM); err != nil {
		b.Fatalf("serve exited with %v\n%s", err, rig.serve.logs())
	}
	appended := map[string]time.Time{}
	logDups := 0
	for _, m := range tailAll(b, "--config", rig.config, "--data-dir", rig.dataDir, "--meta") {
		call := m.Get("value")
		if call.Get("_switchyard.source").String() != benchSourceName {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m.Get("time").String())
		if err != nil {
			b.Fatalf("tail --meta printed a time that is not RFC 3339: %s", m.Raw)
		}
		name := call.Get("traits.first_name").String()
		if _, ok := appended[name]; ok {
			logDups++
			continue
		}
		appended[name] = at
	}

	var toLog, toApp []time.Duration
	for n, at := range sent {
		if a, ok := appended[editValue(n)]; ok {
			toLog = append(toLog, a.Sub(at))
		}
		if a, ok := rig.app.arrival(editValue(n)); ok {
			toApp = append(toApp, a.Sub(at))
		}
	}
	slices.Sort(toLog)
	slices.Sort(toApp)
	name := fmt.Sprintf("edits (%d/s over %d contacts)", env.rate, users)
	return []sourceFigure{
		{name, "edit to log p50", fmtMS(percentile(toLog, 0.50)), ""},
		{name, "edit to log p99", fmtMS(percentile(toLog, 0.99)), "goal < 1000 ms"},
		{name, "edit to app p50", fmtMS(percentile(toApp, 0.50)), ""},
		{name, "edit to app p99", fmtMS(percentile(toApp, 0.99)), "goal < 2000 ms"},
		{name, "edits the sandbox refused", strconv.FormatInt(failed.Load(), 10), ""},
		{name, "edits in the log", fmt.Sprintf("%d of %d", len(toLog), edits), fmt.Sprintf("%d more than once", logDups)},
		{name, "edits at the app", fmt.Sprintf("%d of %d", len(toApp), edits), fmt.Sprintf("%d more than once", rig.app.duplicates())},
	}
}

func editValue(n int) string { return "e" + strconv.Itoa(n) }

// knownContacts identifies n users with emails through the gateway, waits
// until the hubspot destination has made their contacts in the sandbox,
// and returns the contacts' ids in the users' order.
func (r *sourceRig) knownContacts(b *testing.B, n int) []string {
	b.Helper()
	email := func(u int) string { return fmt.Sprintf("u%d@bench.example", u) }
	for u := 0; u < n; u += 100 {
		var items []string
		for i := u; i < min(u+100, n); i++ {
			items = append(items, fmt.Sprintf(`{"type":"identify","userId":"bench-u%d","traits":{"email":%q,"firstName":"U%d"}}`, i, email(i), i))
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.serve.addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(items, ",")+`]}`))
		req.SetBasicAuth("bench-key", "")
		resp, err := r.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("posting identifies: %d", resp.StatusCode)
		}
	}
	ids := make([]string, n)
	// Every record is read on each look, so look once a second.
	deadline := time.Now().Add(3*time.Minute + time.Duration(n)*time.Millisecond)
	for !func() bool {
		byEmail := map[string]string{}
		sandboxGet(b, r.sandbox, "/_sandbox/objects/contacts").Get("results").ForEach(func(_, c gjson.Result) bool {
			byEmail[c.Get("properties.email").String()] = c.Get("id").String()
			return true
		})
		for u := range ids {
			if ids[u] = byEmail[email(u)]; ids[u] == "" {
				return false
			}
		}
		return true
	}() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting until the %d users' contacts are in the sandbox", n)
		}
		time.Sleep(time.Second)
	}
	return ids
}

// edit changes a contact's firstname as a person in HubSpot's UI would and
// returns the status, 0 when the request failed.
func (r *sourceRig) edit(contactID, firstname string) int {
	body := fmt.Sprintf(`{"properties":{"firstname":%q}}`, firstname)
	resp, err := r.client.Post(r.sandbox+"/_sandbox/edit/contacts/"+contactID, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// appRecorder stands for the app: it takes the webhook destination's calls
// (one per request, or arrays) and keeps, for each of the source's calls,
// by its first_name trait, when it first arrived.
type appRecorder struct {
	source string
	mu     sync.Mutex
	calls  map[string]time.Time
	dups   int
}

func (a *appRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	root := gjson.ParseBytes(body)
	calls := []gjson.Result{root}
	if root.IsArray() {
		calls = root.Array()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = map[string]time.Time{}
	}
	for _, c := range calls {
		if c.Get("_switchyard.source").String() != a.source {
			continue
		}
		name := c.Get("traits.first_name").String()
		if _, ok := a.calls[name]; ok {
			a.dups++
			continue
		}
		a.calls[name] = now
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *appRecorder) arrival(firstname string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.calls[firstname]
	return c, ok
}

func (a *appRecorder) seen(firstname string) bool {
	_, ok := a.arrival(firstname)
	return ok
}

// count is how many of the measured edits (not the warm-up's) arrived.
func (a *appRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.calls)
	if _, ok := a.calls["warm"]; ok {
		n--
	}
	return n
}

func (a *appRecorder) duplicates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dups
}

// percentile is the p-quantile of sorted latencies, 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }

// cpuModel is the CPU's model name from /proc/cpuinfo, "unknown CPU" when
// it cannot be read.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if key, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}
