package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	responses      *prometheus.CounterVec
	messages       *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	// The series every stored request counts in, looked up once.
	ok                           prometheus.Counter
	accepted, invalid, duplicate prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_gateway_responses_total",
			Help: "Tracking API responses by HTTP status.",
		}, []string{"status"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_gateway_messages_total",
			Help: "Messages received, by outcome: accepted, invalid (dead-lettered or refused) or duplicate.",
		}, []string{"outcome"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchyard_gateway_publish_seconds",
			Help:    "Time to write one request's messages durably to the log.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.responses, m.messages, m.publishSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.ok = m.responses.WithLabelValues("200")
	m.accepted = m.messages.WithLabelValues("accepted")
	m.invalid = m.messages.WithLabelValues("invalid")
	m.duplicate = m.messages.WithLabelValues("duplicate")
	return m, nil
}
