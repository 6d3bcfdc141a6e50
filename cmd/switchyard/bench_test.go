package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkIngest loads a switchyard process over loopback for a fixed time
// per scenario and prints events/s, requests/s, latency percentiles and the
// server's peak RSS. It runs on the embedded log, and on Kafka when
// KAFKA_BROKERS is set. BENCH_DURATION (default 20s) sets the time per
// scenario; BENCH_BACKENDS (embedded,kafka) picks the backends. Run it with
// `make bench-ingest`.
func BenchmarkIngest(b *testing.B) {
	duration, backends := benchEnv(b)
	scenarios := []loadScenario{
		{name: "/v1/batch, 100 events per request", path: "/v1/batch", perRequest: 100, connections: 50},
		{name: "/v1/track, single events", path: "/v1/track", perRequest: 1, connections: 50},
	}
	var results []loadResult
	for i := 0; i < b.N; i++ {
		results = results[:0]
		for _, backend := range backends {
			for _, sc := range scenarios {
				results = append(results, runLoad(b, backend, sc, duration))
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "log\tscenario\tconns\tevents/s\trequests/s\tp50 ms\tp99 ms\tnon-200\tpeak RSS MB\t\n")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%.0f\t\n", r.backend, r.scenario.name, r.scenario.connections,
			r.eventsPerSec, r.requestsPerSec, ms(r.p50), ms(r.p99), r.failed, float64(r.peakRSS)/(1<<20))
	}
	w.Flush()
	fmt.Printf("duration %s per scenario, %d CPUs\n", duration, numCPU())
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
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func runLoad(b *testing.B, backend string, sc loadScenario, duration time.Duration) loadResult {
	b.Helper()
	dir := b.TempDir()
	suffix := uniqueSuffix()
	cfgPath := writeConfig(b, fmt.Sprintf("log_level: warn\nlog:\n  events_topic: bench-events-%s\n  dlq_topic: bench-dlq-%s\n", suffix, suffix))
	args := []string{"gateway", "--config", cfgPath, "--data-dir", filepath.Join(dir, "data"), "--write-key", "bench-key"}
	if backend == "kafka" {
		args = append(args, "--kafka-brokers", os.Getenv("KAFKA_BROKERS"))
	}
	addr := freeAddr(b)
	srv := start(b, addr, args...)
	defer srv.stop(b, syscall.SIGTERM)
	return loadServer(b, backend, srv, sc, duration)
}

// loadServer drives sc against the running gateway srv (write key
// bench-key) for a 2 s warm-up and then duration, and measures it.
func loadServer(b *testing.B, backend string, srv *server, sc loadScenario, duration time.Duration) loadResult {
	b.Helper()
	addr := srv.addr
	client := &fasthttp.HostClient{Addr: addr, MaxConns: sc.connections, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	auth := "Basic " + basicKey("bench-key")
	var (
		stop     atomic.Bool
		requests atomic.Int64
		failed   atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		wg       sync.WaitGroup
	)
	warmup := 2 * time.Second
	begin := time.Now()
	measureFrom := begin.Add(warmup)
	for c := 0; c < sc.connections; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var latencies []time.Duration
			var body []byte
			for n := 0; !stop.Load(); n++ {
				body = loadBody(body[:0], sc, c, n)
				req.Reset()
				req.SetRequestURI("http://" + addr + sc.path)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("Authorization", auth)
				req.SetBody(body)
				t0 := time.Now()
				err := client.Do(req, resp)
				elapsed := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					continue
				}
				requests.Add(1)
				latencies = append(latencies, elapsed)
			}
			mu.Lock()
			all = append(all, latencies...)
			mu.Unlock()
		}(c)
	}
	time.Sleep(warmup + duration)
	stop.Store(true)
	wg.Wait()
	rss := peakRSS(srv.cmd.Process.Pid)

	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	n := requests.Load()
	return loadResult{
		backend: backend, scenario: sc,
		requestsPerSec: float64(n) / duration.Seconds(),
		eventsPerSec:   float64(n*int64(sc.perRequest)) / duration.Seconds(),
		p50:            pct(0.50), p99: pct(0.99),
		failed:  failed.Load(),
		peakRSS: rss,
	}
}

// loadBody writes a request of realistic events, each with a unique
// messageId so deduplication stores every one.
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
