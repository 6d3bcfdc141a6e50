package ui

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// overviewMetrics registers the router's latency histogram and the HubSpot
// destinations' and sources' metrics, by the names, labels and buckets
// they export, next to the gateway's and router's counters.
type overviewMetrics struct {
	*testMetrics
	latency     *prometheus.HistogramVec
	paused      *prometheus.GaugeVec
	calls       *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	checkpoint  *prometheus.GaugeVec
	syncRecords *prometheus.CounterVec
}

func newOverviewMetrics() *overviewMetrics {
	m := &overviewMetrics{
		testMetrics: newTestMetrics(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricRouterLatency, Help: "h",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 18)}, []string{"destination"}),
		paused:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotPaused, Help: "h"}, []string{"destination"}),
		calls:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricHubSpotCalls, Help: "h"}, []string{"destination", "endpoint", "outcome"}),
		webhooks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricHubSpotWebhooks, Help: "h"}, []string{"source", "result"}),
		checkpoint:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotCheckpoint, Help: "h"}, []string{"source", "object_type"}),
		syncRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricHubSpotSyncRecords, Help: "h"}, []string{"source", "kind", "object_type"}),
	}
	m.reg.MustRegister(m.latency, m.paused, m.calls, m.webhooks, m.checkpoint, m.syncRecords)
	return m
}

// clock is a settable clock for the handler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newOverviewHandler(t *testing.T, m *overviewMetrics, c *clock) *Handler {
	t.Helper()
	// The test samples by hand; the ticker's hour never comes, and the ring
	// keeps a thousand readings.
	h, err := New(Config{Metrics: m.reg, Context: t.Context(), Now: c.now, SampleEvery: time.Hour, Keep: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

func (h *Handler) mustSample(t *testing.T) string {
	t.Helper()
	if err := h.sample(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fragment
}

// field is the text of the cell data-field=name in the row whose attr is
// key.
func field(t *testing.T, fragment, attr, key, name string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr ` + attr + `="` + regexp.QuoteMeta(key) + `">(.*?)</tr>`).FindStringSubmatch(fragment)
	if row == nil {
		t.Fatalf("no row %s=%q in\n%s", attr, key, fragment)
	}
	cell := regexp.MustCompile(`(?s)<td data-field="` + name + `">(.*?)</td>`).FindStringSubmatch(row[1])
	if cell == nil {
		t.Fatalf("row %s=%q has no field %q: %s", attr, key, name, row[1])
	}
	return cell[1]
}

func TestQuantileInterpolatesInsideTheBucket(t *testing.T) {
	// 10 observations at most 0.1, 30 more at most 0.2, 60 more at most 0.4.
	h := &histogram{bounds: []float64{0.1, 0.2, 0.4, math.Inf(1)}, counts: []float64{10, 40, 100, 100}}
	for _, c := range []struct{ q, want float64 }{
		{0.05, 0.05},           // rank 5 of 10 in [0, 0.1]
		{0.5, 0.2 + 0.2*10/60}, // rank 50: 10 into the 60 of (0.2, 0.4]
		{0.99, 0.2 + 0.2*59/60},
		{0.4, 0.2}, // rank 40: the top of (0.1, 0.2]
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	inf := &histogram{bounds: []float64{0.1, math.Inf(1)}, counts: []float64{1, 10}}
	if got := inf.quantile(0.99); got != 0.1 {
		t.Errorf("a rank in the +Inf bucket gave %v, want the highest bound 0.1", got)
	}
	empty := &histogram{bounds: []float64{0.1, math.Inf(1)}, counts: []float64{0, 0}}
	if got := empty.quantile(0.5); !math.IsNaN(got) {
		t.Errorf("an empty histogram gave %v, want NaN", got)
	}
	if got := h.since(&histogram{bounds: h.bounds, counts: []float64{10, 40, 40, 40}}); got.counts[2] != 60 || got.counts[0] != 0 {
		t.Errorf("since subtracted to %v, want [0 0 60 60]", got.counts)
	}
}

func TestOverviewLatencyOverTheLastMinute(t *testing.T) {
	m := newOverviewMetrics()
	c := &clock{t: time.Unix(1_000_000, 0)}
	h := newOverviewHandler(t, m, c)
	obs := m.latency.WithLabelValues("webhook")
	// Old deliveries, all slow: they must not count a minute later.
	for range 50 {
		obs.Observe(30)
	}
	first := h.mustSample(t)
	// Rank 49.5 of 50 in (20.48, 40.96].
	if got, want := field(t, first, "data-destination", "webhook", "p99"), formatSeconds(20.48+20.48*49.5/50); got != want {
		t.Errorf("first sample p99 = %q, want %q", got, want)
	}
	c.t = c.t.Add(time.Minute)
	// Within the minute: 10 in (0.005, 0.01], 90 in (0.01, 0.02].
	for range 10 {
		obs.Observe(0.008)
	}
	for range 90 {
		obs.Observe(0.015)
	}
	f := h.mustSample(t)
	// p50: rank 50, 40 into the 90 of (0.01, 0.02]; p99: rank 99, 89 into them.
	if got, want := field(t, f, "data-destination", "webhook", "p50"), formatSeconds(0.01+0.01*40/90); got != want {
		t.Errorf("p50 = %q, want %q", got, want)
	}
	if got, want := field(t, f, "data-destination", "webhook", "p99"), formatSeconds(0.01+0.01*89/90); got != want {
		t.Errorf("p99 = %q, want %q", got, want)
	}
	c.t = c.t.Add(time.Minute)
	f = h.mustSample(t)
	for _, q := range []string{"p50", "p99"} {
		if got := field(t, f, "data-destination", "webhook", q); got != "–" {
			t.Errorf("%s with nothing delivered in the minute = %q, want –", q, got)
		}
	}
}

func TestOverviewHubSpotDestination(t *testing.T) {
	m := newOverviewMetrics()
	c := &clock{t: time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)}
	h := newOverviewHandler(t, m, c)
	m.calls.WithLabelValues("hubspot", "contacts_batch_upsert", "ok").Add(7)
	m.calls.WithLabelValues("hubspot", "events_send", "http_429").Add(1)
	m.calls.WithLabelValues("hubspot", "events_send", "paused").Add(100)
	m.paused.WithLabelValues("hubspot").Set(0)
	m.events.WithLabelValues("webhook", "delivered").Add(1)
	f := h.mustSample(t)
	if got := field(t, f, "data-hubspot-destination", "hubspot", "state"); !strings.Contains(got, `data-paused="false"`) {
		t.Errorf("state = %q, want not paused", got)
	}
	if got := field(t, f, "data-hubspot-destination", "hubspot", "calls-today"); got != "8" {
		t.Errorf("calls today = %q, want 8 (the paused ones were not made)", got)
	}
	if strings.Contains(f, `data-hubspot-destination="webhook"`) {
		t.Error("a webhook destination has a HubSpot row")
	}
	for i := range 30 {
		c.t = c.t.Add(time.Second)
		if i == 25 {
			m.calls.WithLabelValues("hubspot", "contacts_batch_upsert", "ok").Add(3)
		}
		f = h.mustSample(t)
	}
	if got := field(t, f, "data-hubspot-destination", "hubspot", "calls-window"); got != "3" {
		t.Errorf("calls in the last 10 s = %q, want 3", got)
	}
	if got := field(t, f, "data-hubspot-destination", "hubspot", "calls-today"); got != "11" {
		t.Errorf("calls today = %q, want 11", got)
	}
	// Past midnight only the calls made since count for the day.
	c.t = time.Date(2026, 12, 2, 0, 0, 5, 0, time.UTC)
	m.calls.WithLabelValues("hubspot", "contacts_batch_upsert", "ok").Add(2)
	m.paused.WithLabelValues("hubspot").Set(1)
	f = h.mustSample(t)
	if got := field(t, f, "data-hubspot-destination", "hubspot", "calls-today"); got != "2" {
		t.Errorf("calls today after midnight = %q, want 2", got)
	}
	if got := field(t, f, "data-hubspot-destination", "hubspot", "state"); !strings.Contains(got, `data-paused="true"`) {
		t.Errorf("state = %q, want paused", got)
	}
}

func TestOverviewHubSpotSource(t *testing.T) {
	m := newOverviewMetrics()
	c := &clock{t: time.Unix(2_000_000, 0)}
	h := newOverviewHandler(t, m, c)
	m.checkpoint.WithLabelValues("portal", "contacts").Set(1_700_000_000)
	m.checkpoint.WithLabelValues("portal", "companies").Set(0)
	m.syncRecords.WithLabelValues("portal", "catch-up", "contacts").Add(4)
	m.syncRecords.WithLabelValues("portal", "catch-up", "companies").Add(2)
	m.syncRecords.WithLabelValues("portal", "full", "contacts").Add(9)
	m.webhooks.WithLabelValues("portal", "unauthorized").Add(1)
	f := h.mustSample(t)
	if got := field(t, f, "data-hubspot-source", "portal", "last-webhook"); got != "none accepted" {
		t.Errorf("last webhook = %q, want none accepted", got)
	}
	if got := field(t, f, "data-hubspot-source", "portal", "checkpoints"); !strings.Contains(got, "contacts: 2023-11-14T22:13:20Z") || !strings.Contains(got, "companies: none yet") {
		t.Errorf("checkpoints = %q", got)
	}
	if got := field(t, f, "data-hubspot-source", "portal", "sync-records"); !strings.Contains(got, "catch-up: 6") || !strings.Contains(got, "full: 9") {
		t.Errorf("sync records = %q, want catch-up 6 and full 9", got)
	}
	c.t = c.t.Add(time.Second)
	m.webhooks.WithLabelValues("portal", "accepted").Add(1)
	h.mustSample(t)
	c.t = c.t.Add(5 * time.Second)
	m.webhooks.WithLabelValues("portal", "unauthorized").Add(1)
	f = h.mustSample(t)
	if got := field(t, f, "data-hubspot-source", "portal", "last-webhook"); got != "5s ago" {
		t.Errorf("last webhook = %q, want 5s ago", got)
	}

	// A handler that starts after webhooks were accepted cannot tell when.
	h2 := newOverviewHandler(t, m, c)
	f = h2.mustSample(t)
	if got := field(t, f, "data-hubspot-source", "portal", "last-webhook"); !strings.HasPrefix(got, "before ") {
		t.Errorf("last webhook before the first sample = %q, want before …", got)
	}
}
