package embedded

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchyard/switchyard/queue"
)

func TestSizeClasses(t *testing.T) {
	for _, tc := range []struct {
		n, size int
		ok      bool
	}{
		{1, 4 << 10, true}, {4 << 10, 4 << 10, true}, {4<<10 + 1, 8 << 10, true},
		{128 << 10, 128 << 10, true}, {200 << 10, 256 << 10, true}, {256 << 10, 256 << 10, true},
		{256<<10 + 1, 0, false},
	} {
		c, ok := sizeClass(tc.n)
		if ok != tc.ok || (ok && minReadBuffer<<c != tc.size) {
			t.Errorf("sizeClass(%d) = %d (%d bytes), %v; want %d bytes, %v", tc.n, c, minReadBuffer<<c, ok, tc.size, tc.ok)
		}
	}
}

// Reads in random batches, releasing random messages as they go: a message
// not yet released keeps the bytes it was published with, however many
// reads reuse the buffers of released ones, and reads do reuse them.
func TestReleasedReadsLendTheirBytesToLaterReadsOnly(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	l := open(t, Config{Dir: t.TempDir(), Partitions: 3})
	ctx := testContext(t)
	const total = 3000
	published := map[string][]byte{} // partition/offset: value
	var msgs []queue.Message
	for i := range total {
		// Sizes from a few bytes to a few kilobytes, so reads fall in
		// different buffer sizes.
		v := bytes.Repeat([]byte{byte('a' + i%26)}, 1+rng.IntN(3000))
		msgs = append(msgs, queue.Message{Topic: "events", Key: fmt.Appendf(nil, "user-%d", rng.IntN(40)), Value: append(fmt.Appendf(nil, "%d:", i), v...)})
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 1+rng.IntN(200))
		mustPublish(t, ctx, l, msgs[:n]...)
		msgs = msgs[n:]
	}
	check, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fetchN(t, ctx, check, total) {
		published[fmt.Sprint(m.Partition, "/", m.Offset)] = bytes.Clone(m.Value)
	}
	check.Close()

	r, err := l.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var held []queue.Message
	read, reused := 0, 0
	for read < total {
		idle := l.buffers.held
		got, err := r.(queue.BatchFetcher).FetchBatch(ctx, nil, 1+rng.IntN(400))
		if err != nil {
			t.Fatal(err)
		}
		read += len(got)
		if l.buffers.held < idle {
			reused++
		}
		held = append(held, got...)
		for _, m := range held {
			if want := published[fmt.Sprint(m.Partition, "/", m.Offset)]; !bytes.Equal(m.Value, want) {
				t.Fatalf("message %d/%d changed before its release: %.20q..., published as %.20q...", m.Partition, m.Offset, m.Value, want)
			}
		}
		// Release a random share of what is held, in random order.
		rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		n := rng.IntN(len(held) + 1)
		for i := range held[:n] {
			held[i].Release()
		}
		held = append(held[:0], held[n:]...)
	}
	for i := range held {
		held[i].Release()
	}
	if reused == 0 {
		t.Fatalf("no read reused a released buffer")
	}
	if l.buffers.held > maxIdleReadBuffers {
		t.Fatalf("%d bytes kept in released buffers, more than %d", l.buffers.held, maxIdleReadBuffers)
	}
}
