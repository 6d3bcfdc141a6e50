package hubspot

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the HubSpot destinations' Prometheus metrics, labelled by
// destination. One Metrics serves every HubSpot destination of a process.
type Metrics struct {
	skipped *prometheus.CounterVec
	calls   *prometheus.CounterVec
	records *prometheus.CounterVec
	paused  *prometheus.GaugeVec
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
	}
	for _, c := range []prometheus.Collector{m.skipped, m.calls, m.records, m.paused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
