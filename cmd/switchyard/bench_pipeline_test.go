package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
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
	"github.com/valyala/fasthttp"
)

// BenchmarkPipeline drives events through the gateway, the log and the
// router into the drop destination and into the webhook destination (a
// local receiver), and prints delivered events/s, p50/p99 receivedAt-to-
// delivery latency and the server's peak RSS. It runs on the embedded log,
// and on Kafka when KAFKA_BROKERS is set (BENCH_BACKENDS picks).
// BENCH_DURATION (default 20s) is how long load is offered per scenario.
// Run it with `make bench-pipeline`.
func BenchmarkPipeline(b *testing.B) {
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
	var results []pipelineResult
	for i := 0; i < b.N; i++ {
		results = results[:0]
		for _, backend := range backends {
			for _, dest := range []string{"drop", "webhook"} {
				results = append(results, runPipeline(b, backend, dest, duration))
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "log\tdestination\tevents\tdelivered events/s\tp50 ms\tp99 ms\tpeak RSS MB\t\n")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%.0f\t\n", r.backend, r.dest, r.events, r.perSec, ms(r.p50), ms(r.p99), float64(r.peakRSS)/(1<<20))
	}
	w.Flush()
	fmt.Printf("load offered for %s per scenario by 20 connections posting 100-event batches; %d CPUs\n", duration, numCPU())
}

type pipelineResult struct {
	backend, dest string
	events        int64
	perSec        float64
	p50, p99      time.Duration
	peakRSS       int64
}

// latencyRecorder keeps receivedAt-to-arrival latencies of delivered events.
type latencyRecorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	count     atomic.Int64
	last      atomic.Int64 // unix nanos of the last arrival
}

func (l *latencyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	var batch []time.Duration
	gjson.ParseBytes(body).ForEach(func(_, ev gjson.Result) bool {
		if at, err := time.Parse(time.RFC3339Nano, ev.Get("receivedAt").String()); err == nil {
			batch = append(batch, now.Sub(at))
		}
		return true
	})
	l.mu.Lock()
	l.latencies = append(l.latencies, batch...)
	l.mu.Unlock()
	l.count.Add(int64(len(batch)))
	l.last.Store(now.UnixNano())
	w.WriteHeader(http.StatusNoContent)
}

func runPipeline(b *testing.B, backend, dest string, duration time.Duration) pipelineResult {
	b.Helper()
	rec := &latencyRecorder{}
	receiver := httptest.NewServer(rec)
	defer receiver.Close()

	dir := b.TempDir()
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	destCfg := "    type: drop\n"
	if dest == "webhook" {
		destCfg = fmt.Sprintf("    type: webhook\n    webhook:\n      url: %s\n      batch: true\n      max_items: 500\n      max_in_flight: 4\n", receiver.URL)
	}
	cfg := fmt.Sprintf("log_level: warn\nlog:\n  events_topic: pipe-events-%s\n  dlq_topic: pipe-dlq-%s\ndestinations:\n  - name: bench\n%s", suffix, suffix, destCfg)
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"serve", "--config", cfgPath, "--data-dir", filepath.Join(dir, "data"), "--write-key", "bench-key"}
	if backend == "kafka" {
		args = append(args, "--kafka-brokers", os.Getenv("KAFKA_BROKERS"))
	}
	addr := freeAddr(b)
	srv := start(b, addr, args...)
	defer srv.stop(b, syscall.SIGTERM)

	delivered := func() int64 {
		if dest == "webhook" {
			return rec.count.Load()
		}
		n, _ := scrapeCounter(addr, `switchyard_router_events_total{destination="bench",outcome="delivered"}`)
		return int64(n)
	}

	client := &fasthttp.HostClient{Addr: addr, MaxConns: 20, ReadTimeout: 30 * time.Second}
	auth := "Basic " + basicKey("bench-key")
	sc := loadScenario{path: "/v1/batch", perRequest: 100}
	var posted atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	begin := time.Now()
	for c := 0; c < 20; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var body []byte
			for n := 0; !stop.Load(); n++ {
				body = loadBody(body[:0], sc, c, n)
				req.Reset()
				req.SetRequestURI("http://" + addr + "/v1/batch")
				req.Header.SetMethod("POST")
				req.Header.Set("Authorization", auth)
				req.SetBody(body)
				if err := client.Do(req, resp); err == nil && resp.StatusCode() == 200 {
					posted.Add(100)
				}
			}
		}(c)
	}
	time.Sleep(duration)
	stop.Store(true)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for delivered() < posted.Load() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	if dest == "webhook" {
		end = time.Unix(0, rec.last.Load())
	}
	res := pipelineResult{backend: backend, dest: dest, events: delivered(), peakRSS: peakRSS(srv.cmd.Process.Pid)}
	res.perSec = float64(res.events) / end.Sub(begin).Seconds()
	if dest == "webhook" {
		slices.Sort(rec.latencies)
		if n := len(rec.latencies); n > 0 {
			res.p50, res.p99 = rec.latencies[n/2], rec.latencies[min(n-1, n*99/100)]
		}
	} else {
		res.p50, res.p99 = histogramQuantile(addr, "switchyard_router_delivery_latency_seconds", 0.5), histogramQuantile(addr, "switchyard_router_delivery_latency_seconds", 0.99)
	}
	return res
}

// scrapeCounter reads one sample from the server's /metrics.
func scrapeCounter(addr, series string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// histogramQuantile estimates a quantile from a Prometheus histogram's
// buckets, interpolating within the bucket as Prometheus does.
func histogramQuantile(addr, name string, q float64) time.Duration {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	type bucket struct{ le, count float64 }
	var buckets []bucket
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.Index(line[i+4:], `"`)
		le, err := strconv.ParseFloat(line[i+4:i+4+j], 64)
		if err != nil {
			le = math.Inf(1)
		}
		fields := strings.Fields(line)
		count, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		buckets = append(buckets, bucket{le, count})
	}
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return 0
	}
	rank := q * buckets[len(buckets)-1].count
	prevLe, prevCount := 0.0, 0.0
	for _, bk := range buckets {
		if bk.count >= rank {
			if math.IsInf(bk.le, 1) {
				return time.Duration(prevLe * float64(time.Second))
			}
			frac := (rank - prevCount) / math.Max(bk.count-prevCount, 1)
			return time.Duration((prevLe + (bk.le-prevLe)*frac) * float64(time.Second))
		}
		prevLe, prevCount = bk.le, bk.count
	}
	return 0
}
