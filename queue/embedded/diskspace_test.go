package embedded

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard/switchyard/queue"
)

// TestPublishRefusesWhileTheDiskIsFull injects a free-space probe: under
// MinFreeBytes, Publish refuses with queue.ErrFull and stores nothing, Check
// says why, and once space returns both work again without a reopen.
func TestPublishRefusesWhileTheDiskIsFull(t *testing.T) {
	const minFree = 10 << 20
	var free atomic.Uint64
	free.Store(minFree + 1<<20)
	var probes atomic.Int64
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(freeSpaceTTL); mu.Unlock() }
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	cfg := Config{
		Dir: t.TempDir(), Partitions: 1, MinFreeBytes: minFree, Now: clock, Metrics: metrics,
		freeSpace: func(string) (uint64, error) { probes.Add(1); return free.Load(), nil },
	}
	l, err := Open(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := testContext(t)

	mustPublish(t, ctx, l, messages("t", "k", "before", 2)...)
	// Within one reading, what was let through counts: 1 MiB more of
	// appends would eat into the reserve.
	big := queue.Message{Topic: "t", Key: []byte("k"), Value: make([]byte, 1<<20)}
	if err := l.Publish(ctx, big); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish of 1 MiB with 1 MiB less what was appended above the reserve = %v, want queue.ErrFull", err)
	}
	free.Store(minFree - 1)
	advance()
	err = l.Publish(ctx, messages("t", "k", "full", 3)...)
	if !errors.Is(err, queue.ErrFull) || !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("Publish on a full disk = %v, want an error wrapping queue.ErrFull and queue.ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "min_free_bytes") {
		t.Fatalf("the refusal does not name min_free_bytes: %v", err)
	}
	if err := l.Check(ctx); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Check on a full disk = %v, want queue.ErrFull", err)
	}
	if got := testutil.ToFloat64(metrics.diskFull); got != 1 {
		t.Fatalf("switchyard_log_disk_full = %v on a full disk, want 1", got)
	}
	// Within freeSpaceTTL the reading is reused.
	before := probes.Load()
	for range 100 {
		l.Publish(ctx, messages("t", "k", "full", 1)...)
	}
	if n := probes.Load() - before; n != 0 {
		t.Fatalf("100 refused Publish calls within %s probed the disk %d times, want 0", freeSpaceTTL, n)
	}

	// Just above the reserve is not enough to resume: appends near it
	// would flip the log between full and not full.
	free.Store(minFree + 1000)
	advance()
	if err := l.Check(ctx); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Check 1000 bytes above the reserve, after a refusal = %v, want queue.ErrFull", err)
	}
	free.Store(minFree + resumeMargin)
	advance()
	mustPublish(t, ctx, l, messages("t", "k", "after", 2)...)
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after space returned = %v", err)
	}
	if got := testutil.ToFloat64(metrics.diskFull); got != 0 {
		t.Fatalf("switchyard_log_disk_full = %v after space returned, want 0", got)
	}

	var got []string
	r, err := l.Read(ctx, "t", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 4 {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Value))
	}
	if lag, err := r.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("after the 4 messages published, %d more are stored (%v)", lag, err)
	}
	if want := "before-0 before-1 after-0 after-1"; strings.Join(got, " ") != want {
		t.Fatalf("stored %q, want %q: a refused message was stored", got, want)
	}
	if n := logs.FilterMessageSnippet("disk full").Len(); n != 1 {
		t.Fatalf("%d log lines say the disk is full, want 1", n)
	}
	if n := logs.FilterMessageSnippet("disk space freed").Len(); n != 1 {
		t.Fatalf("%d log lines say space was freed, want 1", n)
	}
}

// TestBackgroundErrorsAreLoggedOncePerInterval checks that a storm of
// pebble background errors writes one line per interval and counts all.
func TestBackgroundErrorsAreLoggedOncePerInterval(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	now := time.Unix(1_700_000_000, 0)
	var counted int
	e := &errorLimiter{log: zap.New(core), interval: 10 * time.Second, now: func() time.Time { return now }, count: func() { counted++ }}
	for range 1000 {
		now = now.Add(25 * time.Millisecond) // 40 errors a second for 25s
		e.report(errors.New("write 000012.sst: no space left on device"))
	}
	if counted != 1000 {
		t.Fatalf("counted %d errors, want 1000", counted)
	}
	lines := logs.All()
	if len(lines) != 3 {
		t.Fatalf("1000 errors over 25s wrote %d lines, want 3 (one per 10s)", len(lines))
	}
	if n := lines[1].ContextMap()["not_logged_since_last"]; n != int64(399) {
		t.Fatalf("the second line reports %v errors not logged, want 399", n)
	}
}

// TestOpenRefusesADiskWithoutRoomToFlush checks that Open refuses, with
// queue.ErrFull, a disk with less free than MinFreeBytes or than the
// write-ahead log it would have to flush, instead of retrying that flush
// for ever.
func TestOpenRefusesADiskWithoutRoomToFlush(t *testing.T) {
	dir := t.TempDir()
	var free atomic.Uint64
	free.Store(1 << 30)
	cfg := Config{Dir: dir, Partitions: 1, MinFreeBytes: 1 << 20, freeSpace: func(string) (uint64, error) { return free.Load(), nil }}
	l, err := Open(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	for range 20 {
		mustPublish(t, ctx, l, messages("t", "k", strings.Repeat("v", 10_000), 10)...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	free.Store(1<<20 - 1)
	if _, err := Open(cfg, zap.NewNop()); !errors.Is(err, queue.ErrFull) || !strings.Contains(err.Error(), "min_free_bytes") {
		t.Fatalf("Open with less than MinFreeBytes free = %v, want queue.ErrFull naming min_free_bytes", err)
	}
	// 2 MB of messages sit in the write-ahead log: 1.5 MB free is over
	// MinFreeBytes but not enough to flush them.
	free.Store(3 << 19)
	if _, err := Open(cfg, zap.NewNop()); !errors.Is(err, queue.ErrFull) || !strings.Contains(err.Error(), "write-ahead log") {
		t.Fatalf("Open with less free than the write-ahead log holds = %v, want queue.ErrFull naming the write-ahead log", err)
	}
	free.Store(1 << 30)
	l, err = Open(cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("Open once space returned: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
