package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard/switchyard/internal/config"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Log {
		return open(t, Config{Dir: t.TempDir()})
	})
}

// open opens a log that the test closes when it ends, unless the test closed
// it already.
func open(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("opening log: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, queue.ErrClosed) {
			t.Errorf("closing log: %v", err)
		}
	})
	return l
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func messages(topic, key, prefix string, n int) []queue.Message {
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = queue.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return msgs
}

func mustPublish(t *testing.T, ctx context.Context, l queue.Log, msgs ...queue.Message) {
	t.Helper()
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}
}

type fetcher interface {
	Fetch(ctx context.Context) (queue.Message, error)
}

func fetchN(t *testing.T, ctx context.Context, f fetcher, n int) []queue.Message {
	t.Helper()
	var msgs []queue.Message
	for len(msgs) < n {
		m, err := f.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching message %d of %d: %v", len(msgs)+1, n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// fetchAll reads a topic from the first message until every partition is
// caught up, relying on Lag, which counts exactly what is retained.
func fetchAll(t *testing.T, ctx context.Context, l queue.Log, topic string) []queue.Message {
	t.Helper()
	r, err := l.Read(ctx, topic, queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	defer r.Close()
	lag, err := r.Lag(ctx)
	if err != nil {
		t.Fatalf("getting lag: %v", err)
	}
	return fetchN(t, ctx, r, int(lag))
}

func values(msgs []queue.Message) string {
	vs := make([]string, len(msgs))
	for i, m := range msgs {
		vs[i] = string(m.Value)
	}
	return strings.Join(vs, ",")
}

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"a missing Dir is named", Config{}, "Dir"},
		{"negative Partitions are named", Config{Dir: "x", Partitions: -1}, "Partitions"},
		{"a negative RetentionAge is named", Config{Dir: "x", RetentionAge: config.Duration(-time.Hour)}, "RetentionAge"},
		{"negative RetentionBytes are named", Config{Dir: "x", RetentionBytes: -1}, "RetentionBytes"},
		{"a negative RetentionHardAge is named", Config{Dir: "x", RetentionHardAge: config.Duration(-time.Hour)}, "RetentionHardAge"},
		{"a RetentionHardAge shorter than RetentionAge is named", Config{Dir: "x", RetentionAge: config.Duration(48 * time.Hour), RetentionHardAge: config.Duration(24 * time.Hour)}, "RetentionHardAge"},
		{"negative RetentionHardBytes are named", Config{Dir: "x", RetentionHardBytes: -1}, "RetentionHardBytes"},
		{"RetentionHardBytes below RetentionBytes are named", Config{Dir: "x", RetentionBytes: 1000, RetentionHardBytes: 999}, "RetentionHardBytes"},
		{"a negative RetentionCheckInterval is named", Config{Dir: "x", RetentionCheckInterval: config.Duration(-time.Second)}, "RetentionCheckInterval"},
		{"a negative MaxBatchMessages is named", Config{Dir: "x", MaxBatchMessages: -1}, "MaxBatchMessages"},
		{"a MemTableBytes under 1 MiB is named", Config{Dir: "x", MemTableBytes: 1<<20 - 1}, "MemTableBytes"},
		{"a BlockCacheBytes under 1 MiB is named", Config{Dir: "x", BlockCacheBytes: 1<<20 - 1}, "BlockCacheBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.cfg, zap.NewNop())
			if err == nil {
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Config{Dir: "x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Partitions != 8 || cfg.RetentionAge != config.Duration(168*time.Hour) || cfg.RetentionBytes != 0 ||
		cfg.RetentionCheckInterval != config.Duration(time.Minute) || cfg.MaxBatchMessages != 4096 || cfg.Now == nil ||
		cfg.RetentionHardAge != config.Duration(720*time.Hour) || cfg.RetentionHardBytes != 0 || cfg.Metrics == nil ||
		cfg.MemTableBytes != 32<<20 || cfg.BlockCacheBytes != 8<<20 {
		t.Fatalf("defaults = %+v", cfg)
	}
	// The default hard age is never shorter than a longer RetentionAge.
	cfg, err = Config{Dir: "x", RetentionAge: config.Duration(1000 * time.Hour)}.withDefaults()
	if err != nil || cfg.RetentionHardAge != config.Duration(1000*time.Hour) {
		t.Fatalf("RetentionHardAge with RetentionAge 1000h = %s, %v; want 1000h", cfg.RetentionHardAge, err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	l := open(t, Config{Dir: dir, Partitions: 4})
	mustPublish(t, ctx, l, messages("events", "user-1", "a", 5)...)
	mustPublish(t, ctx, l, messages("events", "user-2", "b", 5)...)
	s, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: "router", Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	got := fetchN(t, ctx, s, 10)
	var lastA queue.Message
	for _, m := range got {
		if string(m.Key) == "user-1" {
			lastA = m
		}
	}
	if err := s.Commit(ctx, lastA); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}

	// The partition count is kept even though the configuration changed.
	l = open(t, Config{Dir: dir, Partitions: 16})
	if n, err := l.Partitions(ctx, "events"); err != nil || n != 4 {
		t.Fatalf("Partitions after reopen = %d, %v; want 4", n, err)
	}
	all := fetchAll(t, ctx, l, "events")
	if len(all) != 10 {
		t.Fatalf("fetched %d messages after reopen, want 10", len(all))
	}

	// The group resumes after its commit: only user-2's messages remain.
	s, err = l.Subscribe(ctx, queue.SubscribeConfig{Group: "router", Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	if got := values(fetchN(t, ctx, s, 5)); got != "b-0,b-1,b-2,b-3,b-4" {
		t.Fatalf("group resumed with %s", got)
	}

	// Offsets and append times continue where they were.
	mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("user-1"), Value: []byte("a-5")})
	m := fetchN(t, ctx, s, 1)[0]
	if m.Offset != lastA.Offset+1 {
		t.Fatalf("offset after reopen = %d, want %d", m.Offset, lastA.Offset+1)
	}
	if m.Time.Before(lastA.Time) {
		t.Fatalf("append time after reopen %v is before %v", m.Time, lastA.Time)
	}
}

func TestSecondOpenOfLockedDirFails(t *testing.T) {
	dir := t.TempDir()
	open(t, Config{Dir: dir})
	_, err := Open(Config{Dir: dir}, zap.NewNop())
	if err == nil {
		t.Fatal("second Open succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "data dir "+dir+" is in use") {
		t.Fatalf("error %q does not say the dir is in use", err)
	}
}

func TestSecondMemberOfAGroupIsRefused(t *testing.T) {
	ctx := testContext(t)
	l := open(t, Config{Dir: t.TempDir()})
	cfg := queue.SubscribeConfig{Group: "router", Topic: "events"}
	s, err := l.Subscribe(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Subscribe(ctx, cfg); !errors.Is(err, ErrGroupBusy) {
		t.Fatalf("second Subscribe = %v, want ErrGroupBusy", err)
	}
	// Another group, or the same group on another topic, is fine.
	for _, other := range []queue.SubscribeConfig{{Group: "other", Topic: "events"}, {Group: "router", Topic: "dlq"}} {
		o, err := l.Subscribe(ctx, other)
		if err != nil {
			t.Fatalf("Subscribe %+v: %v", other, err)
		}
		o.Close()
	}
	s.Close()
	s, err = l.Subscribe(ctx, cfg)
	if err != nil {
		t.Fatalf("Subscribe after the member left: %v", err)
	}
	s.Close()
}

func TestPartitionsTakeTurns(t *testing.T) {
	ctx := testContext(t)
	l := open(t, Config{Dir: t.TempDir(), Partitions: 2})
	// Find two keys in different partitions.
	keyA, keyB := "a", ""
	for i := 0; keyB == ""; i++ {
		if k := fmt.Sprint("b", i); queue.PartitionFor([]byte(k), 2) != queue.PartitionFor([]byte(keyA), 2) {
			keyB = k
		}
	}
	mustPublish(t, ctx, l, messages("events", keyA, "a", 300)...)
	mustPublish(t, ctx, l, messages("events", keyB, "b", 300)...)
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := fetchN(t, ctx, r, 600)
	for i := 1; i < len(got); i++ {
		if got[i].Partition == got[i-1].Partition {
			t.Fatalf("messages %d and %d both come from partition %d; partitions should alternate", i-1, i, got[i].Partition)
		}
	}
}

func TestReadAtOffsetIsClamped(t *testing.T) {
	ctx := testContext(t)
	l := open(t, Config{Dir: t.TempDir(), Partitions: 1})
	mustPublish(t, ctx, l, messages("events", "k", "v", 5)...)
	tests := []struct {
		name   string
		offset int64
		want   int64
	}{
		{"an offset before the first message starts at the first", -10, 0},
		{"an offset inside the partition starts there", 3, 3},
		{"an offset past the end starts at the end", 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := l.Read(ctx, "events", queue.Position{Kind: queue.AtOffset, Offset: tt.offset})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			lag, err := r.Lag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lag != 5-tt.want {
				t.Fatalf("Lag = %d, want %d", lag, 5-tt.want)
			}
			if tt.want == 5 {
				// At the end (the last case): the next message published is
				// the first one read.
				mustPublish(t, ctx, l, messages("events", "k", "after", 1)...)
			}
			if m := fetchN(t, ctx, r, 1)[0]; m.Offset != tt.want {
				t.Fatalf("the reader starts at offset %d, want %d", m.Offset, tt.want)
			}
		})
	}
}

func TestAppendTimeNeverGoesBack(t *testing.T) {
	ctx := testContext(t)
	clock := newClock()
	l := open(t, Config{Dir: t.TempDir(), Partitions: 1, Now: clock.Now})
	mustPublish(t, ctx, l, messages("events", "k", "a", 1)...)
	clock.Advance(-time.Hour)
	mustPublish(t, ctx, l, messages("events", "k", "b", 1)...)
	got := fetchAll(t, ctx, l, "events")
	if len(got) != 2 || got[1].Time.Before(got[0].Time) {
		t.Fatalf("append times %v then %v; the second must not be earlier", got[0].Time, got[1].Time)
	}
}

func TestCloseEndsWaitingCalls(t *testing.T) {
	ctx := testContext(t)
	l := open(t, Config{Dir: t.TempDir()})
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: "g", Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	started := make(chan struct{}, 2)
	for _, f := range []fetcher{r, s} {
		go func() {
			started <- struct{}{}
			_, err := f.Fetch(ctx)
			errs <- err
		}()
	}
	// Both fetches are under way and, with nothing to read, waiting when
	// Close comes: neither has returned 50 ms after starting.
	<-started
	<-started
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-errs:
		t.Fatalf("a Fetch on an empty topic returned before Close: %v", err)
	default:
	}

	// Publishers racing Close either succeed or get ErrClosed; none hangs.
	var wg sync.WaitGroup
	publishErrs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := l.Publish(ctx, queue.Message{Topic: "other", Key: fmt.Append(nil, i), Value: []byte("v")})
				if err != nil {
					publishErrs <- err
					return
				}
			}
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}
	wg.Wait()
	close(publishErrs)
	for err := range publishErrs {
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Publish racing Close = %v, want queue.ErrClosed", err)
		}
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Fetch waiting at Close = %v, want queue.ErrClosed", err)
		}
	}
	if err := l.Check(ctx); !errors.Is(err, queue.ErrUnavailable) {
		t.Errorf("Check after Close = %v, want queue.ErrUnavailable", err)
	}
}

func TestInvalidTopicNamesAreRefused(t *testing.T) {
	ctx := testContext(t)
	l := open(t, Config{Dir: t.TempDir()})
	for _, name := range []string{"", "a/b", "with space", strings.Repeat("x", 250)} {
		if err := l.Publish(ctx, queue.Message{Topic: name, Value: []byte("v")}); err == nil {
			t.Errorf("Publish to topic %q succeeded, want an error", name)
		}
	}
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestMemTableBytesSetsWhenAppendsAreFlushed(t *testing.T) {
	ctx := testContext(t)
	value := bytes.Repeat([]byte("v"), 4096)
	flushesAfter := func(memtable int64) int64 {
		l := open(t, Config{Dir: t.TempDir(), Partitions: 1, MemTableBytes: memtable})
		for i := range 1024 { // 4 MiB of values
			mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k"), Value: append(fmt.Appendf(nil, "%d-", i), value...)})
		}
		return l.db.Metrics().Flush.Count
	}
	if n := flushesAfter(1 << 20); n == 0 {
		t.Fatal("4 MiB appended into 1 MiB memtables made no flush")
	}
	if n := flushesAfter(0); n != 0 {
		t.Fatalf("4 MiB appended into the default 32 MiB memtable made %d flushes, want none", n)
	}
}

// The memory gauges report the open store's block cache, memtables and
// open tables, the cache bounded by BlockCacheBytes, and read 0 once the
// log is closed.
func TestMemoryGaugesReportTheStore(t *testing.T) {
	ctx := testContext(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	const cache = 4 << 20 // a smaller cache's shards are too small for the blocks
	l, err := Open(Config{Dir: t.TempDir(), Partitions: 1, MemTableBytes: 1 << 20, BlockCacheBytes: cache, Metrics: m}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 4096)
	for i := range 2048 { // 8 MiB: several flushed tables
		mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k"), Value: append(fmt.Appendf(nil, "%d-", i), value...)})
	}
	if err := l.db.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	for range 2048 { // reading the flushed tables fills the cache
		if _, err := r.Fetch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	gauge := func(name string) float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no gauge %s", name)
		return 0
	}
	if got := gauge("switchyard_log_block_cache_bytes"); got <= 0 || got > cache {
		t.Errorf("block cache %v bytes after reading 8 MiB of tables, want more than 0 and at most %d", got, cache)
	}
	if got := gauge("switchyard_log_memtable_bytes"); got < 1<<20 {
		t.Errorf("memtables %v bytes, want at least the 1 MiB memtable", got)
	}
	if got := gauge("switchyard_log_open_tables"); got < 1 {
		t.Errorf("%v open tables after reading flushed tables", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := gauge("switchyard_log_memtable_bytes"); got != 0 {
		t.Errorf("memtables %v bytes after Close, want 0", got)
	}
}
