package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
// local receiver). Per scenario it first offers as much load as the process
// takes and reports delivered events/s, then offers a steady BENCH_RATE
// (default 20,000 events/s) and reports the p50/p99 receivedAt-to-delivery
// latency at that rate; and the server's peak RSS. It runs on the embedded
// log, and on Kafka when KAFKA_BROKERS is set (BENCH_BACKENDS picks).
// BENCH_DURATION (default 20s) is the length of each phase. Run it with
// `make bench-pipeline`.
func BenchmarkPipeline(b *testing.B) {
	duration, backends := benchEnv(b)
	rate := 20_000
	if v := os.Getenv("BENCH_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < 100 {
			b.Fatalf("BENCH_RATE: want events per second, at least 100")
		}
		rate = r
	}
	var results []pipelineResult
	for i := 0; i < b.N; i++ {
		results = results[:0]
		for _, backend := range backends {
			for _, dest := range []string{"drop", "webhook"} {
				results = append(results, runPipeline(b, backend, dest, duration, rate))
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "log\tdestination\tmax delivered events/s\tp50 ms at %d/s\tp99 ms at %d/s\tpeak RSS MB\t\n", rate, rate)
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.1f\t%.1f\t%.0f\t\n", r.backend, r.dest, r.perSec, ms(r.p50), ms(r.p99), float64(r.peakRSS)/(1<<20))
	}
	w.Flush()
	fmt.Printf("each phase %s; 20 connections posting 100-event batches; %d CPUs\n", duration, numCPU())
}

type pipelineResult struct {
	backend, dest string
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

func runPipeline(b *testing.B, backend, dest string, duration time.Duration, rate int) pipelineResult {
	b.Helper()
	rec := &latencyRecorder{}
	receiver := httptest.NewServer(rec)
	defer receiver.Close()

	dir := b.TempDir()
	suffix := uniqueSuffix()
	destCfg := "    type: drop\n"
	if dest == "webhook" {
		destCfg = fmt.Sprintf("    type: webhook\n    webhook:\n      url: %s\n      batch: true\n      max_items: 500\n      max_in_flight: 4\n", receiver.URL)
	}
	cfgPath := writeConfig(b, fmt.Sprintf("log_level: warn\nlog:\n  events_topic: pipe-events-%s\n  dlq_topic: pipe-dlq-%s\ndestinations:\n  - name: bench\n%s", suffix, suffix, destCfg))
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

	drain := func(posted int64) time.Time {
		deadline := time.Now().Add(5 * time.Minute)
		for delivered() < posted && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if dest == "webhook" {
			return time.Unix(0, rec.last.Load())
		}
		return time.Now()
	}
	load := newPipelineLoad(addr)

	// Phase 1: as much as the process takes.
	begin := time.Now()
	load.run(duration, 0)
	end := drain(load.posted.Load())
	res := pipelineResult{backend: backend, dest: dest}
	res.perSec = float64(delivered()) / end.Sub(begin).Seconds()

	// Phase 2: a steady rate, for latency.
	rec.mu.Lock()
	rec.latencies = rec.latencies[:0]
	rec.mu.Unlock()
	before := histogramBuckets(addr, "switchyard_router_delivery_latency_seconds")
	load.run(duration, rate)
	drain(load.posted.Load())
	if dest == "webhook" {
		rec.mu.Lock()
		slices.Sort(rec.latencies)
		if n := len(rec.latencies); n > 0 {
			res.p50, res.p99 = rec.latencies[n/2], rec.latencies[min(n-1, n*99/100)]
		}
		rec.mu.Unlock()
	} else {
		after := histogramBuckets(addr, "switchyard_router_delivery_latency_seconds")
		res.p50, res.p99 = quantile(after, before, 0.5), quantile(after, before, 0.99)
	}
	res.peakRSS = peakRSS(srv.cmd.Process.Pid)
	return res
}

// pipelineLoad posts 100-event batches over 20 connections.
type pipelineLoad struct {
	addr   string
	client *fasthttp.HostClient
	auth   string
	posted atomic.Int64
	round  atomic.Int64
}

func newPipelineLoad(addr string) *pipelineLoad {
	return &pipelineLoad{addr: addr, auth: "Basic " + basicKey("bench-key"),
		client: &fasthttp.HostClient{Addr: addr, MaxConns: 20, ReadTimeout: 30 * time.Second}}
}

// run posts for d; with rate > 0 it paces the batches to rate events/s.
func (l *pipelineLoad) run(d time.Duration, rate int) {
	const conns, perRequest = 20, 100
	round := int(l.round.Add(1))
	var tick <-chan time.Time
	if rate > 0 {
		ticker := time.NewTicker(time.Second * perRequest / time.Duration(rate))
		defer ticker.Stop()
		tick = ticker.C
	}
	stopAt := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var body []byte
			sc := loadScenario{perRequest: perRequest}
			for n := 0; time.Now().Before(stopAt); n++ {
				if tick != nil {
					select {
					case <-tick:
					case <-time.After(time.Until(stopAt)):
						return
					}
				}
				body = loadBody(body[:0], sc, round*1000+c, n)
				req.Reset()
				req.SetRequestURI("http://" + l.addr + "/v1/batch")
				req.Header.SetMethod("POST")
				req.Header.Set("Authorization", l.auth)
				req.SetBody(body)
				if err := l.client.Do(req, resp); err == nil && resp.StatusCode() == 200 {
					l.posted.Add(perRequest)
				}
			}
		}(c)
	}
	wg.Wait()
}

// quantile estimates a quantile of the observations made between two
// readings of a histogram, interpolating within a bucket as Prometheus does.
func quantile(after, before []bucket, q float64) time.Duration {
	if len(after) == 0 {
		return 0
	}
	diff := make([]bucket, len(after))
	for i := range after {
		diff[i] = after[i]
		if i < len(before) {
			diff[i].count -= before[i].count
		}
	}
	total := diff[len(diff)-1].count
	if total == 0 {
		return 0
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, bk := range diff {
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
