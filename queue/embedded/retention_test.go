package embedded

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/queue"
)

func TestRetentionByAge(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	clock := newClock()
	cfg := Config{Dir: dir, Partitions: 1, RetentionAge: config.Duration(3 * time.Hour), Now: clock.Now}
	l := open(t, cfg)

	mustPublish(t, ctx, l, messages("events", "k", "old", 5)...)
	clock.Advance(2 * time.Hour)
	mustPublish(t, ctx, l, messages("events", "k", "new", 5)...)

	// A group that has committed the old batch, and a reader positioned at
	// the start, before retention runs.
	sub, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: "g", Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Commit(ctx, fetchN(t, ctx, sub, 5)...); err != nil {
		t.Fatal(err)
	}
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}

	// Not yet 3 hours old: nothing goes.
	clock.Advance(59 * time.Minute)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := len(fetchAll(t, ctx, l, "events")); got != 10 {
		t.Fatalf("%d messages after retention at 2h59m, want all 10", got)
	}

	// Past 3 hours for the old batch only.
	clock.Advance(2 * time.Minute)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := values(fetchAll(t, ctx, l, "events")); got != "new-0,new-1,new-2,new-3,new-4" {
		t.Fatalf("after retention: %s", got)
	}
	if lag, err := r.Lag(ctx); err != nil || lag != 5 {
		t.Fatalf("Lag of a reader below the low watermark = %d, %v; want 5", lag, err)
	}
	if got := values(fetchN(t, ctx, r, 5)); got != "new-0,new-1,new-2,new-3,new-4" {
		t.Fatalf("reader below the low watermark fetched %s", got)
	}
	fetched := fetchN(t, ctx, sub, 5)
	if got := values(fetched); got != "new-0,new-1,new-2,new-3,new-4" {
		t.Fatalf("group after retention fetched %s", got)
	}
	if err := sub.Commit(ctx, fetched...); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	r.Close()

	// Everything expires; offsets still go on after a reopen.
	clock.Advance(4 * time.Hour)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, cfg)
	r, err = l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if lag, err := r.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("Lag of an expired partition = %d, %v; want 0", lag, err)
	}
	mustPublish(t, ctx, l, messages("events", "k", "later", 1)...)
	if m := fetchN(t, ctx, r, 1)[0]; m.Offset != 10 {
		t.Fatalf("first offset after everything expired = %d, want 10", m.Offset)
	}
}

func TestRetentionBySize(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	value := make([]byte, 100)
	size := storedSize(len("k"), len(value))
	// Room for 10 messages and a half.
	cfg := Config{Dir: dir, Partitions: 1, RetentionBytes: 10*size + size/2}
	l := open(t, cfg)

	msgs := make([]queue.Message, 25)
	for i := range msgs {
		msgs[i] = queue.Message{Topic: "events", Key: []byte("k"), Value: value}
	}
	mustPublish(t, ctx, l, msgs[:12]...)
	mustPublish(t, ctx, l, msgs[12:]...)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	got := fetchAll(t, ctx, l, "events")
	if len(got) != 10 || got[0].Offset != 15 || got[9].Offset != 24 {
		t.Fatalf("kept %d messages from offset %d, want the newest 10 from offset 15", len(got), got[0].Offset)
	}

	// The size is recovered on reopen: a few more messages push out as many.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, cfg)
	mustPublish(t, ctx, l, msgs[:3]...)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	got = fetchAll(t, ctx, l, "events")
	if len(got) != 10 || got[0].Offset != 18 {
		t.Fatalf("kept %d messages from offset %d after reopen, want 10 from offset 18", len(got), got[0].Offset)
	}
}

func TestRetentionRunsInTheBackground(t *testing.T) {
	ctx := testContext(t)
	clock := newClock()
	l := open(t, Config{Dir: t.TempDir(), Partitions: 1, RetentionAge: config.Duration(time.Hour), RetentionCheckInterval: config.Duration(time.Millisecond), Now: clock.Now})
	mustPublish(t, ctx, l, messages("events", "k", "old", 3)...)
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	clock.Advance(2 * time.Hour)
	mustPublish(t, ctx, l, messages("events", "k", "new", 1)...)

	// Retention wakes the reader, which skips to what is left. Until the
	// loop runs, the reader may still see old messages; it must end at new-0.
	for {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching: %v", err)
		}
		if string(m.Value) == "new-0" {
			break
		}
	}
	// Wait for the background loop by watching the low watermark move.
	t.Log("waiting for the retention loop")
	deadline := time.After(10 * time.Second)
	for {
		l.topicsMu.Lock()
		tp := l.topics["events"]
		l.topicsMu.Unlock()
		tp.mu.Lock()
		low := tp.parts[0].low
		changed := tp.changed
		tp.mu.Unlock()
		if low == 3 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("low watermark is %d, want 3 after the retention loop ran", low)
		}
	}
}

// TestRangeEndsWhenRetentionRemovesItsRest checks that a range whose
// unread messages retention removed ends instead of waiting for them.
func TestRangeEndsWhenRetentionRemovesItsRest(t *testing.T) {
	ctx := testContext(t)
	clock := newClock()
	l := open(t, Config{Dir: t.TempDir(), Partitions: 1, RetentionAge: config.Duration(time.Hour), Now: clock.Now})
	mustPublish(t, ctx, l, messages("events", "k", "old", 5)...)

	r, err := queue.ReadRange(ctx, l, "events", queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	clock.Advance(2 * time.Hour)
	if err := l.enforceRetention(); err != nil {
		t.Fatal(err)
	}
	if m, err := r.Fetch(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Fetch of a range that retention emptied = %q, %v; want io.EOF", m.Value, err)
	}
}

// observedLog is a log whose WARN lines and retention losses a test reads.
type observedLog struct {
	*Log
	logs    *observer.ObservedLogs
	metrics *Metrics
}

func openObserved(t *testing.T, cfg Config) observedLog {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	core, logs := observer.New(zap.WarnLevel)
	l, err := Open(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("opening log: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, queue.ErrClosed) {
			t.Errorf("closing log: %v", err)
		}
	})
	return observedLog{l, logs, m}
}

// lost is what retention counted as lost to group on topic.
func (o observedLog) lost(group, topic string) float64 {
	return testutil.ToFloat64(o.metrics.lost.WithLabelValues(group, topic))
}

// lostInWarnings sums the count of every WARN line about messages lost to
// group.
func (o observedLog) lostInWarnings(group string) int64 {
	var n int64
	for _, e := range o.logs.FilterMessageSnippet("had not committed").All() {
		if e.Level == zap.WarnLevel && e.ContextMap()["group"] == group {
			n += e.ContextMap()["count"].(int64)
		}
	}
	return n
}

func (o observedLog) enforce(t *testing.T) {
	t.Helper()
	if err := o.enforceRetention(); err != nil {
		t.Fatal(err)
	}
}

func subscribe(t *testing.T, ctx context.Context, l queue.Log, group string) queue.Subscription {
	t.Helper()
	s, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: group, Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func offsets(msgs []queue.Message) []int64 {
	o := make([]int64, len(msgs))
	for i, m := range msgs {
		o[i] = m.Offset
	}
	return o
}

// TestRetentionKeepsWhatAGroupHasNotCommitted stands for a destination
// paused a day on HubSpot's daily limit: with the default hard limits,
// retention by age or by size deletes only what its group committed, and
// once the group commits the rest, that goes too.
func TestRetentionKeepsWhatAGroupHasNotCommitted(t *testing.T) {
	value := make([]byte, 100)
	size := storedSize(len("k"), len(value))
	tests := []struct {
		name string
		cfg  Config
		// age is how long the clock moves on after the messages are published.
		age time.Duration
	}{
		{"by age, a day past retention_age", Config{RetentionAge: config.Duration(time.Hour)}, 25 * time.Hour},
		{"by size, ten times over retention_bytes", Config{RetentionBytes: 2 * size}, 25 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			clock := newClock()
			tt.cfg.Dir, tt.cfg.Partitions, tt.cfg.Now = t.TempDir(), 1, clock.Now
			l := openObserved(t, tt.cfg)
			sub := subscribe(t, ctx, l, "crm")
			msgs := make([]queue.Message, 20)
			for i := range msgs {
				msgs[i] = queue.Message{Topic: "events", Key: []byte("k"), Value: value}
			}
			mustPublish(t, ctx, l, msgs...)
			fetched := fetchN(t, ctx, sub, 20)
			if err := sub.Commit(ctx, fetched[:5]...); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.age)
			l.enforce(t)
			if got := fetchAll(t, ctx, l, "events"); len(got) != 15 || got[0].Offset != 5 {
				t.Fatalf("kept offsets %v, want the 15 the group has not committed, from offset 5", offsets(got))
			}

			if err := sub.Commit(ctx, fetched...); err != nil {
				t.Fatal(err)
			}
			l.enforce(t)
			want := 0
			if tt.cfg.RetentionBytes > 0 {
				want = 2
			}
			if got := fetchAll(t, ctx, l, "events"); len(got) != want {
				t.Fatalf("kept offsets %v after the group committed everything, want %d messages", offsets(got), want)
			}
			if n := l.lost("crm", "events"); n != 0 || l.logs.Len() != 0 {
				t.Fatalf("lost %v messages, warned %d times; want nothing lost", n, l.logs.Len())
			}
		})
	}
}

// TestRetentionKeepsMessagesOfAGroupThatNeverCommitted checks that a group
// that subscribed and committed nothing keeps every message, while it is
// subscribed and after the log reopens without it, and that a topic no
// group ever subscribed to is trimmed as before.
func TestRetentionKeepsMessagesOfAGroupThatNeverCommitted(t *testing.T) {
	ctx := testContext(t)
	clock := newClock()
	cfg := Config{Dir: t.TempDir(), Partitions: 2, RetentionAge: config.Duration(time.Hour), Now: clock.Now}
	l := openObserved(t, cfg)
	sub := subscribe(t, ctx, l, "crm")
	mustPublish(t, ctx, l, append(messages("events", "a", "a", 5), messages("events", "b", "b", 5)...)...)
	mustPublish(t, ctx, l, messages("other", "a", "o", 5)...)
	clock.Advance(2 * time.Hour)
	l.enforce(t)
	if got := len(fetchAll(t, ctx, l, "events")); got != 10 {
		t.Fatalf("%d messages kept for a subscribed group that committed nothing, want 10", got)
	}
	if got := len(fetchAll(t, ctx, l, "other")); got != 0 {
		t.Fatalf("%d messages kept on a topic without groups, want 0", got)
	}

	sub.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	l = openObserved(t, cfg)
	l.enforce(t)
	if got := len(fetchAll(t, ctx, l, "events")); got != 10 {
		t.Fatalf("%d messages kept after a reopen for a group that committed nothing, want 10", got)
	}
	sub = subscribe(t, ctx, l, "crm")
	if got := values(fetchN(t, ctx, sub, 10)); !strings.Contains(got, "a-0") || !strings.Contains(got, "b-4") {
		t.Fatalf("the group fetched %s, want every message", got)
	}
	if n := l.lost("crm", "events"); n != 0 || l.logs.Len() != 0 {
		t.Fatalf("lost %v messages, warned %d times; want nothing lost", n, l.logs.Len())
	}
}

// TestRetentionKeepsWhatTheSlowestGroupNeeds checks that with several
// groups the one furthest behind decides what stays.
func TestRetentionKeepsWhatTheSlowestGroupNeeds(t *testing.T) {
	ctx := testContext(t)
	clock := newClock()
	l := openObserved(t, Config{Dir: t.TempDir(), Partitions: 1, RetentionAge: config.Duration(time.Hour), Now: clock.Now})
	fast, slow, slowest := subscribe(t, ctx, l, "fast"), subscribe(t, ctx, l, "slow"), subscribe(t, ctx, l, "slowest")
	mustPublish(t, ctx, l, messages("events", "k", "m", 10)...)
	for sub, n := range map[queue.Subscription]int{fast: 10, slow: 6, slowest: 3} {
		fetched := fetchN(t, ctx, sub, 10)
		if err := sub.Commit(ctx, fetched[:n]...); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)
	l.enforce(t)
	if got := fetchAll(t, ctx, l, "events"); len(got) != 7 || got[0].Offset != 3 {
		t.Fatalf("kept offsets %v, want 3 to 9, which the slowest group has not committed", offsets(got))
	}

	// The slowest catches up past the slow one: now the slow one decides.
	if err := slowest.Commit(ctx, queue.Message{Topic: "events", Partition: 0, Offset: 8}); err != nil {
		t.Fatal(err)
	}
	l.enforce(t)
	if got := fetchAll(t, ctx, l, "events"); len(got) != 4 || got[0].Offset != 6 {
		t.Fatalf("kept offsets %v, want 6 to 9, which the slow group has not committed", offsets(got))
	}
	if l.logs.Len() != 0 {
		t.Fatalf("warned %d times, want nothing lost", l.logs.Len())
	}
}

// TestRetentionPastTheHardLimitsCountsWhatEachGroupLost checks that past
// retention_hard_age or retention_hard_bytes retention deletes what groups
// have not committed, with a WARN and a count per group.
func TestRetentionPastTheHardLimitsCountsWhatEachGroupLost(t *testing.T) {
	value := make([]byte, 100)
	size := storedSize(len("k"), len(value))
	tests := []struct {
		name string
		cfg  Config
		age  time.Duration
	}{
		{"past retention_hard_age", Config{RetentionAge: config.Duration(time.Hour), RetentionHardAge: config.Duration(3 * time.Hour)}, 4 * time.Hour},
		{"past the default retention_hard_age of 30 days", Config{}, 31 * 24 * time.Hour},
		{"past retention_hard_bytes", Config{RetentionBytes: 2 * size, RetentionHardBytes: 4 * size}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			clock := newClock()
			tt.cfg.Dir, tt.cfg.Partitions, tt.cfg.Now = t.TempDir(), 1, clock.Now
			l := openObserved(t, tt.cfg)
			behind, ahead := subscribe(t, ctx, l, "behind"), subscribe(t, ctx, l, "ahead")
			msgs := make([]queue.Message, 10)
			for i := range msgs {
				msgs[i] = queue.Message{Topic: "events", Key: []byte("k"), Value: value}
			}
			mustPublish(t, ctx, l, msgs...)
			if err := behind.Commit(ctx, fetchN(t, ctx, behind, 2)...); err != nil {
				t.Fatal(err)
			}
			if err := ahead.Commit(ctx, fetchN(t, ctx, ahead, 7)...); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.age)
			l.enforce(t)

			kept := fetchAll(t, ctx, l, "events")
			first := int64(10)
			if tt.cfg.RetentionHardBytes > 0 {
				first = 6 // the newest 4 fit in retention_hard_bytes
			}
			if len(kept) != int(10-first) || len(kept) > 0 && kept[0].Offset != first {
				t.Fatalf("kept offsets %v, want from offset %d", offsets(kept), first)
			}
			wantBehind, wantAhead := first-2, max(0, first-7)
			if got := l.lost("behind", "events"); got != float64(wantBehind) {
				t.Errorf("lost to the group behind = %v, want %d", got, wantBehind)
			}
			if got := l.lost("ahead", "events"); got != float64(wantAhead) {
				t.Errorf("lost to the group ahead = %v, want %d", got, wantAhead)
			}
			if got := l.lostInWarnings("behind"); got != wantBehind {
				t.Errorf("WARN lines count %d lost to the group behind, want %d", got, wantBehind)
			}
			if got := l.lostInWarnings("ahead"); got != wantAhead {
				t.Errorf("WARN lines count %d lost to the group ahead, want %d", got, wantAhead)
			}
		})
	}
}
