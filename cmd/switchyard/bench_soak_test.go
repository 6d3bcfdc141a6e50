package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Soak traffic: soakUsers users of soakCompanies companies, each company's
// website domain shared by soakUsers/soakCompanies users.
const (
	soakUsers     = 3000
	soakCompanies = 30
	soakHubID     = 777
	soakKey       = "soak-key"
)

// BenchmarkSoak runs `switchyard serve` on the embedded log with a HubSpot
// destination pointed at `switchyard hubspot-sandbox` (free tier, its own
// process) and offers BENCH_RATE events/s (default 170) of mixed traffic
// for BENCH_DURATION (default 30m): identify with an email, group with a
// website domain shared by 100 users, track and page, and 1% invalid
// messages (no userId or anonymousId, a track without an event, bad JSON).
// Every minute it prints serve's RSS, goroutines, open files and consumer
// lag, the HubSpot calls per second, the p99 receivedAt-to-HubSpot latency
// of the event occurrences the sandbox received in that minute and the size
// of the destination's state on disk; at the end, the first and last
// minutes, and whether each figure stayed flat (the peak of the run's
// second half against its first). Run it with `make bench-soak`.
//
// The HubSpot call rate follows how often batches close more than the event
// rate: each batch makes about three calls counted against the 10-second
// limit (contacts, companies, associations), so max_wait 600ms keeps the
// destination near 5 calls/s, half the free tier's 100 per 10 s.
func BenchmarkSoak(b *testing.B) {
	duration := 30 * time.Minute
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			b.Fatalf("BENCH_DURATION=%q: want a Go duration of at least 1m", v)
		}
		duration = d
	}
	rate := 170
	if v := os.Getenv("BENCH_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < 10 {
			b.Fatalf("BENCH_RATE=%q: want events per second, at least 10", v)
		}
		rate = r
	}
	for i := 0; i < b.N; i++ {
		runSoak(b, duration, rate)
	}
}

// soakSample is what one minute of the soak measured.
type soakSample struct {
	elapsed    time.Duration
	posted     int64
	callsPerS  float64 // HubSpot calls counted against the 10-second limit
	eventsPerS float64 // calls to the custom events endpoints, exempt from it
	tooMany    int     // 429 answers in the minute
	rssMB      float64
	heapMB     float64 // Go heap in use (go_memstats_heap_inuse_bytes)
	sysMB      float64 // memory the Go runtime holds from the OS (go_memstats_sys_bytes)
	cacheMB    float64 // the embedded log's block cache, within the Go heap
	memtableMB float64 // the embedded log's memtables, within the Go heap
	tables     float64 // the embedded log's open table files
	goroutines float64
	fds        float64
	lag        float64
	p99        time.Duration // -1 when no occurrence arrived in the minute
	occurred   int           // occurrences the sandbox received in the minute
	stateKB    int64
}

func runSoak(b *testing.B, duration time.Duration, rate int) {
	b.Helper()
	sbAddr := freeAddr(b)
	startReady(b, sbAddr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "free", "--hub-id", strconv.Itoa(soakHubID), "--log-level", "warn")
	sandboxURL := "http://" + sbAddr

	dataDir := filepath.Join(b.TempDir(), "data")
	// Every bounded buffer is sized to fill within the first minutes: the
	// messageId windows (50,000 at the gateway, 20,000 at the router,
	// against 1,000,000 and 200,000 by default) and the embedded log's
	// memtable (8 MiB against 64 MiB, so it is flushed every minute or two
	// rather than every quarter of an hour), and the log's retention (10
	// minutes against 7 days, so its tables are deleted as they are made
	// and their number, and the files open, level off). By design each
	// grows until its cap, which at the defaults and this rate takes from
	// minutes to days, and growth past the caps is what a soak must find.
	cfgPath := writeConfig(b, fmt.Sprintf(`log_level: warn
sources:
  - name: soak
    write_keys: [%s]
gateway:
  dedupe_entries: 50000
log:
  memtable_bytes: 8388608
  retention_age: 10m
  retention_check_interval: 1m
destinations:
  - name: crm
    type: hubspot
    dedupe_entries: 20000
    hubspot:
      url: %s
      token: pat-soak
      hub_id: %d
      tier: free
      max_wait: 600ms
`, soakKey, sandboxURL, soakHubID))
	addr := freeAddr(b)
	srv := start(b, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)
	defer srv.stop(b, syscall.SIGTERM)
	pid := srv.cmd.Process.Pid
	stateDir := filepath.Join(dataDir, "hubspot-crm")

	load := &soakLoad{addr: addr, run: uniqueSuffix(), client: &http.Client{Timeout: 30 * time.Second}}
	// Warm-up, not measured: one identify per user, so that every user's
	// track and page find a contact.
	for u := 0; u < soakUsers; u += 100 {
		var items []string
		for i := u; i < min(u+100, soakUsers); i++ {
			items = append(items, soakIdentify(fmt.Sprintf("%s-warm-%d", load.run, i), i, i))
		}
		if status := load.post("/v1/batch", `{"batch":[`+strings.Join(items, ",")+`]}`); status != 200 {
			b.Fatalf("warm-up batch answered %d", status)
		}
	}
	eventuallyTrueWithin(b, 3*time.Minute, "the warm-up's contacts are in HubSpot", func() bool {
		return len(sandboxGet(b, sandboxURL, "/_sandbox/objects/contacts").Get("results").Array()) >= soakUsers
	})
	fmt.Printf("soak: %d events/s for %s through serve (embedded log) into a free-tier HubSpot sandbox over HTTP; %d users, %d company domains, 1%% invalid; %d CPUs\n",
		rate, duration, soakUsers, soakCompanies, numCPU())
	fmt.Printf("%7s %8s %7s %8s %5s %7s %7s %6s %8s %6s %6s %10s %5s %6s %8s %8s\n",
		"minute", "posted", "calls/s", "events/s", "429s", "RSS MB", "heap MB", "Go MB", "cache MB", "mem MB", "tables", "goroutines", "fds", "lag", "p99 ms", "state KB")

	calls, eventCalls, tooMany := sandboxCalls(b, sandboxURL)
	cursor := int64(sandboxGet(b, sandboxURL, "/_sandbox/events?from=0").Get("next").Int())
	begin := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		load.offer(rate, begin, begin.Add(duration), done)
	}()

	var samples []soakSample
	minute := time.NewTicker(time.Minute)
	for len(samples) < int(duration/time.Minute) {
		<-minute.C
		s := soakSample{elapsed: time.Since(begin), posted: load.posted.Load()}
		c, e, t := sandboxCalls(b, sandboxURL)
		since := time.Minute.Seconds()
		s.callsPerS, s.eventsPerS, s.tooMany = float64(c-calls)/since, float64(e-eventCalls)/since, t-tooMany
		calls, eventCalls, tooMany = c, e, t
		s.rssMB = float64(vmRSS(pid)) / (1 << 20)
		g := serveGauges(b, addr)
		s.heapMB, s.sysMB, s.cacheMB, s.memtableMB, s.tables = g.heapMB, g.sysMB, g.cacheMB, g.memtableMB, g.tables
		s.goroutines, s.fds, s.lag = g.goroutines, g.fds, g.lag
		s.p99, s.occurred, cursor = occurrenceLatency(b, sandboxURL, cursor)
		s.stateKB = diskKB(b, stateDir)
		samples = append(samples, s)
		p99 := "-"
		if s.p99 >= 0 {
			p99 = strconv.FormatInt(s.p99.Milliseconds(), 10)
		}
		fmt.Printf("%7d %8d %7.1f %8.1f %5d %7.1f %7.1f %6.1f %8.1f %6.1f %6.0f %10.0f %5.0f %6.0f %8s %8d\n",
			len(samples), s.posted, s.callsPerS, s.eventsPerS, s.tooMany, s.rssMB, s.heapMB, s.sysMB, s.cacheMB, s.memtableMB, s.tables,
			s.goroutines, s.fds, s.lag, p99, s.stateKB)
	}
	minute.Stop()
	close(done)
	wg.Wait()
	end := time.Now()

	// After the load: how long until every event is through.
	drainedIn := "not within 2m"
	for stop := time.Now().Add(2 * time.Minute); time.Now().Before(stop); time.Sleep(200 * time.Millisecond) {
		if serveGauges(b, addr).lag == 0 && load.posted.Load() > 0 {
			drainedIn = time.Since(end).Round(100 * time.Millisecond).String()
			break
		}
	}
	meanCalls := 0.0
	for _, s := range samples {
		meanCalls += s.callsPerS / float64(len(samples))
	}
	fmt.Printf("posted %d valid events (%.0f/s) and %d invalid (%d dead-lettered by the gateway, %d bad-JSON requests answered 400); %d requests failed\n",
		load.posted.Load(), float64(load.posted.Load())/end.Sub(begin).Seconds(), load.invalid.Load(),
		int64(scrapeOr0(addr, `switchyard_gateway_messages_total{outcome="invalid"}`)), load.refused.Load(), load.failed.Load())
	fmt.Printf("router: %.0f delivered, %.0f dead-lettered, %.0f retried; HubSpot calls %.1f/s under load against the 10-second limit (ceiling 10/s); lag 0 after the load: %s\n",
		scrapeOr0(addr, `switchyard_router_events_total{destination="crm",outcome="delivered"}`),
		scrapeOr0(addr, `switchyard_router_events_total{destination="crm",outcome="dead_lettered"}`),
		scrapeOr0(addr, `switchyard_router_events_total{destination="crm",outcome="retried"}`),
		meanCalls, drainedIn)
	printSoakSummary(samples)
}

// printSoakSummary prints, for RSS, the Go heap, goroutines, open files
// and lag, the first and last minute and the peak of each half of the run,
// and calls a figure flat when the second half's peak stays within its
// tolerance of the first half's. Peaks, not a trend line: RSS rises as the
// embedded log's memtable fills and falls when it is flushed (every 64 MB
// written), and lag swings with the batches in flight, so a fitted slope
// over a few minutes reads the saw's tooth as growth.
func printSoakSummary(samples []soakSample) {
	if len(samples) < 2 {
		fmt.Println("too few minutes to tell whether the figures are flat")
		return
	}
	half := len(samples) / 2
	fmt.Printf("%-11s %9s %9s %12s %12s %s\n", "", "minute 1", "last", "peak 1st half", "peak 2nd half", "")
	figures := []struct {
		name      string
		get       func(soakSample) float64
		tolerance float64 // growth of the peak still called flat
	}{
		{"RSS MB", func(s soakSample) float64 { return s.rssMB }, 10},
		{"heap MB", func(s soakSample) float64 { return s.heapMB }, 5},
		{"Go MB", func(s soakSample) float64 { return s.sysMB }, 10},
		{"tables", func(s soakSample) float64 { return s.tables }, 5},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 5},
		{"open files", func(s soakSample) float64 { return s.fds }, 5},
		// Lag is sampled between batches: up to a few batches of events
		// are in flight at any instant.
		{"lag", func(s soakSample) float64 { return s.lag }, 1000},
	}
	peak := func(part []soakSample, get func(soakSample) float64) float64 {
		m := get(part[0])
		for _, s := range part[1:] {
			m = max(m, get(s))
		}
		return m
	}
	for _, f := range figures {
		first, second := peak(samples[:half], f.get), peak(samples[half:], f.get)
		verdict := "flat"
		if second-first > f.tolerance {
			verdict = fmt.Sprintf("not flat: the peak grew %+.1f (tolerance %.0f)", second-first, f.tolerance)
		}
		fmt.Printf("%-11s %9.1f %9.1f %12.1f %12.1f %s\n", f.name, f.get(samples[0]), f.get(samples[len(samples)-1]), first, second, verdict)
	}
}

// soakLoad posts the soak's traffic to the gateway.
type soakLoad struct {
	addr, run string
	client    *http.Client
	posted    atomic.Int64 // valid events the gateway took
	invalid   atomic.Int64 // invalid messages sent
	refused   atomic.Int64 // bad-JSON requests answered 400
	failed    atomic.Int64 // requests answered otherwise than expected
}

// post sends body to path with the soak's write key and returns the status,
// 0 when the request failed.
func (l *soakLoad) post(path, body string) int {
	req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr+path, strings.NewReader(body))
	req.SetBasicAuth(soakKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// offer posts rate events per second from begin until end or done, one
// batch every 100 ms; message n is the n-th of the run. Every 100th message
// is invalid: in turn one without userId or anonymousId and a track without
// an event (both inside the batch, which the gateway dead-letters), and a
// request of bad JSON on its own (which it answers 400).
func (l *soakLoad) offer(rate int, begin, end time.Time, done <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			if now.After(end) {
				return
			}
			due := int(float64(rate) * now.Sub(begin).Seconds())
			var items []string
			valid := 0
			for ; next < due; next++ {
				if next%100 != 99 {
					items = append(items, soakMessage(l.run, next))
					valid++
					continue
				}
				l.invalid.Add(1)
				switch (next / 100) % 3 {
				case 0:
					items = append(items, fmt.Sprintf(`{"type":"track","event":"Order Completed","messageId":"%s-%d","properties":{}}`, l.run, next))
				case 1:
					items = append(items, fmt.Sprintf(`{"type":"track","userId":"soak-u1","messageId":"%s-%d","properties":{}}`, l.run, next))
				case 2:
					if l.post("/v1/track", `{"type":"track","userId":"soak-u1","event":"Order Completed",`) == 400 {
						l.refused.Add(1)
					} else {
						l.failed.Add(1)
					}
				}
			}
			if len(items) == 0 {
				continue
			}
			if l.post("/v1/batch", `{"batch":[`+strings.Join(items, ",")+`]}`) == 200 {
				l.posted.Add(int64(valid))
			} else {
				l.failed.Add(1)
			}
		}
	}
}

// soakMessage is valid message n of a run: 25% identify, 15% group, 40%
// track, 20% page, spread over the users. None carries a timestamp, so each
// one's timestamp, and its HubSpot occurrence's occurredAt, is its
// receivedAt.
func soakMessage(run string, n int) string {
	user := (n * 7919) % soakUsers
	id := fmt.Sprintf("%s-%d", run, n)
	switch kind := n % 20; {
	case kind < 5:
		return soakIdentify(id, user, n)
	case kind < 8:
		c := user % soakCompanies
		return fmt.Sprintf(`{"type":"group","userId":"soak-u%d","groupId":"g%d","messageId":%q,"traits":{"name":"Company %d","website":"https://www.soak%d.example/","industry":"Software"}}`,
			user, c, id, c, c)
	case kind < 16:
		events := []string{"Order Completed", "Product Viewed", "Signed Up"}
		return fmt.Sprintf(`{"type":"track","userId":"soak-u%d","event":%q,"messageId":%q,"properties":{"plan":"pro","total":%d.5,"currency":"EUR"},"context":{"library":{"name":"analytics-go","version":"3.0.0"}}}`,
			user, events[n%len(events)], id, n%100)
	default:
		return fmt.Sprintf(`{"type":"page","userId":"soak-u%d","name":"Pricing","messageId":%q,"properties":{"path":"/pricing","url":"https://app.example/pricing?n=%d","title":"Pricing"}}`,
			user, id, n%10)
	}
}

// soakIdentify is an identify of user with an email at the user's company
// domain; version changes the name so that the contact really changes.
func soakIdentify(messageID string, user, version int) string {
	return fmt.Sprintf(`{"type":"identify","userId":"soak-u%d","messageId":%q,"traits":{"email":"u%d@soak%d.example","firstName":"User%d","lastName":"V%d"}}`,
		user, messageID, user, user%soakCompanies, user, version%1000)
}

// sandboxCalls reads the sandbox's stats: calls counted against the
// 10-second limit (all but search and the custom events endpoints, which
// have their own limits), calls to the custom events endpoints, and 429s.
func sandboxCalls(b *testing.B, base string) (budgeted, events, tooMany int) {
	b.Helper()
	sandboxGet(b, base, "/_sandbox/stats").Get("endpoints").ForEach(func(endpoint, byStatus gjson.Result) bool {
		n := 0
		byStatus.ForEach(func(status, count gjson.Result) bool {
			n += int(count.Int())
			if status.String() == "429" {
				tooMany += int(count.Int())
			}
			return true
		})
		switch e := endpoint.String(); {
		case strings.Contains(e, "/send"):
			events += n
		case strings.HasSuffix(e, "/search"):
		default:
			budgeted += n
		}
		return true
	})
	return budgeted, events, tooMany
}

// occurrenceLatency reads the event occurrences the sandbox received after
// the first from and returns the p99 of their latency (the sandbox's
// receivedAt less occurredAt, which is the event's receivedAt at the
// gateway), how many there were, and the from of the next read. The p99 is
// -1 when there were none.
func occurrenceLatency(b *testing.B, base string, from int64) (time.Duration, int, int64) {
	b.Helper()
	page := sandboxGet(b, base, "/_sandbox/events?from="+strconv.FormatInt(from, 10))
	var lat []time.Duration
	page.Get("results").ForEach(func(_, ev gjson.Result) bool {
		received, err1 := time.Parse(time.RFC3339Nano, ev.Get("receivedAt").String())
		occurred, err2 := time.Parse(time.RFC3339Nano, ev.Get("occurredAt").String())
		if err1 == nil && err2 == nil {
			lat = append(lat, received.Sub(occurred))
		}
		return true
	})
	next := page.Get("next").Int()
	if len(lat) == 0 {
		return -1, 0, next
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)], len(lat), next
}

// gauges are what the soak reads of serve's /metrics each minute.
type gauges struct {
	heapMB, sysMB, cacheMB, memtableMB, tables float64
	goroutines, fds                            float64
	lag                                        float64 // summed over destinations
}

// serveGauges reads serve's memory, goroutines, open files and consumer lag
// from its /metrics.
func serveGauges(b *testing.B, addr string) gauges {
	b.Helper()
	families, err := scrapeMetrics(addr)
	if err != nil {
		b.Fatalf("scraping serve: %v", err)
	}
	first := func(name string) float64 {
		for _, m := range families[name].GetMetric() {
			v, _ := sampleValue(m)
			return v
		}
		return 0
	}
	g := gauges{
		heapMB: first("go_memstats_heap_inuse_bytes") / (1 << 20), sysMB: first("go_memstats_sys_bytes") / (1 << 20),
		cacheMB: first("switchyard_log_block_cache_bytes") / (1 << 20), memtableMB: first("switchyard_log_memtable_bytes") / (1 << 20),
		tables: first("switchyard_log_open_tables"), goroutines: first("go_goroutines"), fds: first("process_open_fds"),
	}
	for _, m := range families["switchyard_router_consumer_lag"].GetMetric() {
		v, _ := sampleValue(m)
		g.lag += v
	}
	return g
}

func scrapeOr0(addr, series string) float64 {
	v, _ := scrapeCounter(addr, series)
	return v
}

// vmRSS reads a process's resident set size from /proc.
func vmRSS(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// diskKB is the space dir takes on disk, as `du -sk` says.
func diskKB(b *testing.B, dir string) int64 {
	b.Helper()
	out, err := exec.Command("du", "-sk", dir).Output()
	if err != nil {
		b.Fatalf("du %s: %v", dir, err)
	}
	kb, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		b.Fatalf("du %s printed %q", dir, out)
	}
	return kb
}
