package embedded

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the embedded log's Prometheus metrics. One Metrics serves one
// Log.
type Metrics struct {
	lost             *prometheus.CounterVec
	backgroundErrors prometheus.Counter
	diskFull         prometheus.Gauge
}

// NewMetrics registers the embedded log's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_log_retention_lost_total",
			Help: "Messages that retention deleted at retention_hard_age or retention_hard_bytes before the consumer group had committed them.",
		}, []string{"group", "topic"}),
		backgroundErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_log_background_errors_total",
			Help: "Errors of pebble's background work (flushes, compactions), which pebble retries; a full disk makes them climb.",
		}),
		diskFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_log_disk_full",
			Help: "1 while the embedded log refuses appends because its disk has less than min_free_bytes free, else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.lost, m.backgroundErrors, m.diskFull} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
