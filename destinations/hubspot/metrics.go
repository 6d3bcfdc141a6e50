package hubspot

import (
	"maps"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
)

// Metrics are the HubSpot destinations' Prometheus metrics, labelled by
// destination. One Metrics serves every HubSpot destination of a process.
type Metrics struct {
	skipped *prometheus.CounterVec
	calls   *prometheus.CounterVec
	records *prometheus.CounterVec
	paused  *prometheus.GaugeVec
	budgets *budgetCollector
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_skipped_total",
			Help: "Traits, properties and calls not sent to HubSpot, by reason: unknown_property, invalid_value, collision, invalid_name, read_only, too_many_properties, alias, page, screen, from_this_portal (an event a HubSpot source read from this portal, not written back).",
		}, []string{"destination", "reason"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_calls_total",
			Help: "HubSpot API calls, by endpoint and outcome: ok; conflict (a 409: what the call creates exists already, which the destination takes as done); or the failure's class (http_429, transient, paused, auth, property_missing, http_4xx).",
		}, []string{"destination", "endpoint", "outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hubspot_records_total",
			Help: "Records and events sent in batch calls, by kind: contacts, companies, events.",
		}, []string{"destination", "kind"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_hubspot_paused",
			Help: "1 while the destination waits for HubSpot's daily limit to reset, else 0.",
		}, []string{"destination"}),
		budgets: newBudgetCollector(),
	}
	for _, c := range []prometheus.Collector{m.skipped, m.calls, m.records, m.paused, m.budgets} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The values of the budget metrics' window label.
const (
	windowBurst  = "10s"
	windowDaily  = "daily"
	windowSearch = "search"
)

// budgetCollector reads each destination's rate budget when scraped, so
// calls never update it.
type budgetCollector struct {
	limit, used, reset, pausedUntil, pause *prometheus.Desc

	mu      sync.Mutex
	budgets map[string]*ratelimit.Budget // by destination
}

func newBudgetCollector() *budgetCollector {
	return &budgetCollector{
		limit: prometheus.NewDesc("switchyard_hubspot_budget_limit",
			"Calls the token's rate budget allows per window, by window: 10s is this process's share of the 10-second rolling limit (the tier's, or HubSpot's X-HubSpot-RateLimit-Max, split among the processes serving the token); daily is the account's daily limit as HubSpot's X-HubSpot-RateLimit-Daily header last said (0 until a response reports it; OAuth tokens have none); search is the search endpoints' limit per second.",
			[]string{"destination", "window"}, nil),
		used: prometheus.NewDesc("switchyard_hubspot_budget_used",
			"Calls spent in each window's current span, by window: 10s the calls of the last 10 s, with those HubSpot's X-HubSpot-RateLimit-Remaining says others made; search those of the last second; daily the account's calls today (since midnight in the portal's time zone) as X-HubSpot-RateLimit-Daily-Remaining last said, all of it after a DAILY 429.",
			[]string{"destination", "window"}, nil),
		reset: prometheus.NewDesc("switchyard_hubspot_budget_daily_reset_seconds",
			"When the daily limit resets next (midnight in the portal's time zone), in Unix seconds.",
			[]string{"destination"}, nil),
		pausedUntil: prometheus.NewDesc("switchyard_hubspot_paused_until_seconds",
			"Until when the token's budget holds every call back (the daily limit used up, or a Retry-After), in Unix seconds; 0 while calls may go.",
			[]string{"destination"}, nil),
		pause: prometheus.NewDesc("switchyard_hubspot_pause_info",
			"1, with the reason as a label, while the token's budget holds every call back; absent otherwise.",
			[]string{"destination", "reason"}, nil),
		budgets: map[string]*ratelimit.Budget{},
	}
}

// watch exports destination's budget.
func (c *budgetCollector) watch(destination string, b *ratelimit.Budget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budgets[destination] = b
}

// forget stops exporting destination's budget, if it is still b.
func (c *budgetCollector) forget(destination string, b *ratelimit.Budget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budgets[destination] == b {
		delete(c.budgets, destination)
	}
}

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limit, c.used, c.reset, c.pausedUntil, c.pause} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	budgets := maps.Clone(c.budgets)
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for name, b := range budgets {
		s := b.State()
		for _, w := range []struct {
			window string
			state  ratelimit.WindowState
		}{{windowBurst, s.Burst}, {windowDaily, s.Daily}, {windowSearch, s.Search}} {
			gauge(c.limit, float64(w.state.Limit), name, w.window)
			gauge(c.used, float64(w.state.Used), name, w.window)
		}
		gauge(c.reset, float64(s.DailyReset.Unix()), name)
		until := 0.0
		if !s.PausedUntil.IsZero() {
			until = float64(s.PausedUntil.UnixMilli()) / 1000
			gauge(c.pause, 1, name, s.PauseReason)
		}
		gauge(c.pausedUntil, until, name)
	}
}
