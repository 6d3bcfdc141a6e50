package embedded

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the embedded log's Prometheus metrics. One Metrics serves one
// Log.
type Metrics struct {
	lost             *prometheus.CounterVec
	backgroundErrors prometheus.Counter
	diskFull         prometheus.Gauge
	// db is the open log's store, whose memory the gauges report; nil
	// before Open and after Close.
	db atomic.Pointer[pebble.DB]
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
	collectors := []prometheus.Collector{m.lost, m.backgroundErrors, m.diskFull,
		m.storeGauge("switchyard_log_block_cache_bytes", "Bytes held by the embedded log's block cache, at most block_cache_bytes.",
			func(s *pebble.Metrics) float64 { return float64(s.BlockCache.Size) }),
		m.storeGauge("switchyard_log_memtable_bytes", "Bytes held by the embedded log's memtables, those waiting for their flush included.",
			func(s *pebble.Metrics) float64 { return float64(s.MemTable.Size) }),
		m.storeGauge("switchyard_log_open_tables", "Table files of the embedded log held open in its file cache.",
			func(s *pebble.Metrics) float64 { return float64(s.FileCache.TableCount) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// storeGauge is a gauge that reads the open store's metrics when scraped,
// and is 0 while no store is open.
func (m *Metrics) storeGauge(name, help string, read func(*pebble.Metrics) float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		db := m.db.Load()
		if db == nil {
			return 0
		}
		return read(db.Metrics())
	})
}
