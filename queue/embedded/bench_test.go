package embedded

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/switchyard/switchyard/queue"
)

// BenchmarkPublish measures fsynced publishes shaped like the gateway's: 32
// concurrent callers (the gateway's connections), each publishing calls of
// 1 or 100 messages of about 650 bytes of JSON keyed by one of 100,000 user
// ids, so every call spreads over the topic's 8 partitions. One op is one
// call. Run it long enough for pebble to flush and compact, e.g.
//
//	go test -run '^$' -bench 'Publish/100' -benchtime 40000x ./queue/embedded/
//
// (4M messages, 2.6 GB). Besides MB/s it reports messages/s, allocations
// per message, CPU time per message (the process's, pebble's
// background work included), the peak Go heap and the process's peak RSS during the run,
// pebble's flushed, compacted and moved bytes, and its write stalls.
func BenchmarkPublish(b *testing.B) {
	values := benchValues(4096)
	for _, perCall := range []int{1, 100} {
		b.Run(fmt.Sprintf("%d messages per call", perCall), func(b *testing.B) {
			stalls := &stallWatch{}
			l, err := Open(Config{Dir: b.TempDir()}, stalls.logger())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			var size int64
			for _, v := range values {
				size += int64(len(v))
			}
			b.SetBytes(int64(perCall) * size / int64(len(values)))
			b.SetParallelism(16)
			peak := watchMemory()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			cpuBefore := cpuTime()
			var callers atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(callers.Add(1), 1))
				msgs := make([]queue.Message, perCall)
				for pb.Next() {
					for i := range msgs {
						msgs[i] = queue.Message{
							Topic: "events",
							Key:   strconv.AppendInt(msgs[i].Key[:0], int64(rng.IntN(100_000)), 10),
							Value: values[rng.IntN(len(values))],
						}
					}
					if err := l.Publish(ctx, msgs...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cpu := cpuTime() - cpuBefore
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			heap, rss := peak()
			messages := float64(b.N * perCall)
			m := l.db.Metrics()
			b.ReportMetric(messages/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/messages, "cpu-ns/msg")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/messages, "allocs/msg")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
			b.ReportMetric(float64(m.Levels[0].TableBytesFlushed+m.Levels[0].BlobBytesFlushed)/(1<<20), "flushed-MB")
			var compacted uint64
			for _, lm := range m.Levels[1:] {
				compacted += lm.TableBytesCompacted + lm.BlobBytesCompacted
			}
			b.ReportMetric(float64(compacted)/(1<<20), "compacted-MB")
			var moved uint64
			for _, lm := range m.Levels[1:] {
				moved += lm.TableBytesMoved
			}
			b.ReportMetric(float64(moved)/(1<<20), "moved-MB")
			n, stalled := stalls.total()
			b.ReportMetric(float64(n), "stalls")
			b.ReportMetric(stalled.Seconds(), "stalled-s")
		})
	}
}

// stallWatch counts pebble's write stalls and their time from the log's
// "writes stalled" and "writes resumed" lines.
type stallWatch struct {
	mu      sync.Mutex
	count   int
	since   time.Time
	stalled time.Duration
}

func (w *stallWatch) logger() *zap.Logger {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel)
	return zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e.Message {
		case "writes stalled":
			w.count++
			w.since = e.Time
		case "writes resumed":
			if !w.since.IsZero() {
				w.stalled += e.Time.Sub(w.since)
				w.since = time.Time{}
			}
		}
		return nil
	}))
}

func (w *stallWatch) total() (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count, w.stalled
}

// benchValues returns n Segment track calls of about 650 bytes of JSON,
// each with its own ids and timestamp, compressible like real ones.
func benchValues(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		s := make([]byte, n)
		for i := range s {
			s[i] = digits[rng.IntN(16)]
		}
		return string(s)
	}
	events := []string{"Order Completed", "Product Viewed", "Checkout Started", "Signed Up", "Page Viewed"}
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"type":"track","event":%q,"messageId":"%s-%s-%s-%s-%s","userId":"user-%d","anonymousId":"%s",`+
			`"timestamp":"2026-12-01T16:%02d:%02d.%03dZ","receivedAt":"2026-12-01T16:%02d:%02d.%03dZ","sentAt":"2026-12-01T16:%02d:%02d.%03dZ",`+
			`"properties":{"orderId":"%s","total":%d.%02d,"currency":"USD","coupon":"WINTER%d","products":[{"sku":"SKU-%d","quantity":%d,"price":%d.99}]},`+
			`"context":{"ip":"10.%d.%d.%d","library":{"name":"analytics.js","version":"4.1.0"},"locale":"en-US","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",`+
			`"page":{"path":"/checkout/%d","url":"https://shop.example.com/checkout/%d"}},"writeKey":"wk_%s","version":2}`,
			events[rng.IntN(len(events))], hex(8), hex(4), hex(4), hex(4), hex(12), rng.IntN(100_000), hex(32),
			rng.IntN(60), rng.IntN(60), rng.IntN(1000), rng.IntN(60), rng.IntN(60), rng.IntN(1000), rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			hex(16), rng.IntN(1000), rng.IntN(100), rng.IntN(20), rng.IntN(10000), 1+rng.IntN(5), rng.IntN(200),
			rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(100000), rng.IntN(100000), hex(24))
	}
	return values
}

// watchMemory samples the Go heap in use every 10ms until the returned
// function is called, which returns the peak heap and the process's peak
// RSS since watchMemory (the kernel's high-water mark, reset at the start).
func watchMemory() (peak func() (heap, rss uint64)) {
	// Writing 5 to clear_refs resets the peak RSS the kernel reports.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var heap atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > heap.Load() {
				heap.Store(ms.HeapInuse)
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		wg.Wait()
		return heap.Load(), peakRSS()
	}
}

// cpuTime returns the CPU time, user and system, the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns VmHWM of /proc/self/status in bytes, or 0 where there is none.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if kb, ok := bytes.CutPrefix(s.Bytes(), []byte("VmHWM:")); ok {
			n, _ := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(kb), []byte(" kB"))), 10, 64)
			return n << 10
		}
	}
	return 0
}
