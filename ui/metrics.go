package ui

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The metrics the overview reads, as the gateway (ingest) and the router
// export them.
const (
	metricGatewayMessages  = "switchyard_gateway_messages_total"
	metricGatewayResponses = "switchyard_gateway_responses_total"
	metricRouterEvents     = "switchyard_router_events_total"
	metricRouterDead       = "switchyard_router_dead_letters_total"
	metricRouterLag        = "switchyard_router_consumer_lag"
	metricRouterPending    = "switchyard_router_pending_events"
	metricRouterLatency    = "switchyard_router_delivery_latency_seconds"

	metricHubSpotPaused      = "switchyard_hubspot_paused"
	metricHubSpotCalls       = "switchyard_hubspot_calls_total"
	metricHubSpotBudgetLimit = "switchyard_hubspot_budget_limit"
	metricHubSpotBudgetUsed  = "switchyard_hubspot_budget_used"
	metricHubSpotDailyReset  = "switchyard_hubspot_budget_daily_reset_seconds"
	metricHubSpotPausedUntil = "switchyard_hubspot_paused_until_seconds"
	metricHubSpotPauseInfo   = "switchyard_hubspot_pause_info"

	metricHubSpotWebhooks    = "switchyard_hubspot_source_webhook_requests_total"
	metricHubSpotCheckpoint  = "switchyard_hubspot_source_catch_up_checkpoint_seconds"
	metricHubSpotSyncRecords = "switchyard_hubspot_source_sync_records_total"
)

// gatewaySource names the gateway's Tracking API as a source while its
// metrics carry no source label.
const gatewaySource = "tracking-api"

// reading is one sample of the counters and gauges the overview shows.
type reading struct {
	seq     uint64
	at      time.Time
	sources map[string]*sourceReading
	dests   map[string]*destReading
}

// sourceReading holds a source's cumulative counts.
type sourceReading struct {
	received float64
	rejected map[string]float64 // by reason

	// A HubSpot source's webhooks accepted, catch-up checkpoints (Unix
	// seconds, by object type) and sync records read (by kind).
	hubspot     bool
	webhooks    float64
	checkpoints map[string]float64
	syncRecords map[string]float64
}

func (s *sourceReading) rejectedTotal() float64 {
	var n float64
	for _, v := range s.rejected {
		n += v
	}
	return n
}

// destReading holds a destination's cumulative counts and its gauges.
type destReading struct {
	delivered, retried, deadLettered float64
	deadByClass                      map[string]float64
	lag, pending                     float64
	hasLag, hasPending               bool
	latency                          *histogram // receivedAt to delivery

	// A HubSpot destination's pause, the API calls it made (calls the
	// paused budget refused are not made) and those made today, in the
	// page clock's day.
	hubspot           bool
	paused            bool
	calls, callsToday float64

	// The token's rate budget, by window (10s, daily, search), when the
	// process exports it: the next daily reset and the pause's end (Unix
	// seconds, 0 when not paused) and reason.
	budget         map[string]*budgetReading
	dailyReset     float64
	pausedUntil    float64
	hasPausedUntil bool
	pauseReason    string
}

// budgetReading is one window of a HubSpot budget.
type budgetReading struct {
	limit, used float64
}

// read gathers g once and picks out the overview's metrics.
func read(g prometheus.Gatherer) (*reading, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("ui: gather metrics: %w", err)
	}
	r := &reading{sources: map[string]*sourceReading{}, dests: map[string]*destReading{}}
	source := func(name string) *sourceReading {
		s := r.sources[name]
		if s == nil {
			s = &sourceReading{rejected: map[string]float64{}, checkpoints: map[string]float64{}, syncRecords: map[string]float64{}}
			r.sources[name] = s
		}
		return s
	}
	dest := func(name string) *destReading {
		d := r.dests[name]
		if d == nil {
			d = &destReading{deadByClass: map[string]float64{}, budget: map[string]*budgetReading{}}
			r.dests[name] = d
		}
		return d
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := labelMap(m)
			switch f.GetName() {
			case metricGatewayMessages:
				s := source(sourceOf(labels))
				switch outcome := labels["outcome"]; outcome {
				case "accepted":
					s.received += m.GetCounter().GetValue()
				default:
					s.rejected[outcome] += m.GetCounter().GetValue()
				}
			case metricGatewayResponses:
				// Requests refused as a whole (bad write key, too large, bad
				// JSON, overload) carry no messages; count them by status.
				if status := labels["status"]; status != "200" {
					source(sourceOf(labels)).rejected["http "+status] += m.GetCounter().GetValue()
				}
			case metricRouterEvents:
				d := dest(labels["destination"])
				v := m.GetCounter().GetValue()
				switch labels["outcome"] {
				case "delivered":
					d.delivered += v
				case "retried":
					d.retried += v
				case "dead_lettered":
					d.deadLettered += v
				}
			case metricRouterDead:
				dest(labels["destination"]).deadByClass[labels["class"]] += m.GetCounter().GetValue()
			case metricRouterLag:
				d := dest(labels["destination"])
				d.lag, d.hasLag = m.GetGauge().GetValue(), true
			case metricRouterPending:
				d := dest(labels["destination"])
				d.pending, d.hasPending = m.GetGauge().GetValue(), true
			case metricRouterLatency:
				dest(labels["destination"]).latency = histogramOf(m.GetHistogram())
			case metricHubSpotPaused:
				d := dest(labels["destination"])
				d.hubspot, d.paused = true, m.GetGauge().GetValue() != 0
			case metricHubSpotCalls:
				d := dest(labels["destination"])
				d.hubspot = true
				if labels["outcome"] != "paused" {
					d.calls += m.GetCounter().GetValue()
				}
			case metricHubSpotBudgetLimit, metricHubSpotBudgetUsed:
				d := dest(labels["destination"])
				d.hubspot = true
				w := d.budget[labels["window"]]
				if w == nil {
					w = &budgetReading{}
					d.budget[labels["window"]] = w
				}
				if f.GetName() == metricHubSpotBudgetLimit {
					w.limit = m.GetGauge().GetValue()
				} else {
					w.used = m.GetGauge().GetValue()
				}
			case metricHubSpotDailyReset:
				d := dest(labels["destination"])
				d.hubspot, d.dailyReset = true, m.GetGauge().GetValue()
			case metricHubSpotPausedUntil:
				d := dest(labels["destination"])
				d.hubspot, d.pausedUntil, d.hasPausedUntil = true, m.GetGauge().GetValue(), true
			case metricHubSpotPauseInfo:
				d := dest(labels["destination"])
				d.hubspot, d.pauseReason = true, labels["reason"]
			case metricHubSpotWebhooks:
				s := source(labels["source"])
				s.hubspot = true
				if labels["result"] == "accepted" {
					s.webhooks += m.GetCounter().GetValue()
				}
			case metricHubSpotCheckpoint:
				s := source(labels["source"])
				s.hubspot = true
				s.checkpoints[labels["object_type"]] = m.GetGauge().GetValue()
			case metricHubSpotSyncRecords:
				s := source(labels["source"])
				s.hubspot = true
				s.syncRecords[labels["kind"]] += m.GetCounter().GetValue()
			}
		}
	}
	return r, nil
}

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func sourceOf(labels map[string]string) string {
	if s := labels["source"]; s != "" {
		return s
	}
	return gatewaySource
}

// countToday sets each HubSpot destination's calls today in r from the
// reading before it: the calls made since prev are added to prev's count
// for the day, or start a new count when the day changed. With no prev,
// the whole counter is today's (it started with the process).
func countToday(prev, r *reading) {
	for name, d := range r.dests {
		var p *destReading
		if prev != nil {
			p = prev.dests[name]
		}
		switch {
		case p == nil:
			d.callsToday = d.calls
		case !sameDay(prev.at, r.at):
			d.callsToday = max(0, d.calls-p.calls)
		default:
			d.callsToday = p.callsToday + max(0, d.calls-p.calls)
		}
	}
}

func sameDay(a, b time.Time) bool {
	b = b.In(a.Location())
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

// lastWebhook is when the readings, oldest first, last saw source's
// accepted webhooks grow; false when they never did.
func lastWebhook(rs []*reading, source string) (time.Time, bool) {
	for i := len(rs) - 1; i > 0; i-- {
		now, prev := rs[i].sources[source], rs[i-1].sources[source]
		if now == nil {
			continue
		}
		if prev == nil && now.webhooks > 0 || prev != nil && now.webhooks > prev.webhooks {
			return rs[i].at, true
		}
	}
	return time.Time{}, false
}

// ring keeps the last readings, oldest first, in a fixed-size buffer.
type ring struct {
	mu    sync.Mutex
	buf   []*reading
	start int // index of the oldest reading
	n     int
}

func newRing(size int) *ring { return &ring{buf: make([]*reading, size)} }

func (r *ring) add(x *reading) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = x
		r.n++
		return
	}
	r.buf[r.start] = x
	r.start = (r.start + 1) % len(r.buf)
}

// all returns the readings, oldest first.
func (r *ring) all() []*reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*reading, r.n)
	for i := range r.n {
		out[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	return out
}

// latest returns the newest reading and the one closest to window before
// it (nil when the ring is empty).
func (r *ring) latest(window time.Duration) (now, before *reading) {
	all := r.all()
	if len(all) == 0 {
		return nil, nil
	}
	now = all[len(all)-1]
	before = all[0]
	for i := len(all) - 2; i >= 0; i-- {
		before = all[i]
		if now.at.Sub(all[i].at) >= window {
			break
		}
	}
	return now, before
}

// point is one chart point: per-second rates between two readings.
type point struct {
	T            float64               `json:"t"` // Unix seconds
	Seq          uint64                `json:"seq"`
	Sources      map[string][2]float64 `json:"s"` // received, rejected
	Destinations map[string][3]float64 `json:"d"` // delivered, retried, dead-lettered
}

// rate is the per-second increase of a counter; a reset counts as 0.
func rate(now, before float64, dt float64) float64 {
	if dt <= 0 || now < before {
		return 0
	}
	return (now - before) / dt
}

// pointBetween is the rates from a to b.
func pointBetween(a, b *reading) point {
	dt := b.at.Sub(a.at).Seconds()
	p := point{
		T:            float64(b.at.UnixMilli()) / 1000,
		Seq:          b.seq,
		Sources:      map[string][2]float64{},
		Destinations: map[string][3]float64{},
	}
	for name, s := range b.sources {
		prev := a.sources[name]
		if prev == nil {
			prev = &sourceReading{}
		}
		p.Sources[name] = [2]float64{rate(s.received, prev.received, dt), rate(s.rejectedTotal(), prev.rejectedTotal(), dt)}
	}
	for name, d := range b.dests {
		prev := a.dests[name]
		if prev == nil {
			prev = &destReading{}
		}
		p.Destinations[name] = [3]float64{
			rate(d.delivered, prev.delivered, dt),
			rate(d.retried, prev.retried, dt),
			rate(d.deadLettered, prev.deadLettered, dt),
		}
	}
	return p
}

// history turns readings into chart points: one per reading for the last
// fine span, one per coarse step before it, so an hour of history stays
// small on the page.
func history(rs []*reading, fine, coarse time.Duration) []point {
	if len(rs) < 2 {
		return []point{}
	}
	last := rs[len(rs)-1].at
	var out []point
	prev := rs[0]
	for _, r := range rs[1:] {
		if last.Sub(r.at) > fine && r.at.Sub(prev.at) < coarse {
			continue
		}
		out = append(out, pointBetween(prev, r))
		prev = r
	}
	return out
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
