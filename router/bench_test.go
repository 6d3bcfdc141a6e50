package router

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations/drop"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/schemas"
)

// benchUsers is how many users the benchmark's events come from.
const benchUsers = 10_000

// benchEvent is a track call as the gateway stores it, about 670 bytes,
// with the event header the gateway gives it.
func benchEvent(i int, receivedAt string) queue.Message {
	user := fmt.Sprintf("user-%d", (i*7919)%benchUsers)
	value := fmt.Appendf(nil, `{"type":"track","userId":%q,"event":"Order Completed","messageId":"bench-%08d-5f1c-4b7e-9d2a-3c8e1f0b6a47",`+
		`"properties":{"orderId":"o-%d","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10,"quantity":1},{"id":"p2","price":32.5,"quantity":1}]},`+
		`"context":{"library":{"name":"analytics.js","version":"5.2.1"},"page":{"path":"/checkout","url":"https://shop.example.com/checkout"},`+
		`"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0","ip":"203.0.113.7"},`+
		`"sentAt":"2026-11-22T19:01:33.000Z","originalTimestamp":"2026-11-22T19:01:32.346Z","timestamp":"2026-11-22T19:01:32.346Z",`+
		`"receivedAt":%q,"_switchyard":{"source":"web"}}`, user, i, i, receivedAt)
	at, err := schemas.ParseTime(receivedAt)
	if err != nil {
		panic(err)
	}
	header := schemas.AppendEventHeader(nil, schemas.EventHeader{MessageID: fmt.Sprintf("bench-%08d-5f1c-4b7e-9d2a-3c8e1f0b6a47", i), Source: "web", ReceivedAt: at})
	return queue.Message{Topic: "events", Key: []byte(user), Value: value, Headers: []queue.Header{{Key: schemas.EventHeaderKey, Value: header}}}
}

// BenchmarkRouterDrop delivers b.N events, read from an embedded log of 8
// partitions filled beforehand, to the drop destination, with the delivery
// page's outcome ring observing as in serve. One op is one event: ns/op is
// the router's (and the log's reading) time per event, allocs/op its
// allocations per event; cpu-ns/event is the CPU time the process spent
// per event meanwhile, on every core.
func BenchmarkRouterDrop(b *testing.B) {
	dir := b.TempDir()
	log, err := embedded.Open(embedded.Config{Dir: dir, Partitions: 8}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	receivedAt := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	msgs := make([]queue.Message, 0, 1000)
	for i := 0; i < b.N; i++ {
		msgs = append(msgs, benchEvent(i, receivedAt))
		if len(msgs) == cap(msgs) || i == b.N-1 {
			if err := log.Publish(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	// Reopened, the log has flushed what it took, so the run is spent
	// reading it.
	if err := log.Close(); err != nil {
		b.Fatal(err)
	}
	if log, err = embedded.Open(embedded.Config{Dir: dir, Partitions: 8}, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	finished := 0
	r, err := New(Config{
		Destination: "bench",
		Observer:    NewOutcomes(10_000, "bench"),
		OnFinish: func() {
			if finished++; finished == b.N {
				cancel()
			}
		},
	}, drop.New(), log, zap.NewNop(), m)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := log.Subscribe(context.Background(), queue.SubscribeConfig{Group: r.Group(), Topic: "events"})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()

	b.ReportAllocs()
	b.ResetTimer()
	start, startCPU := time.Now(), cpuTime(b)
	if err := r.Run(ctx, sub); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-startCPU
	b.StopTimer()
	if finished != b.N {
		b.Fatalf("finished %d events of %d", finished, b.N)
	}
	lag, err := sub.Lag(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if lag != 0 {
		b.Fatalf("the group's lag after the run is %d, want 0", lag)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
}

// cpuTime is the CPU time the process has used, in user and system mode.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
