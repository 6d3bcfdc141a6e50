package queuetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/queue"
)

// openRange opens a range that the test closes when it ends.
func openRange(t *testing.T, ctx context.Context, l queue.Log, topic string, from, to queue.Position) *queue.Range {
	t.Helper()
	r, err := queue.ReadRange(ctx, l, topic, from, to)
	if err != nil {
		t.Fatalf("reading a range of %s: %v", topic, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// drain fetches a range until io.EOF and checks that it stays at the end.
func drain(t *testing.T, ctx context.Context, r *queue.Range) []queue.Message {
	t.Helper()
	var msgs []queue.Message
	for {
		m, err := r.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("fetching message %d of the range: %v", len(msgs)+1, err)
		}
		msgs = append(msgs, m)
	}
	if m, err := r.Fetch(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Fetch after the end = %q, %v; want io.EOF", m.Value, err)
	}
	return msgs
}

// spreadKeys returns up to k keys that land in different partitions of topic.
func spreadKeys(t *testing.T, ctx context.Context, l queue.Log, topic string, k int) []string {
	t.Helper()
	n, err := l.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("getting partitions: %v", err)
	}
	var keys []string
	used := map[int]bool{}
	for i := 0; len(keys) < min(n, k); i++ {
		key := fmt.Sprintf("user-%d", i)
		if p := queue.PartitionFor([]byte(key), n); !used[p] {
			used[p] = true
			keys = append(keys, key)
		}
	}
	return keys
}

// byPartition returns the values of msgs per partition, each list in the
// order fetched.
func byPartition(msgs []queue.Message) map[int][]string {
	parts := map[int][]string{}
	for _, m := range msgs {
		parts[m.Partition] = append(parts[m.Partition], string(m.Value))
	}
	return parts
}

func wantPartitions(t *testing.T, got, want []queue.Message) {
	t.Helper()
	g, w := byPartition(got), byPartition(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("got per partition %v, want %v", g, w)
	}
}

func wantTotal(t *testing.T, r *queue.Range, want int) {
	t.Helper()
	if r.Total() != int64(want) {
		t.Fatalf("Total = %d, want %d", r.Total(), want)
	}
}

// rounds publishes, in one call, n rounds of one message per key, with the
// values key-prefix-0, key-prefix-1, ...
func rounds(t *testing.T, ctx context.Context, l queue.Log, topic string, keys []string, prefix string, n int) {
	t.Helper()
	var msgs []queue.Message
	for i := range n {
		for _, key := range keys {
			msgs = append(msgs, queue.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s-%s-%d", key, prefix, i)})
		}
	}
	publish(t, ctx, l, msgs...)
}

func testRangeOffsets(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	keys := spreadKeys(t, ctx, l, topic, 3)
	rounds(t, ctx, l, topic, keys, "v", 10)

	all := openRange(t, ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	wantTotal(t, all, 10*len(keys))
	got := drain(t, ctx, all)
	if len(got) != 10*len(keys) {
		t.Fatalf("the whole topic gave %d messages, want %d", len(got), 10*len(keys))
	}

	// Both ends are inclusive and the same offset in every partition.
	var want []queue.Message
	for _, m := range got {
		if m.Offset >= 2 && m.Offset <= 6 {
			want = append(want, m)
		}
	}
	r := openRange(t, ctx, l, topic, queue.Position{Kind: queue.AtOffset, Offset: 2}, queue.Position{Kind: queue.AtOffset, Offset: 6})
	wantTotal(t, r, len(want))
	wantPartitions(t, drain(t, ctx, r), want)

	if _, err := queue.ReadRange(ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.First}); err == nil {
		t.Fatal("a range ending at First was accepted")
	}
}

func testRangeTime(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	keys := spreadKeys(t, ctx, l, topic, 3)
	// The pauses only separate the append times of the three batches.
	rounds(t, ctx, l, topic, keys, "a", 3)
	time.Sleep(50 * time.Millisecond)
	rounds(t, ctx, l, topic, keys, "b", 4)
	time.Sleep(50 * time.Millisecond)
	rounds(t, ctx, l, topic, keys, "c", 3)

	all := drain(t, ctx, openRange(t, ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last}))
	var lastA, firstB, lastB, firstC time.Time
	var want []queue.Message
	for _, m := range all {
		switch {
		case strings.Contains(string(m.Value), "-a-"):
			if m.Time.After(lastA) {
				lastA = m.Time
			}
		case strings.Contains(string(m.Value), "-c-"):
			if firstC.IsZero() || m.Time.Before(firstC) {
				firstC = m.Time
			}
		case strings.Contains(string(m.Value), "-b-"):
			want = append(want, m)
			if firstB.IsZero() || m.Time.Before(firstB) {
				firstB = m.Time
			}
			if m.Time.After(lastB) {
				lastB = m.Time
			}
		}
	}
	if !lastA.Before(firstB) || !lastB.Before(firstC) {
		t.Fatalf("the batches overlap in time: a ends at %v, b spans %v to %v, c begins at %v", lastA, firstB, lastB, firstC)
	}

	// From exactly the first time of b through exactly its last: the ends
	// are inclusive.
	r := openRange(t, ctx, l, topic, queue.Position{Kind: queue.AtTime, Time: firstB}, queue.Position{Kind: queue.AtTime, Time: lastB})
	wantTotal(t, r, len(want))
	wantPartitions(t, drain(t, ctx, r), want)

	// A time between a and b, through the end.
	between := lastA.Add(time.Millisecond)
	var rest []queue.Message
	for _, m := range all {
		if !strings.Contains(string(m.Value), "-a-") {
			rest = append(rest, m)
		}
	}
	wantPartitions(t, drain(t, ctx, openRange(t, ctx, l, topic, queue.Position{Kind: queue.AtTime, Time: between}, queue.Position{Kind: queue.Last})), rest)
}

func testRangeEmptyTopic(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	r := openRange(t, ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	wantTotal(t, r, 0)
	// At once: a range with nothing in it does not wait for the idle check.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if m, err := r.Fetch(short); !errors.Is(err, io.EOF) {
		t.Fatalf("Fetch on an empty topic = %q, %v; want io.EOF", m.Value, err)
	}
}

func testRangeWhilePublishing(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	keys := spreadKeys(t, ctx, l, topic, 3)
	rounds(t, ctx, l, topic, keys, "before", 10)

	r := openRange(t, ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	wantTotal(t, r, 10*len(keys))
	// Published after the range began, before its first fetch, and on while
	// it is read.
	rounds(t, ctx, l, topic, keys, "after", 5)
	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				published <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := l.Publish(ctx, queue.Message{Topic: topic, Key: []byte(keys[i%len(keys)]), Value: fmt.Appendf(nil, "during-%d", i)}); err != nil {
				published <- err
				return
			}
		}
	}()
	got := drain(t, ctx, r)
	close(stop)
	if err := <-published; err != nil {
		t.Fatalf("publishing while reading: %v", err)
	}
	if len(got) != 10*len(keys) {
		t.Fatalf("the range gave %d messages, want the %d published before it began", len(got), 10*len(keys))
	}
	for _, m := range got {
		if !strings.Contains(string(m.Value), "-before-") {
			t.Fatalf("the range gave %q, published after it began", m.Value)
		}
	}
}

func testRangeEmptyPartitions(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	keys := spreadKeys(t, ctx, l, topic, 2)
	// Offsets 0..9 in the first key's partition and 0..2 in the second's;
	// the other partitions hold nothing.
	publish(t, ctx, l, numbered(topic, keys[0], keys[0], 10)...)
	if len(keys) > 1 {
		publish(t, ctx, l, numbered(topic, keys[1], keys[1], 3)...)
	}
	all := drain(t, ctx, openRange(t, ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last}))
	// From the sixth offset of the first key's partition on, which is past
	// the end of the second key's.
	from := all[slices.IndexFunc(all, func(m queue.Message) bool { return string(m.Key) == keys[0] })].Offset + 5
	var want []queue.Message
	for _, m := range all {
		if m.Offset >= from {
			want = append(want, m)
		}
	}
	r := openRange(t, ctx, l, topic, queue.Position{Kind: queue.AtOffset, Offset: from}, queue.Position{Kind: queue.Last})
	wantTotal(t, r, len(want))
	got := drain(t, ctx, r)
	wantPartitions(t, got, want)
	wantValues(t, got, keys[0]+"-5", keys[0]+"-6", keys[0]+"-7", keys[0]+"-8", keys[0]+"-9")
}
