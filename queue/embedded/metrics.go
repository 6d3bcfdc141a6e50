package embedded

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the embedded log's Prometheus metrics. One Metrics serves one
// Log.
type Metrics struct {
	lost *prometheus.CounterVec
}

// NewMetrics registers the embedded log's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_log_retention_lost_total",
			Help: "Messages that retention deleted at retention_hard_age or retention_hard_bytes before the consumer group had committed them.",
		}, []string{"group", "topic"}),
	}
	if err := reg.Register(m.lost); err != nil {
		return nil, err
	}
	return m, nil
}
