// Package queuetest is the conformance suite every queue.Log implementation
// passes. A backend's own test calls Run with a function that opens a log:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queue.Log {
//			l, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return l
//		})
//	}
//
// The suite is written so that a slow, shared backend such as Kafka passes it
// too: every test uses its own topics and groups (see Topic), waits with
// generous deadlines instead of sleeping, and asserts only what the queue.Log
// contract promises.
package queuetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/queue"
)

// Timeout bounds each test of the suite. Group joins on Kafka can take a few
// seconds, so it is generous; a healthy backend finishes far sooner.
const Timeout = 30 * time.Second

// Run runs the conformance suite. open is called once per test and returns a
// ready log; Run closes it when the test ends and fails the test if Close
// fails with anything but queue.ErrClosed (one test closes the log itself). Topics are named by Topic, so open may return logs that share a
// backend. The tests run in parallel.
func Run(t *testing.T, open func(t *testing.T) queue.Log) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, l queue.Log)
	}{
		{"messages with one key come back in publish order from one partition", testKeyOrder},
		{"publish returns after every message is readable", testPublishReadable},
		{"fetch waits for a message published later", testFetchWaits},
		{"fetch on a caught-up reader returns when its context ends", testFetchContext},
		{"a group resumes after its committed offset", testGroupResumes},
		{"committing an offset commits every earlier one in the partition", testCommitPrefix},
		{"a new group starts at the configured start position", testGroupStart},
		{"reading from the first position returns every message", testReadFirst},
		{"reading from an offset starts at that offset", testReadOffset},
		{"reading from a time starts at the first message at or after it", testReadTime},
		{"reading from the end returns only later messages", testReadLast},
		{"two topics do not see each other's messages", testTopicIsolation},
		{"many concurrent publishers lose nothing and keep per-key order", testConcurrentPublishers},
		{"values are kept byte for byte including large 32 KB values", testValuesExact},
		{"headers come back in order, byte for byte, by reader and by subscription", testHeaders},
		{"a range by offset holds both ends and stops at its end", testRangeOffsets},
		{"a range by time holds the messages appended between its ends", testRangeTime},
		{"a range of an empty topic ends at once", testRangeEmptyTopic},
		{"a range ends while publishing continues and skips later messages", testRangeWhilePublishing},
		{"a range ends although some partitions hold nothing in it", testRangeEmptyPartitions},
		{"Lag counts what is not yet fetched", testLag},
		{"a group's lag counts what it has not committed", testGroupLag},
		{"a lone member of a group owns every partition", testOwned},
		{"check reports a writable log", testCheck},
		{"a closed log refuses publish and fails check", testClosedLog},
		{"a closed reader and a closed subscription refuse fetch", testClosedReaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := open(t)
			t.Cleanup(func() {
				if err := l.Close(); err != nil && !errors.Is(err, queue.ErrClosed) {
					t.Errorf("closing log: %v", err)
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), Timeout)
			defer cancel()
			tt.fn(t, ctx, l)
		})
	}
}

// Topic returns a topic name no other test uses, valid on Kafka too.
func Topic(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("making topic name: %v", err)
	}
	return "queuetest-" + hex.EncodeToString(b[:])
}

// fetcher is what Subscription and Reader have in common.
type fetcher interface {
	Fetch(ctx context.Context) (queue.Message, error)
}

func fetchN(t *testing.T, ctx context.Context, f fetcher, n int) []queue.Message {
	t.Helper()
	msgs := make([]queue.Message, 0, n)
	for len(msgs) < n {
		m, err := f.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetching message %d of %d: %v", len(msgs)+1, n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func publish(t *testing.T, ctx context.Context, l queue.Log, msgs ...queue.Message) {
	t.Helper()
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publishing %d messages: %v", len(msgs), err)
	}
}

// numbered returns n messages with one key and values prefix-0, prefix-1, ...
func numbered(topic, key, prefix string, n int) []queue.Message {
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = queue.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return msgs
}

func read(t *testing.T, ctx context.Context, l queue.Log, topic string, from queue.Position) queue.Reader {
	t.Helper()
	r, err := l.Read(ctx, topic, from)
	if err != nil {
		t.Fatalf("opening reader on %s: %v", topic, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func subscribe(t *testing.T, ctx context.Context, l queue.Log, cfg queue.SubscribeConfig) queue.Subscription {
	t.Helper()
	s, err := l.Subscribe(ctx, cfg)
	if err != nil {
		t.Fatalf("subscribing group %s to %s: %v", cfg.Group, cfg.Topic, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func values(msgs []queue.Message) []string {
	vs := make([]string, len(msgs))
	for i, m := range msgs {
		vs[i] = string(m.Value)
	}
	return vs
}

func wantValues(t *testing.T, got []queue.Message, want ...string) {
	t.Helper()
	g := values(got)
	if strings.Join(g, ",") != strings.Join(want, ",") {
		t.Fatalf("got values %q, want %q", g, want)
	}
}

// publishUntilFetched publishes a message made by next every 100 ms until f
// returns one, and returns it. It proves a reader positioned at the end sees
// later messages without assuming when a backend resolves "the end".
func publishUntilFetched(t *testing.T, ctx context.Context, l queue.Log, f fetcher, next func(i int) queue.Message) queue.Message {
	t.Helper()
	type result struct {
		m   queue.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := f.Fetch(ctx)
		done <- result{m, err}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		if err := l.Publish(ctx, next(i)); err != nil {
			t.Fatalf("publishing later message %d: %v", i, err)
		}
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("fetching: %v", r.err)
			}
			return r.m
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no later message fetched: %v", ctx.Err())
		}
	}
}

func testKeyOrder(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	n, err := l.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("getting partitions: %v", err)
	}
	if n < 1 {
		t.Fatalf("Partitions = %d, want at least 1", n)
	}
	if again, err := l.Partitions(ctx, topic); err != nil || again != n {
		t.Fatalf("Partitions again = %d, %v; want %d", again, err, n)
	}
	msgs := numbered(topic, "user-1", "v", 30)
	// One call per message, then calls of several, to cover both paths.
	for _, m := range msgs[:10] {
		publish(t, ctx, l, m)
	}
	publish(t, ctx, l, msgs[10:20]...)
	publish(t, ctx, l, msgs[20:]...)

	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), len(msgs))
	wantPart := queue.PartitionFor([]byte("user-1"), n)
	for i, m := range got {
		if m.Topic != topic {
			t.Errorf("message %d: Topic = %q, want %q", i, m.Topic, topic)
		}
		if string(m.Key) != "user-1" {
			t.Errorf("message %d: Key = %q, want user-1", i, m.Key)
		}
		if m.Partition != wantPart {
			t.Errorf("message %d: Partition = %d, want %d", i, m.Partition, wantPart)
		}
		if i > 0 {
			if m.Offset <= got[i-1].Offset {
				t.Errorf("message %d: Offset %d not after %d", i, m.Offset, got[i-1].Offset)
			}
			if m.Time.Before(got[i-1].Time) {
				t.Errorf("message %d: Time %v before previous %v", i, m.Time, got[i-1].Time)
			}
		}
		if m.Time.IsZero() {
			t.Errorf("message %d: Time is zero", i)
		}
	}
	wantValues(t, got, values(msgs)...)
}

func testPublishReadable(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	var msgs []queue.Message
	for i := range 40 {
		msgs = append(msgs, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "user-%d", i%7), Value: fmt.Appendf(nil, "v-%d", i)})
	}
	publish(t, ctx, l, msgs...)

	// The reader opens only after Publish returned, so everything must be there.
	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), len(msgs))
	seen := map[string]bool{}
	for _, m := range got {
		if seen[string(m.Value)] {
			t.Errorf("value %q fetched twice", m.Value)
		}
		seen[string(m.Value)] = true
	}
	for _, m := range msgs {
		if !seen[string(m.Value)] {
			t.Errorf("value %q was not fetched", m.Value)
		}
	}
}

func testFetchWaits(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	r := read(t, ctx, l, topic, queue.Position{Kind: queue.First})
	m := publishUntilFetched(t, ctx, l, r, func(i int) queue.Message {
		return queue.Message{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "later-%d", i)}
	})
	if string(m.Value) != "later-0" {
		t.Fatalf("first fetched value = %q, want later-0", m.Value)
	}
}

func testFetchContext(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "k", "v", 2)...)
	r := read(t, ctx, l, topic, queue.Position{Kind: queue.First})
	fetchN(t, ctx, r, 2)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	m, err := r.Fetch(short)
	if err == nil {
		t.Fatalf("Fetch on a caught-up reader returned %q, want an error", m.Value)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch error = %v, want context.DeadlineExceeded", err)
	}

	// The reader stays usable after a fetch timed out.
	publish(t, ctx, l, queue.Message{Topic: topic, Key: []byte("k"), Value: []byte("after")})
	wantValues(t, fetchN(t, ctx, r, 1), "after")
}

func testGroupResumes(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	group := topic + "-group"
	publish(t, ctx, l, numbered(topic, "user-1", "v", 10)...)

	s := subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	got := fetchN(t, ctx, s, 4)
	wantValues(t, got, "v-0", "v-1", "v-2", "v-3")
	if err := s.Commit(ctx, got...); err != nil {
		t.Fatalf("committing: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("closing subscription: %v", err)
	}

	s = subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	wantValues(t, fetchN(t, ctx, s, 6), "v-4", "v-5", "v-6", "v-7", "v-8", "v-9")
}

func testCommitPrefix(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	group := topic + "-group"
	publish(t, ctx, l, numbered(topic, "user-1", "v", 10)...)

	s := subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	got := fetchN(t, ctx, s, 10)
	// Only v-6 is committed: v-0 to v-5 are committed with it.
	if err := s.Commit(ctx, got[6]); err != nil {
		t.Fatalf("committing: %v", err)
	}
	// Committing an earlier offset afterwards does not move the group back.
	if err := s.Commit(ctx, got[2]); err != nil {
		t.Fatalf("committing an earlier offset: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("closing subscription: %v", err)
	}

	s = subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	wantValues(t, fetchN(t, ctx, s, 3), "v-7", "v-8", "v-9")
}

func testGroupStart(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "user-1", "early", 5)...)

	first := subscribe(t, ctx, l, queue.SubscribeConfig{Group: topic + "-first", Topic: topic, Start: queue.Position{Kind: queue.First}})
	wantValues(t, fetchN(t, ctx, first, 5), "early-0", "early-1", "early-2", "early-3", "early-4")

	last := subscribe(t, ctx, l, queue.SubscribeConfig{Group: topic + "-last", Topic: topic, Start: queue.Position{Kind: queue.Last}})
	m := publishUntilFetched(t, ctx, l, last, func(i int) queue.Message {
		return queue.Message{Topic: topic, Key: []byte("user-1"), Value: fmt.Appendf(nil, "later-%d", i)}
	})
	if !strings.HasPrefix(string(m.Value), "later-") {
		t.Fatalf("group starting at Last fetched %q first, want a later message", m.Value)
	}
}

func testReadFirst(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	a := numbered(topic, "user-a", "a", 5)
	b := numbered(topic, "user-b", "b", 5)
	publish(t, ctx, l, append(a, b...)...)

	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), 10)
	var gotA, gotB []queue.Message
	for _, m := range got {
		switch string(m.Key) {
		case "user-a":
			gotA = append(gotA, m)
		case "user-b":
			gotB = append(gotB, m)
		default:
			t.Fatalf("unexpected key %q", m.Key)
		}
	}
	wantValues(t, gotA, values(a)...)
	wantValues(t, gotB, values(b)...)
}

func testReadOffset(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "user-1", "v", 10)...)
	all := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), 10)

	r := read(t, ctx, l, topic, queue.Position{Kind: queue.AtOffset, Offset: all[4].Offset})
	got := fetchN(t, ctx, r, 6)
	wantValues(t, got, "v-4", "v-5", "v-6", "v-7", "v-8", "v-9")
	if got[0].Offset != all[4].Offset {
		t.Fatalf("first Offset = %d, want %d", got[0].Offset, all[4].Offset)
	}
}

func testReadTime(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "user-1", "a", 5)...)
	a := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), 5)

	// From the time of a stored message: that message, or one appended in the
	// same instant before it, comes first.
	at := a[2].Time
	m := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.AtTime, Time: at}), 1)[0]
	if m.Time.Before(at) {
		t.Errorf("reading from %v returned a message of %v", at, m.Time)
	}
	if m.Offset > a[2].Offset {
		t.Errorf("reading from the time of offset %d started at offset %d", a[2].Offset, m.Offset)
	}

	// A time between two batches starts at the second batch. The pause only
	// separates the batches' append times.
	between := a[4].Time.Add(time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	publish(t, ctx, l, numbered(topic, "user-1", "b", 5)...)
	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.AtTime, Time: between}), 5)
	wantValues(t, got, "b-0", "b-1", "b-2", "b-3", "b-4")
}

func testReadLast(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "user-1", "early", 5)...)

	r := read(t, ctx, l, topic, queue.Position{Kind: queue.Last})
	m := publishUntilFetched(t, ctx, l, r, func(i int) queue.Message {
		return queue.Message{Topic: topic, Key: []byte("user-1"), Value: fmt.Appendf(nil, "later-%d", i)}
	})
	if !strings.HasPrefix(string(m.Value), "later-") {
		t.Fatalf("reader at Last fetched %q first, want a later message", m.Value)
	}
}

func testTopicIsolation(t *testing.T, ctx context.Context, l queue.Log) {
	topicA, topicB := Topic(t), Topic(t)
	publish(t, ctx, l, numbered(topicA, "user-1", "a", 5)...)
	publish(t, ctx, l, numbered(topicB, "user-1", "b", 5)...)
	publish(t, ctx, l, queue.Message{Topic: topicA, Key: []byte("user-1"), Value: []byte("end")})
	publish(t, ctx, l, queue.Message{Topic: topicB, Key: []byte("user-1"), Value: []byte("end")})

	// One key means one partition, so reaching "end" means everything before
	// it was seen.
	for _, tc := range []struct{ topic, prefix string }{{topicA, "a-"}, {topicB, "b-"}} {
		r := read(t, ctx, l, tc.topic, queue.Position{Kind: queue.First})
		for count := 0; ; count++ {
			m, err := r.Fetch(ctx)
			if err != nil {
				t.Fatalf("fetching from %s: %v", tc.topic, err)
			}
			if m.Topic != tc.topic {
				t.Fatalf("reader of %s got a message of %s", tc.topic, m.Topic)
			}
			if string(m.Value) == "end" {
				if count != 5 {
					t.Fatalf("%s: %d messages before end, want 5", tc.topic, count)
				}
				break
			}
			if !strings.HasPrefix(string(m.Value), tc.prefix) {
				t.Fatalf("%s: got value %q of the other topic", tc.topic, m.Value)
			}
		}
	}
}

func testConcurrentPublishers(t *testing.T, ctx context.Context, l queue.Log) {
	const (
		publishers = 16
		perKey     = 60
	)
	topic := Topic(t)
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("user-%d", p)
			msgs := numbered(topic, key, key, perKey)
			// Alternate single messages and batches of three.
			for i := 0; i < perKey; {
				n := 1 + 2*(i%2)
				if i+n > perKey {
					n = perKey - i
				}
				if err := l.Publish(ctx, msgs[i:i+n]...); err != nil {
					errs <- fmt.Errorf("publisher %d: %w", p, err)
					return
				}
				i += n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), publishers*perKey)
	next := map[string]int{}
	for _, m := range got {
		key := string(m.Key)
		want := fmt.Sprintf("%s-%d", key, next[key])
		if string(m.Value) != want {
			t.Fatalf("key %s: got %q, want %q", key, m.Value, want)
		}
		next[key]++
	}
	for p := range publishers {
		key := fmt.Sprintf("user-%d", p)
		if next[key] != perKey {
			t.Errorf("key %s: fetched %d messages, want %d", key, next[key], perKey)
		}
	}
}

func testValuesExact(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	large := make([]byte, 32<<10)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	cases := [][]byte{
		[]byte(`{"type":"track","event":"Signed Up","userId":"u1"}`),
		nil,
		allBytes,
		[]byte("ünïcødé ✓ 日本語"),
		large,
		bytes.Repeat([]byte{0}, 1000),
	}
	msgs := make([]queue.Message, len(cases))
	for i, v := range cases {
		msgs[i] = queue.Message{Topic: topic, Key: append([]byte("key\x00"), allBytes[i:i+3]...), Value: v}
	}
	publish(t, ctx, l, msgs...)

	// Every key differs, so find each message by its key.
	got := fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), len(msgs))
	for _, want := range msgs {
		found := false
		for _, m := range got {
			if !bytes.Equal(m.Key, want.Key) {
				continue
			}
			found = true
			if !bytes.Equal(m.Value, want.Value) {
				t.Errorf("key %q: value of %d bytes differs from the %d bytes published", want.Key, len(m.Value), len(want.Value))
			}
		}
		if !found {
			t.Errorf("key %q not fetched", want.Key)
		}
	}
}

func testHeaders(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	withHeaders := []queue.Header{{Key: "switchyard-event", Value: []byte{1, 0, 0xff, 0}}, {Key: "b", Value: nil}, {Key: "b", Value: []byte("second")}}
	msgs := []queue.Message{
		{Topic: topic, Key: []byte("k"), Value: []byte("with"), Headers: withHeaders},
		{Topic: topic, Key: []byte("k"), Value: []byte("without")},
	}
	publish(t, ctx, l, msgs...)
	check := func(how string, got []queue.Message) {
		t.Helper()
		for i, m := range got {
			want := msgs[i].Headers
			if len(m.Headers) != len(want) {
				t.Fatalf("%s: message %q has headers %v; want %v", how, m.Value, m.Headers, want)
			}
			for j := range want {
				if m.Headers[j].Key != want[j].Key || !bytes.Equal(m.Headers[j].Value, want[j].Value) {
					t.Fatalf("%s: message %q header %d is %q=%q; want %q=%q", how, m.Value, j, m.Headers[j].Key, m.Headers[j].Value, want[j].Key, want[j].Value)
				}
			}
		}
	}
	check("reading", fetchN(t, ctx, read(t, ctx, l, topic, queue.Position{Kind: queue.First}), 2))
	check("subscribing", fetchN(t, ctx, subscribe(t, ctx, l, queue.SubscribeConfig{Topic: topic, Group: topic + "-g", Start: queue.Position{Kind: queue.First}}), 2))
}

func testLag(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	var msgs []queue.Message
	for i := range 10 {
		msgs = append(msgs, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "user-%d", i%3), Value: fmt.Appendf(nil, "v-%d", i)})
	}
	publish(t, ctx, l, msgs...)

	r := read(t, ctx, l, topic, queue.Position{Kind: queue.First})
	lagIs := func(want int64) {
		t.Helper()
		got, err := r.Lag(ctx)
		if err != nil {
			t.Fatalf("getting lag: %v", err)
		}
		if got != want {
			t.Fatalf("Lag = %d, want %d", got, want)
		}
	}
	fetchN(t, ctx, r, 3)
	lagIs(7)
	fetchN(t, ctx, r, 7)
	lagIs(0)
	publish(t, ctx, l, msgs[:4]...)
	lagIs(4)
}

func testGroupLag(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	group := topic + "-group"
	n, err := l.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("getting partitions: %v", err)
	}
	// Keys spread over up to three partitions.
	var keys []string
	used := map[int]bool{}
	for i := 0; len(used) < min(n, 3); i++ {
		key := fmt.Sprintf("user-%d", i)
		if p := queue.PartitionFor([]byte(key), n); !used[p] {
			used[p] = true
			keys = append(keys, key)
		}
	}
	var msgs []queue.Message
	for i := range 7 * len(keys) {
		key := keys[i%len(keys)]
		msgs = append(msgs, queue.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s-%d", key, i/len(keys))})
	}
	publish(t, ctx, l, msgs...)

	s := subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	lagIs := func(s queue.Subscription, want int, when string) {
		t.Helper()
		got, err := s.Lag(ctx)
		if err != nil {
			t.Fatalf("getting lag %s: %v", when, err)
		}
		if got != int64(want) {
			t.Fatalf("Lag %s = %d, want %d", when, got, want)
		}
	}
	want := len(msgs)
	lagIs(s, want, "before fetching")

	// Fetching commits nothing.
	got := fetchN(t, ctx, s, len(msgs))
	lagIs(s, want, "after fetching everything")

	byPart := map[int][]queue.Message{}
	var parts []int
	for _, m := range got {
		if byPart[m.Partition] == nil {
			parts = append(parts, m.Partition)
		}
		byPart[m.Partition] = append(byPart[m.Partition], m)
	}
	if len(parts) != len(keys) {
		t.Fatalf("messages came from %d partitions, want %d", len(parts), len(keys))
	}

	// Committing the third message of a partition commits the two before it.
	first := byPart[parts[0]]
	if err := s.Commit(ctx, first[2]); err != nil {
		t.Fatalf("committing a message of partition %d: %v", parts[0], err)
	}
	want -= 3
	lagIs(s, want, "after committing three messages of one partition")

	// Committing a whole other partition.
	if len(parts) > 1 {
		if err := s.Commit(ctx, byPart[parts[1]]...); err != nil {
			t.Fatalf("committing partition %d: %v", parts[1], err)
		}
		want -= len(byPart[parts[1]])
		lagIs(s, want, "after committing a whole partition")
	}

	if err := s.Commit(ctx, got...); err != nil {
		t.Fatalf("committing everything: %v", err)
	}
	lagIs(s, 0, "after committing everything")

	// Messages published later count before anyone fetches them, and the lag
	// belongs to the group: a new subscription of it sees the same.
	publish(t, ctx, l, numbered(topic, keys[0], "later", 4)...)
	lagIs(s, 4, "after publishing more")
	if err := s.Close(); err != nil {
		t.Fatalf("closing subscription: %v", err)
	}
	if _, err := s.Lag(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Lag after Close = %v, want queue.ErrClosed", err)
	}
	again := subscribe(t, ctx, l, queue.SubscribeConfig{Group: group, Topic: topic})
	lagIs(again, 4, "of a new subscription of the group")

	// Another group has committed nothing.
	other := subscribe(t, ctx, l, queue.SubscribeConfig{Group: topic + "-other", Topic: topic})
	lagIs(other, len(msgs)+4, "of a group that never committed")
}

func testCheck(t *testing.T, ctx context.Context, l queue.Log) {
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check on an open log = %v, want nil", err)
	}
	topic := Topic(t)
	publish(t, ctx, l, queue.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")})
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after a publish = %v, want nil", err)
	}
}

func testClosedLog(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, queue.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")})
	if err := l.Close(); err != nil {
		t.Fatalf("closing log: %v", err)
	}
	err := l.Publish(ctx, queue.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")})
	if !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Publish after Close = %v, want queue.ErrClosed", err)
	}
	if _, err := l.Subscribe(ctx, queue.SubscribeConfig{Group: topic + "-group", Topic: topic}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want queue.ErrClosed", err)
	}
	if err := l.Check(ctx); err == nil {
		t.Errorf("Check after Close = nil, want an error")
	}
}

func testClosedReaders(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	publish(t, ctx, l, numbered(topic, "k", "v", 3)...)

	r := read(t, ctx, l, topic, queue.Position{Kind: queue.First})
	fetchN(t, ctx, r, 1)
	if err := r.Close(); err != nil {
		t.Fatalf("closing reader: %v", err)
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Reader.Fetch after Close = %v, want queue.ErrClosed", err)
	}

	s := subscribe(t, ctx, l, queue.SubscribeConfig{Group: topic + "-group", Topic: topic})
	fetchN(t, ctx, s, 1)
	if err := s.Close(); err != nil {
		t.Fatalf("closing subscription: %v", err)
	}
	if _, err := s.Fetch(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Subscription.Fetch after Close = %v, want queue.ErrClosed", err)
	}
}

func testOwned(t *testing.T, ctx context.Context, l queue.Log) {
	topic := Topic(t)
	n, err := l.Partitions(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, ctx, l, queue.SubscribeConfig{Group: "owned-" + topic, Topic: topic})
	// Fetching a message means the member has joined its group.
	publishUntilFetched(t, ctx, l, sub, func(i int) queue.Message {
		return queue.Message{Topic: topic, Key: []byte("k"), Value: []byte(fmt.Sprint(i))}
	})
	owned, total, err := sub.Owned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if total != n || len(owned) != n {
		t.Fatalf("owned %v of %d, want all %d partitions", owned, total, n)
	}
	for i, p := range owned {
		if p != i {
			t.Fatalf("owned %v, want 0..%d", owned, n-1)
		}
	}
	sub.Close()
	if _, _, err := sub.Owned(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Owned after Close: %v, want ErrClosed", err)
	}
}

// ReadAll returns every retained message of a topic, in offset order per
// partition, up to the end the topic has when it is called. For tests that
// check what landed in the log.
func ReadAll(t testing.TB, l queue.Log, topic string) []queue.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	r, err := queue.ReadRange(ctx, l, topic, queue.Position{Kind: queue.First}, queue.Position{Kind: queue.Last})
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	defer r.Close()
	var out []queue.Message
	for {
		m, err := r.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		out = append(out, m)
	}
}
