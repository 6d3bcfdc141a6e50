package embedded

import (
	"errors"
	"io"
	"testing"
	"time"

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

	// A group and a reader positioned at the start, before retention runs.
	sub, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: "g", Topic: "events"})
	if err != nil {
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
	if got := values(fetchN(t, ctx, sub, 1)); got != "new-0" {
		t.Fatalf("group below the low watermark fetched %s", got)
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
