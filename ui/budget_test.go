package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// budgetMetrics are a HubSpot destination's budget gauges, by the names and
// labels destinations/hubspot exports.
type budgetMetrics struct {
	limit, used               *prometheus.GaugeVec
	reset, pausedUntil, pause *prometheus.GaugeVec
}

func newBudgetMetrics(reg *prometheus.Registry) *budgetMetrics {
	b := &budgetMetrics{
		limit:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotBudgetLimit, Help: "h"}, []string{"destination", "window"}),
		used:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotBudgetUsed, Help: "h"}, []string{"destination", "window"}),
		reset:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotDailyReset, Help: "h"}, []string{"destination"}),
		pausedUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotPausedUntil, Help: "h"}, []string{"destination"}),
		pause:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHubSpotPauseInfo, Help: "h"}, []string{"destination", "reason"}),
	}
	reg.MustRegister(b.limit, b.used, b.reset, b.pausedUntil, b.pause)
	return b
}

func (b *budgetMetrics) window(dest, window string, limit, used float64) {
	b.limit.WithLabelValues(dest, window).Set(limit)
	b.used.WithLabelValues(dest, window).Set(used)
}

func TestOverviewHubSpotBudget(t *testing.T) {
	m := newOverviewMetrics()
	b := newBudgetMetrics(m.reg)
	c := &clock{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	h := newOverviewHandler(t, m, c)
	b.window("crm", "10s", 95, 40)
	b.window("crm", "daily", 625000, 600000)
	b.window("crm", "search", 5, 2)
	// Midnight in New York.
	b.reset.WithLabelValues("crm").Set(float64(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC).Unix()))
	b.pausedUntil.WithLabelValues("crm").Set(0)
	b.window("oauth", "10s", 110, 0)
	b.window("oauth", "daily", 0, 0)
	b.window("oauth", "search", 5, 0)
	m.paused.WithLabelValues("oauth").Set(0)

	f := h.mustSample(t)
	for _, c := range []struct{ field, want string }{
		{"budget-10s", `40 / 95`},
		{"budget-10s", `data-left="55"`},
		{"budget-daily", `600000 / 625000`},
		{"budget-daily", `25000 left`},
		{"budget-daily", `resets 05:00:00 UTC (in 9 h 0 min)`},
		{"budget-search", `2 / 5`},
		{"budget-search", `3 left`},
		{"state", `data-paused="false">running`},
	} {
		if got := field(t, f, "data-hubspot-destination", "crm", c.field); !strings.Contains(got, c.want) {
			t.Errorf("%s = %q, want %q in it", c.field, got, c.want)
		}
	}
	if got := field(t, f, "data-hubspot-destination", "oauth", "budget-daily"); got != "–" {
		t.Errorf("a daily budget HubSpot has not reported shows %q, want –", got)
	}

	// HubSpot answers DAILY: the budget is paused until midnight, read at
	// the scrape though the paused gauge (set after each send) still says 0.
	c.t = c.t.Add(time.Second)
	b.window("crm", "daily", 625000, 625000)
	until := time.Date(2026, 12, 1, 20, 42, 30, 0, time.UTC)
	b.pausedUntil.WithLabelValues("crm").Set(float64(until.Unix()))
	b.pause.WithLabelValues("crm", "the daily limit is used up").Set(1)
	m.paused.WithLabelValues("crm").Set(0)
	f = h.mustSample(t)
	state := field(t, f, "data-hubspot-destination", "crm", "state")
	if want := `paused: the daily limit is used up, until <time datetime="2026-12-01T20:42:30Z">20:42:30 UTC</time> (in 43 min)`; !strings.Contains(state, want) || !strings.Contains(state, `data-paused="true"`) {
		t.Errorf("state = %q, want %q", state, want)
	}
	if got := field(t, f, "data-hubspot-destination", "crm", "budget-daily"); !strings.Contains(got, `data-left="0"`) {
		t.Errorf("daily budget after DAILY = %q, want 0 left", got)
	}

	// The pause is over at the scrape; the paused gauge lags.
	c.t = until.Add(time.Second)
	b.pausedUntil.WithLabelValues("crm").Set(0)
	b.pause.Reset()
	m.paused.WithLabelValues("crm").Set(1)
	f = h.mustSample(t)
	if got := field(t, f, "data-hubspot-destination", "crm", "state"); !strings.Contains(got, `data-paused="false">running`) {
		t.Errorf("state after the pause = %q, want running", got)
	}
}

func TestFormatIn(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "now"}, {0, "now"}, {1500 * time.Millisecond, "in 2 s"}, {59 * time.Second, "in 59 s"},
		{time.Minute, "in 1 min"}, {42*time.Minute + time.Second, "in 43 min"}, {time.Hour, "in 1 h 0 min"},
		{3*time.Hour + 4*time.Minute + 30*time.Second, "in 3 h 5 min"},
	} {
		if got := formatIn(c.d); got != c.want {
			t.Errorf("formatIn(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}
