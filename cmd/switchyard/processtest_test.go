package main

// The harness of the tests that run switchyard as a user would: the binary
// built once, processes started and stopped, waits, HTTP calls, config files
// and /metrics scrapes.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tidwall/gjson"
)

// binary is the switchyard binary built once for the tests that run it as
// a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	// Built as `make build` and the Dockerfile build it: without cgo, pebble
	// keeps its caches and memtables in the Go heap, not in C's.
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchyard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running switchyard process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	out    *lockedWriter
	done   chan error
}

// logs returns what the process wrote to stderr so far.
func (s *server) logs() string {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.stderr.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs switchyard with args plus --addr and waits until /healthz answers.
func start(t testing.TB, addr string, args ...string) *server {
	t.Helper()
	return startReady(t, addr, "/healthz", args...)
}

// startReady runs switchyard with args plus --addr and waits until GET path
// answers 200, for at most 30s. The process is killed when the test ends.
func startReady(t testing.TB, addr, path string, args ...string) *server {
	t.Helper()
	return startProgram(t, binary, nil, addr, path, args...)
}

// startProgram is startReady for any program that takes --addr, with env
// added to its environment.
func startProgram(t testing.TB, program string, env []string, addr, path string, args ...string) *server {
	t.Helper()
	s := &server{addr: addr, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(program, append(args, "--addr", addr)...)
	if env != nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.out = &lockedWriter{w: s.stderr}
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("switchyard exited: %v\n%s", err, s.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("switchyard did not answer %s within 30s\n%s", path, s.logs())
	return nil
}

// stop sends sig and waits up to 40s for the process to exit; it returns
// how it exited.
func (s *server) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup's wait
		return err
	case <-time.After(40 * time.Second):
		t.Fatalf("switchyard did not exit after %v\n%s", sig, s.logs())
		return nil
	}
}

// kill ends the process with SIGKILL and waits until it is gone.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.done
	s.done <- err // for the cleanup's wait
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// eventuallyTrue polls cond for up to 30s.
func eventuallyTrue(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyTrueWithin(t, 30*time.Second, what, cond)
}

func eventuallyTrueWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// writeConfig writes a switchyard config file in a temporary directory and
// returns its path.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// uniqueSuffix makes topic names no other test run uses.
func uniqueSuffix() string { return strconv.FormatUint(rand.Uint64(), 36) }

// tailAll runs switchyard tail --from-beginning --exit and returns its lines.
func tailAll(t testing.TB, args ...string) []gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"tail", "--from-beginning", "--exit"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("switchyard tail: %v\n%s", err, stderr.String())
	}
	var msgs []gjson.Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !gjson.Valid(sc.Text()) {
			t.Fatalf("tail printed a line that is not JSON: %q", sc.Text())
		}
		msgs = append(msgs, gjson.Parse(sc.Text()))
	}
	return msgs
}

// post sends body to a gateway path with key as the write key and fails the
// test unless the answer is 200.
func post(t *testing.T, addr, path, key, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	req.SetBasicAuth(key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
}

// postBatch posts one batch of track events, one per id, and returns the
// status.
func postBatch(client *http.Client, addr, key string, ids []string) (int, error) {
	resp, err := client.Do(batchRequest(addr, key, ids))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// batchRequest is the POST /v1/batch of one track event per id, each for
// the user named by the id's last character.
func batchRequest(addr, key string, ids []string) *http.Request {
	var items []string
	for _, id := range ids {
		items = append(items, fmt.Sprintf(`{"type":"track","userId":"user-%s","event":"Crash Test","messageId":%q,"properties":{"pad":"%s"}}`, id[len(id)-1:], id, strings.Repeat("p", 200)))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(items, ",")+`]}`))
	req.SetBasicAuth(key, "")
	return req
}

// scrapeMetrics reads a process's /metrics.
func scrapeMetrics(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// scrapeCounter reads one sample from a process's /metrics, the series
// written as in the text format (name{label="value",...}); false when the
// process does not answer or has not reported the series yet.
func scrapeCounter(addr, series string) (float64, bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	selector, err := parser.TextToMetricFamilies(strings.NewReader(series + " 0\n"))
	if err != nil || len(selector) != 1 {
		return 0, false
	}
	families, err := scrapeMetrics(addr)
	if err != nil {
		return 0, false
	}
	for name, want := range selector {
		for _, m := range families[name].GetMetric() {
			if sameLabels(m.GetLabel(), want.GetMetric()[0].GetLabel()) {
				return sampleValue(m)
			}
		}
	}
	return 0, false
}

// sameLabels tells whether two series have the same label pairs.
func sameLabels(a, b []*dto.LabelPair) bool {
	if len(a) != len(b) {
		return false
	}
	values := make(map[string]string, len(a))
	for _, l := range a {
		values[l.GetName()] = l.GetValue()
	}
	for _, l := range b {
		if v, ok := values[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// sampleValue is the value of a counter, gauge or untyped sample.
func sampleValue(m *dto.Metric) (float64, bool) {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// bucket is one cumulative histogram bucket: the observations ≤ le.
type bucket struct{ le, count float64 }

// histogramBuckets reads a histogram's cumulative buckets from a process's
// /metrics, the last one +Inf, summed over the histogram's series; nil when
// the process does not answer or has no such histogram.
func histogramBuckets(addr, name string) []bucket {
	families, err := scrapeMetrics(addr)
	if err != nil {
		return nil
	}
	var buckets []bucket
	for _, m := range families[name].GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			return nil
		}
		series := make([]bucket, 0, len(h.GetBucket())+1)
		for _, b := range h.GetBucket() {
			series = append(series, bucket{b.GetUpperBound(), float64(b.GetCumulativeCount())})
		}
		if n := len(series); n == 0 || !math.IsInf(series[n-1].le, 1) {
			series = append(series, bucket{math.Inf(1), float64(h.GetSampleCount())})
		}
		if buckets == nil {
			buckets = series
			continue
		}
		for i := range buckets {
			buckets[i].count += series[i].count
		}
	}
	return buckets
}

// TestScrapeHelpersReadPrometheusText checks scrapeCounter and
// histogramBuckets against what client_golang serves.
func TestScrapeHelpersReadPrometheusText(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"destination", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latency_seconds", Buckets: []float64{0.1, 1}}, []string{"destination"})
	reg.MustRegister(events, latency)
	events.WithLabelValues("hook", "delivered").Add(3)
	events.WithLabelValues("hook", "dead_lettered").Inc()
	for _, v := range []float64{0.05, 0.5, 0.5, 5} {
		latency.WithLabelValues("hook").Observe(v)
	}
	latency.WithLabelValues("other").Observe(0.05)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	counters := []struct {
		series string
		want   float64
		ok     bool
	}{
		{`events_total{destination="hook",outcome="delivered"}`, 3, true},
		{`events_total{outcome="dead_lettered",destination="hook"}`, 1, true},
		{`events_total{destination="hook",outcome="retried"}`, 0, false},
		{`events_total{destination="hook"}`, 0, false},
		{`missing_total`, 0, false},
	}
	for _, c := range counters {
		if got, ok := scrapeCounter(addr, c.series); got != c.want || ok != c.ok {
			t.Errorf("scrapeCounter(%s) = %v, %v; want %v, %v", c.series, got, ok, c.want, c.ok)
		}
	}
	want := []bucket{{0.1, 2}, {1, 4}, {math.Inf(1), 5}}
	if got := histogramBuckets(addr, "latency_seconds"); !slices.Equal(got, want) {
		t.Errorf("histogramBuckets = %v, want %v", got, want)
	}
	if got := histogramBuckets(addr, "missing_seconds"); got != nil {
		t.Errorf("histogramBuckets of a missing histogram = %v, want nil", got)
	}
}
