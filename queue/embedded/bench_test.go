package embedded

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// BenchmarkPublish measures fsynced publishes from many concurrent callers,
// which group commit lets share each fsync.
func BenchmarkPublish(b *testing.B) {
	for _, perCall := range []int{1, 100} {
		b.Run(fmt.Sprintf("%d messages per call", perCall), func(b *testing.B) {
			l, err := Open(Config{Dir: b.TempDir()}, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			value := make([]byte, 300)
			for i := range value {
				value[i] = byte('a' + i%26)
			}
			var callers atomic.Int64
			ctx := context.Background()
			b.SetBytes(int64(perCall * len(value)))
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := callers.Add(1)
				msgs := make([]queue.Message, perCall)
				for i := range msgs {
					msgs[i] = queue.Message{Topic: "events", Key: fmt.Appendf(nil, "user-%d-%d", id, i), Value: value}
				}
				for pb.Next() {
					if err := l.Publish(ctx, msgs...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*perCall)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
