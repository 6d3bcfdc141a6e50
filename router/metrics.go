package router

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the routers' Prometheus metrics, labelled by destination. One
// Metrics serves every router of a process.
type Metrics struct {
	events    *prometheus.CounterVec
	dead      *prometheus.CounterVec
	batchSize *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	pending   *prometheus.GaugeVec
	latency   *prometheus.HistogramVec
	lag       *prometheus.GaugeVec

	redelivered *prometheus.CounterVec
}

// NewMetrics registers the router metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_router_events_total",
			Help: "Events by outcome: delivered, retried (one per retry), dead_lettered, skipped (not for this destination or already delivered).",
		}, []string{"destination", "outcome"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_router_dead_letters_total",
			Help: "Dead-lettered events by reason class.",
		}, []string{"destination", "class"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_router_batch_size",
			Help:    "Events per batch sent.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500},
		}, []string{"destination"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_router_batches_in_flight",
			Help: "Batches being sent.",
		}, []string{"destination"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_router_pending_events",
			Help: "Events fetched and not yet finished: the consumer's lag inside the process.",
		}, []string{"destination"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_router_consumer_lag",
			Help: "Messages past the destination's consumer group's committed offsets, read every " + groupWatchInterval.String() + ".",
		}, []string{"destination"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_router_redelivered_total",
			Help: "Messages the log delivered more than once, by how the router took them: held (it still had the offset, in flight, pending or finished and uncommitted, and dropped the copy), already_delivered (its messageId was delivered within the dedupe window, so it was skipped; a client sending a message twice counts here too), revoked_in_flight (being sent when its partition was revoked; the new owner sends it again, so the destination likely gets it twice).",
		}, []string{"destination", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_router_delivery_latency_seconds",
			Help:    "Time from the gateway's receivedAt to delivery.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 18),
		}, []string{"destination"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.dead, m.batchSize, m.inFlight, m.pending, m.latency, m.lag, m.redelivered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
