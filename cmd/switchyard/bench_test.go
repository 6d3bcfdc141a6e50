package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// BenchmarkIngest loads the gateway over loopback with wrk for a fixed time
// per scenario and prints events/s, requests/s, latency percentiles, the
// server's peak RSS, CPU time and allocations per event, and each figure as
// a share of a bare Fiber handler's (testdata/barehandler: it answers 200
// once it has checked the body is JSON) measured in the same run under the
// same load. It runs `switchyard gateway` on the embedded log, on Kafka
// when KAFKA_BROKERS is set, and `switchyard serve` with a drop
// destination on the embedded log, which must deliver everything it took
// in. BENCH_DURATION (default 20s) sets the time per scenario;
// BENCH_BACKENDS (embedded,kafka) picks the gateway's backends. Run it with
// `make bench-ingest`; SWITCHYARD_PROFILE_DIR makes each switchyard process
// write CPU and allocation profiles there (see profile.go).
func BenchmarkIngest(b *testing.B) {
	duration, backends := benchEnv(b)
	scenarios := []loadScenario{
		{name: "/v1/batch, 100 events per request", path: "/v1/batch", perRequest: 100, connections: 50},
		{name: "/v1/track, single events", path: "/v1/track", perRequest: 1, connections: 50},
	}
	bare := buildBareHandler(b)
	type row struct {
		role string
		loadResult
	}
	var rows []row
	ceiling := map[string]loadResult{}
	for i := 0; i < b.N; i++ {
		rows = rows[:0]
		for _, sc := range scenarios {
			srv := startProgram(b, bare, nil, freeAddr(b), "/healthz")
			ceiling[sc.path] = loadServer(b, "none", srv, sc, duration)
			srv.stop(b, syscall.SIGTERM)
			rows = append(rows, row{"bare handler", ceiling[sc.path]})
			for _, backend := range backends {
				rows = append(rows, row{"gateway", runLoad(b, backend, sc, duration)})
			}
			rows = append(rows, row{"serve, drop", runServeDrop(b, sc, duration)})
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "process\tlog\tscenario\tevents/s\tof bare\trequests/s\tp50 ms\tp99 ms\tnon-200\tpeak RSS MB\tCPU µs/event\tallocs/event\t\n")
	for _, r := range rows {
		share := r.eventsPerSec / ceiling[r.scenario.path].eventsPerSec
		allocs := "-"
		if r.allocsPerEvent > 0 {
			allocs = fmt.Sprintf("%.1f", r.allocsPerEvent)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%.0f%%\t%.0f\t%.2f\t%.2f\t%d\t%.0f\t%.2f\t%s\t\n", r.role, r.backend, r.scenario.name,
			r.eventsPerSec, 100*share, r.requestsPerSec, ms(r.p50), ms(r.p99), r.failed, float64(r.peakRSS)/(1<<20),
			float64(r.cpuPerEvent)/float64(time.Microsecond), allocs)
		if r.role == "serve, drop" {
			fmt.Fprintf(w, "\t\t  delivered all %.0f, highest lag %.0f, lag 0 %.1f s after the load\t\t\t\t\t\t\t\t\t\t\t\n",
				r.delivered, r.maxLag, r.drain.Seconds())
		}
	}
	w.Flush()
	fmt.Printf("wrk, %d connections, 2 threads; duration %s per scenario after a %s warm-up; %d CPUs\n", scenarios[0].connections, duration, warmUp, numCPU())
}

// buildBareHandler builds testdata/barehandler and returns its path.
func buildBareHandler(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "barehandler")
	build := exec.Command("go", "build", "-o", path, "./testdata/barehandler")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the bare handler: %v\n%s", err, out)
	}
	return path
}

// benchEnv reads BENCH_DURATION (default 20s) and the backends to run:
// embedded, and kafka when KAFKA_BROKERS is set, or BENCH_BACKENDS.
func benchEnv(b *testing.B) (time.Duration, []string) {
	duration := 20 * time.Second
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BENCH_DURATION: %v", err)
		}
		duration = d
	}
	backends := []string{"embedded"}
	if os.Getenv("KAFKA_BROKERS") != "" {
		backends = append(backends, "kafka")
	}
	if v := os.Getenv("BENCH_BACKENDS"); v != "" {
		backends = strings.Split(v, ",")
	}
	return duration, backends
}

type loadScenario struct {
	name        string
	path        string
	perRequest  int
	connections int
}

type loadResult struct {
	backend                      string
	scenario                     loadScenario
	eventsPerSec, requestsPerSec float64
	p50, p99                     time.Duration
	failed                       int64
	peakRSS                      int64
	// cpuPerEvent is the server's CPU time per event over the measured run;
	// allocsPerEvent its heap allocations per event, 0 when it reports none.
	cpuPerEvent    time.Duration
	allocsPerEvent float64
	// For serve: the events delivered, the highest consumer lag seen each
	// second of the run, and how long after the load the lag was 0 (-1
	// when it was not within a minute). drain is 0 for the other roles.
	delivered, maxLag float64
	drain             time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchLogConfig is the config of a benchmark's switchyard process: its
// own topics, warnings only, profiles when SWITCHYARD_PROFILE_DIR is set.
func benchLogConfig(b *testing.B, extra string) string {
	suffix := uniqueSuffix()
	return writeConfig(b, fmt.Sprintf("log_level: warn\nlog:\n  events_topic: bench-events-%s\n  dlq_topic: bench-dlq-%s\n%s", suffix, suffix, extra))
}

// profiledEnv is the environment that makes a switchyard process write its
// CPU and allocation profiles into SWITCHYARD_PROFILE_DIR, named after
// name; nil when it is not set.
func profiledEnv(name string) []string {
	dir := os.Getenv("SWITCHYARD_PROFILE_DIR")
	if dir == "" {
		return nil
	}
	name = strings.NewReplacer("/", "_", " ", "_", ",", "").Replace(name)
	return []string{
		"SWITCHYARD_CPU_PROFILE=" + filepath.Join(dir, name+".cpu.pprof"),
		"SWITCHYARD_ALLOC_PROFILE=" + filepath.Join(dir, name+".alloc.pprof"),
	}
}

func runLoad(b *testing.B, backend string, sc loadScenario, duration time.Duration) loadResult {
	b.Helper()
	dir := b.TempDir()
	args := []string{"gateway", "--config", benchLogConfig(b, ""), "--data-dir", filepath.Join(dir, "data"), "--write-key", "bench-key"}
	if backend == "kafka" {
		args = append(args, "--kafka-brokers", os.Getenv("KAFKA_BROKERS"))
	}
	srv := startProgram(b, binary, profiledEnv("gateway-"+backend+sc.path), freeAddr(b), "/healthz", args...)
	defer srv.stop(b, syscall.SIGTERM)
	return loadServer(b, backend, srv, sc, duration)
}

// runServeDrop loads `switchyard serve` on the embedded log with a drop
// destination, and waits for it to deliver everything it accepted.
func runServeDrop(b *testing.B, sc loadScenario, duration time.Duration) loadResult {
	b.Helper()
	dir := b.TempDir()
	cfg := benchLogConfig(b, "destinations:\n  - name: bench\n    type: drop\n")
	srv := startProgram(b, binary, profiledEnv("serve-drop"+sc.path), freeAddr(b), "/healthz",
		"serve", "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--write-key", "bench-key")
	defer srv.stop(b, syscall.SIGTERM)
	lag := func() float64 {
		v, _ := scrapeCounter(srv.addr, `switchyard_router_consumer_lag{destination="bench"}`)
		return v
	}
	var maxLag atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if l := int64(lag()); l > maxLag.Load() {
					maxLag.Store(l)
				}
			}
		}
	}()
	res := loadServer(b, "embedded", srv, sc, duration)
	close(stop)
	<-sampled
	ended := time.Now()
	accepted, _ := scrapeCounter(srv.addr, `switchyard_gateway_messages_total{outcome="accepted"}`)
	res.maxLag, res.drain = float64(maxLag.Load()), -1
	for time.Since(ended) < time.Minute {
		delivered, _ := scrapeCounter(srv.addr, `switchyard_router_events_total{destination="bench",outcome="delivered"}`)
		if delivered >= accepted && lag() == 0 {
			res.delivered, res.drain = delivered, time.Since(ended)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.drain < 0 {
		b.Fatalf("serve did not deliver the %.0f events it accepted within a minute of the load", accepted)
	}
	return res
}

// warmUp is the load before each measured run. It takes the embedded log
// past its first write-ahead log files: until pebble's first memtable
// flushes, each file grows as it is written, so every fsync also records
// the file's new size and takes about half as long again; from then on
// pebble writes over the files it has finished with, as a running server
// does all the time.
const warmUp = 15 * time.Second

// loadServer drives sc against srv (write key bench-key) with wrk, for
// warmUp and then duration, and measures the second run.
func loadServer(b *testing.B, backend string, srv *server, sc loadScenario, duration time.Duration) loadResult {
	b.Helper()
	run := func(d time.Duration, name string) wrkSummary {
		return runWrk(b, srv.addr, sc, d, name)
	}
	run(warmUp, "warm-up-"+uniqueSuffix())
	cpu0, allocs0 := cpuTime(srv.cmd.Process.Pid), scrapeOr0(srv.addr, "go_memstats_mallocs_total")
	sum := run(duration, "run-"+uniqueSuffix())
	cpu, allocs := cpuTime(srv.cmd.Process.Pid)-cpu0, scrapeOr0(srv.addr, "go_memstats_mallocs_total")-allocs0
	seconds := float64(sum.DurationMicros) / 1e6
	events := float64(sum.Requests-sum.failed()) * float64(sc.perRequest)
	res := loadResult{
		backend: backend, scenario: sc,
		requestsPerSec: float64(sum.Requests-sum.failed()) / seconds,
		eventsPerSec:   events / seconds,
		p50:            time.Duration(sum.P50Micros) * time.Microsecond,
		p99:            time.Duration(sum.P99Micros) * time.Microsecond,
		failed:         sum.failed(),
		peakRSS:        peakRSS(srv.cmd.Process.Pid),
	}
	if events > 0 {
		res.cpuPerEvent = time.Duration(float64(cpu) / events)
		res.allocsPerEvent = allocs / events
	}
	return res
}

// wrkSummary is what testdata/load.lua prints when wrk is done.
type wrkSummary struct {
	Requests       int64 `json:"requests"`
	DurationMicros int64 `json:"duration_us"`
	Non2xx         int64 `json:"non2xx"`
	ConnectErrors  int64 `json:"connect_errors"`
	ReadErrors     int64 `json:"read_errors"`
	WriteErrors    int64 `json:"write_errors"`
	Timeouts       int64 `json:"timeouts"`
	P50Micros      int64 `json:"p50_us"`
	P99Micros      int64 `json:"p99_us"`
}

// failed counts the requests not answered 200, and those wrk could not
// complete.
func (s wrkSummary) failed() int64 {
	return s.Non2xx + s.ConnectErrors + s.ReadErrors + s.WriteErrors + s.Timeouts
}

// runWrk runs wrk with testdata/load.lua against addr for d: 2 threads,
// sc's connections, sc's events per request, messageIds unique to run.
func runWrk(b *testing.B, addr string, sc loadScenario, d time.Duration, run string) wrkSummary {
	b.Helper()
	script, err := filepath.Abs("testdata/load.lua")
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", sc.connections), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--timeout", "30s", "-s", script, "http://"+addr+sc.path, "--",
		strconv.Itoa(sc.perRequest), "Basic "+basicKey("bench-key"), run)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("wrk (installed by scripts/wrk.sh): %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum wrkSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		b.Fatalf("reading wrk's summary: %v\n%s", err, out)
	}
	return sum
}

// loadBody writes a request of realistic events, each with a unique
// messageId so deduplication stores every one: the events testdata/load.lua
// sends.
func loadBody(dst []byte, sc loadScenario, conn, n int) []byte {
	event := func(dst []byte, i int) []byte {
		return fmt.Appendf(dst, `{"type":"track","userId":"user-%d-%d","event":"Order Completed","messageId":"c%d-r%d-e%d","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-%d","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]},"context":{"library":{"name":"analytics-go","version":"3.0.0"}}}`,
			conn, i%10, conn, n, i, n)
	}
	if sc.perRequest == 1 {
		return event(dst, 0)
	}
	dst = append(dst, `{"batch":[`...)
	for i := 0; i < sc.perRequest; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event(dst, i)
	}
	return append(dst, `],"sentAt":"2026-11-22T19:01:33.000Z"}`...)
}

// peakRSS reads a process's high-water resident set size from /proc.
func peakRSS(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func basicKey(key string) string { return base64.StdEncoding.EncodeToString([]byte(key + ":")) }

func numCPU() int { return runtime.NumCPU() }
