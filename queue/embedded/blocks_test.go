package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/switchyard/switchyard/queue"
)

// modelMessage is what the model of a partition holds of a message.
type modelMessage struct {
	key, value []byte
	headers    []queue.Header
	time       int64
}

// TestLogModel drives the log with random appends (from one message to
// several blocks' worth per call, with values from empty to larger than a
// block, and from none to two headers), reads from random offsets and times, retention by size and
// reopens, and checks every read against a model of each partition:
// offsets, keys, headers, values and append times, the low and high watermarks, and
// that retention keeps exactly the newest messages that fit its limit.
func TestLogModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const partitions = 3
	dir := t.TempDir()
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	cfg := Config{Dir: dir, Partitions: partitions, RetentionBytes: int64(20_000 + rng.IntN(200_000)),
		Now: func() time.Time { return time.Unix(0, clock) }}
	l := open(t, cfg)
	// Longer than testContext's: under the race detector on a loaded
	// machine, the reads of every step take most of a minute.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	model := make([][]modelMessage, partitions)
	low := make([]int64, partitions)
	bytesFrom := func(p int, from int64) int64 {
		var n int64
		for _, m := range model[p][from:] {
			n += storedSize(len(m.key), headersLen(m.headers)+len(m.value))
		}
		return n
	}

	check := func(step int, what string) {
		t.Helper()
		for p := range partitions {
			offsets, err := l.Offsets(ctx, "events", queue.Position{Kind: queue.First})
			if err != nil {
				t.Fatal(err)
			}
			if offsets[p] != low[p] {
				t.Fatalf("step %d (%s): partition %d starts at %d; want %d", step, what, p, offsets[p], low[p])
			}
			high, err := l.Offsets(ctx, "events", queue.Position{Kind: queue.Last})
			if err != nil {
				t.Fatal(err)
			}
			if high[p] != int64(len(model[p])) {
				t.Fatalf("step %d (%s): partition %d ends at %d; want %d", step, what, p, high[p], len(model[p]))
			}
		}
		// From a random offset, and from a random message's time.
		from := int64(rng.IntN(1 + len(model[rng.IntN(partitions)])))
		positions := []queue.Position{{Kind: queue.AtOffset, Offset: from}}
		if p := rng.IntN(partitions); int64(len(model[p])) > low[p] {
			k := low[p] + rng.Int64N(int64(len(model[p]))-low[p])
			positions = append(positions, queue.Position{Kind: queue.AtTime, Time: time.Unix(0, model[p][k].time)})
		}
		for _, pos := range positions {
			r, err := l.Read(ctx, "events", pos)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			starts := make([]int64, partitions)
			for p := range partitions {
				starts[p] = low[p]
				switch pos.Kind {
				case queue.AtOffset:
					starts[p] = min(max(pos.Offset, low[p]), int64(len(model[p])))
				case queue.AtTime:
					for starts[p] < int64(len(model[p])) && model[p][starts[p]].time < pos.Time.UnixNano() {
						starts[p]++
					}
				}
				want += len(model[p]) - int(starts[p])
			}
			next := append([]int64(nil), starts...)
			for _, m := range fetchN(t, ctx, r, want) {
				p := m.Partition
				if m.Offset != next[p] {
					t.Fatalf("step %d (%s), reading from %+v: partition %d gave offset %d; want %d", step, what, pos, p, m.Offset, next[p])
				}
				w := model[p][m.Offset]
				if !bytes.Equal(m.Key, w.key) || !bytes.Equal(m.Value, w.value) || m.Time.UnixNano() != w.time || !sameHeaders(m.Headers, w.headers) {
					t.Fatalf("step %d (%s): partition %d offset %d is %q=%.40q %v at %d; want %q=%.40q %v at %d",
						step, what, p, m.Offset, m.Key, m.Value, m.Headers, m.Time.UnixNano(), w.key, w.value, w.headers, w.time)
				}
				next[p]++
			}
			if lag, err := r.Lag(ctx); err != nil || lag != 0 {
				t.Fatalf("step %d (%s): lag %d (%v) after reading everything", step, what, lag, err)
			}
			r.Close()
		}
	}

	for step := range 60 {
		switch op := rng.IntN(10); {
		case op < 6:
			n := 1 + rng.IntN(400)
			if rng.IntN(4) == 0 {
				n = 1
			}
			msgs := make([]queue.Message, n)
			for i := range msgs {
				key := fmt.Appendf(nil, "user-%d", rng.IntN(20))
				size := rng.IntN(1200)
				if rng.IntN(50) == 0 {
					size = maxBlockBytes + rng.IntN(1000) // a message larger than a block
				}
				value := make([]byte, size)
				for j := range value {
					value[j] = byte('a' + rng.IntN(26))
				}
				var headers []queue.Header
				for h := range rng.IntN(3) {
					headers = append(headers, queue.Header{Key: fmt.Sprintf("h%d", h), Value: value[:rng.IntN(len(value)+1)]})
				}
				msgs[i] = queue.Message{Topic: "events", Key: key, Value: value, Headers: headers}
			}
			clock += rng.Int64N(int64(time.Second))
			mustPublish(t, ctx, l, msgs...)
			for _, m := range msgs {
				p := queue.PartitionFor(m.Key, partitions)
				model[p] = append(model[p], modelMessage{key: m.Key, value: m.Value, headers: m.Headers, time: clock})
			}
			check(step, fmt.Sprintf("after appending %d", n))
		case op < 8:
			if err := l.enforceRetention(); err != nil {
				t.Fatal(err)
			}
			for p := range partitions {
				// The newest messages that fit the limit stay.
				want := low[p]
				for want < int64(len(model[p])) && bytesFrom(p, want) > cfg.RetentionBytes {
					want++
				}
				low[p] = want
			}
			check(step, "after retention")
		default:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = open(t, cfg)
			check(step, "after reopening")
		}
	}
}

// sameHeaders reports whether a and b hold the same headers, in order; an
// empty value equals a missing one.
func sameHeaders(a, b []queue.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// TestMessagesStoredOnePerKeyMoveIntoBlocks writes a log as logs stored it
// before blocks, one message per key, with a low watermark, and checks that
// Open moves them into blocks with their offsets, keys, values and append
// times, and that appends go on after them.
func TestMessagesStoredOnePerKeyMoveIntoBlocks(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(topicKey("events"), binary.BigEndian.AppendUint32(nil, 2), nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var want []queue.Message
	for p := range 2 {
		// Partition 1 lost its first two messages to retention.
		first := int64(0)
		if p == 1 {
			first = 2
			if err := db.Set(lowKey("events", p), binary.BigEndian.AppendUint64(nil, 2), nil); err != nil {
				t.Fatal(err)
			}
		}
		var stored int64
		for offset := first; offset < 5; offset++ {
			key, value := fmt.Appendf(nil, "k-%d", p), fmt.Appendf(nil, `{"p":%d,"o":%d}`, p, offset)
			stored += storedSize(len(key), len(value))
			v := binary.BigEndian.AppendUint64(nil, uint64(at.Add(time.Duration(offset)*time.Second).UnixNano()))
			v = binary.BigEndian.AppendUint64(v, uint64(stored))
			v = binary.AppendUvarint(v, uint64(len(key)))
			v = append(append(v, key...), value...)
			k := binary.BigEndian.AppendUint64(partitionPrefix(prefixSingleMessage, "events", p), uint64(offset))
			if err := db.Set(k, v, nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, queue.Message{Partition: p, Offset: offset, Key: key, Value: value, Time: at.Add(time.Duration(offset) * time.Second)})
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l := open(t, Config{Dir: dir, Partitions: 2})
	ctx := testContext(t)
	got := fetchAll(t, ctx, l, "events")
	if len(got) != len(want) {
		t.Fatalf("read %d messages after the move; want %d", len(got), len(want))
	}
	seen := map[[2]int64]queue.Message{}
	for _, m := range got {
		seen[[2]int64{int64(m.Partition), m.Offset}] = m
	}
	for _, w := range want {
		m, ok := seen[[2]int64{int64(w.Partition), w.Offset}]
		if !ok || !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) || !m.Time.Equal(w.Time) || m.Headers != nil {
			t.Errorf("partition %d offset %d: got %+v; want %q=%q at %s", w.Partition, w.Offset, m, w.Key, w.Value, w.Time)
		}
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSingleMessage}, UpperBound: []byte{prefixSingleMessage + 1}})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		t.Errorf("a message is still stored one per key: %q", it.Key())
	}
	it.Close()

	// Appends go on at each partition's next offset.
	mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k-0"), Value: []byte("after")})
	high, err := l.Offsets(ctx, "events", queue.Position{Kind: queue.Last})
	if err != nil {
		t.Fatal(err)
	}
	if p := queue.PartitionFor([]byte("k-0"), 2); high[p] != 6 {
		t.Errorf("partition %d ends at %d after one more append; want 6", p, high[p])
	}
}

// TestFetchBatchGivesWhatFetchWould reads one topic twice, once a message
// at a time and once in batches of random sizes, and gets the same
// messages in the same order.
func TestFetchBatchGivesWhatFetchWould(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	l := open(t, Config{Dir: t.TempDir(), Partitions: 4})
	ctx := testContext(t)
	var msgs []queue.Message
	for i := range 2000 {
		msgs = append(msgs, queue.Message{Topic: "events", Key: fmt.Appendf(nil, "user-%d", rng.IntN(50)), Value: fmt.Appendf(nil, "v-%d", i)})
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 1+rng.IntN(300))
		mustPublish(t, ctx, l, msgs[:n]...)
		msgs = msgs[n:]
	}
	one, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	batches, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer batches.Close()
	want := fetchN(t, ctx, one, 2000)
	var got []queue.Message
	for len(got) < 2000 {
		limit := 1 + rng.IntN(700)
		before := len(got)
		if got, err = batches.(queue.BatchFetcher).FetchBatch(ctx, got, limit); err != nil {
			t.Fatal(err)
		}
		if n := len(got) - before; n < 1 || n > limit {
			t.Fatalf("FetchBatch with a limit of %d gave %d", limit, n)
		}
	}
	for i := range want {
		if want[i].Partition != got[i].Partition || want[i].Offset != got[i].Offset || !bytes.Equal(want[i].Value, got[i].Value) {
			t.Fatalf("message %d: one at a time %d/%d %s, in batches %d/%d %s", i,
				want[i].Partition, want[i].Offset, want[i].Value, got[i].Partition, got[i].Offset, got[i].Value)
		}
	}
}

// TestReadingInsideABlockLargerThanTheCap reads from inside a block of more
// messages than writers put in one now, as the bounds readers seek within
// assume: the reader finds the block all the same.
func TestReadingInsideABlockLargerThanTheCap(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Config{Dir: dir, Partitions: 1})
	ctx := testContext(t)
	mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k"), Value: []byte("first")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * maxBlockMessages
	var block []byte
	var stored int64
	for k := range n {
		value := fmt.Appendf(nil, "v-%d", k)
		stored += storedSize(1, len(value))
		block = appendRecord(block, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano(), stored, []byte("k"), nil, value)
	}
	// Offset 0 holds "first"; the big block begins at 1.
	if err := db.Set(blockKey("events", 0, 1), block, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, Config{Dir: dir, Partitions: 1})
	from := int64(n - 5)
	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.AtOffset, Offset: from})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for k, m := range fetchN(t, ctx, r, 6) {
		offset := from + int64(k)
		if m.Offset != offset || string(m.Value) != fmt.Sprintf("v-%d", offset-1) {
			t.Fatalf("message %d: offset %d value %q; want offset %d value v-%d", k, m.Offset, m.Value, offset, offset-1)
		}
	}
}
