package dedupe

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s, err := New(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := KeyOf("web", "m1"), KeyOf("web", "m2"), KeyOf("web", "m3")
	if KeyOf("web", "m1") != a || KeyOf("app", "m1") == a {
		t.Fatal("a key must depend on the source and the id, and only on them")
	}
	s.Add([]Key{a}, now)
	if got := s.Seen([]Key{a, b}, now.Add(59*time.Minute)); !got[0] || got[1] {
		t.Fatalf("within the window: %v, want [true false]", got)
	}
	if got := s.Seen([]Key{a}, now.Add(time.Hour)); got[0] {
		t.Fatal("an id is forgotten once the window has passed")
	}
	s.Add([]Key{b, c}, now)
	if got := s.Seen([]Key{a, b, c}, now); got[0] || !got[1] || !got[2] {
		t.Fatalf("past the capacity the oldest is forgotten: %v", got)
	}
	if _, err := New(0, time.Hour); err == nil {
		t.Fatal("a set of no entries is refused")
	}
}

// TestSetModel checks the Set against the simplest account of what it
// remembers: a key is seen when its last addition is among the last N
// additions and within the window. Keys, times and sizes are random.
func TestSetModel(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	for round := range 200 {
		entries := 1 + rng.IntN(20)
		window := time.Duration(1+rng.IntN(50)) * time.Second
		s, err := New(entries, window)
		if err != nil {
			t.Fatal(err)
		}
		type addition struct {
			key Key
			at  time.Time
		}
		var added []addition
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		keys := make([]Key, 1+rng.IntN(40))
		sameTag := round%2 == 1
		for i := range keys {
			keys[i] = KeyOf("web", fmt.Sprint(i))
			if sameTag {
				// Keys whose index tags, and so homes, are all alike:
				// every search walks past the others.
				copy(keys[i][:4], "same")
			}
		}
		for step := range 300 {
			now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			if rng.IntN(2) == 0 {
				batch := make([]Key, rng.IntN(5))
				for i := range batch {
					batch[i] = keys[rng.IntN(len(keys))]
					added = append(added, addition{batch[i], now})
				}
				s.Add(batch, now)
				continue
			}
			got := s.Seen(keys, now)
			for i, k := range keys {
				want := false
				recent := added[max(0, len(added)-entries):]
				for j := len(added) - 1; j >= 0; j-- {
					if added[j].key == k {
						want = j >= len(added)-len(recent) && now.Sub(added[j].at) < window
						break
					}
				}
				if got[i] != want {
					t.Fatalf("round %d step %d (entries %d, window %s): key %d seen %v, want %v", round, step, entries, window, i, got[i], want)
				}
			}
		}
	}
}

// TestSetMemoryPerEntry holds BytesPerEntry to what a full Set takes.
func TestSetMemoryPerEntry(t *testing.T) {
	const entries = 500_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := New(entries, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	keys := make([]Key, 1000)
	for i := 0; i < 2*entries; i += len(keys) {
		for j := range keys {
			keys[j] = KeyOf("web", strconv.Itoa(i+j))
		}
		s.Add(keys, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / entries
	t.Logf("%.1f bytes per remembered id", perEntry)
	if perEntry > BytesPerEntry*1.5 || perEntry < BytesPerEntry/2 {
		t.Fatalf("%.1f bytes per remembered id, documented as about %d", perEntry, BytesPerEntry)
	}
	runtime.KeepAlive(s)
}

// BenchmarkFullSet adds and looks up batches of new ids in a full set, of
// the gateway's default size with a batch request's ids and of the
// router's with a batch of its drop destination's; it reports the time per
// id.
func BenchmarkFullSet(b *testing.B) {
	for _, size := range []struct{ entries, batch int }{{1_000_000, 100}, {200_000, 500}} {
		b.Run(fmt.Sprintf("entries=%d,batch=%d", size.entries, size.batch), func(b *testing.B) {
			benchmarkFullSet(b, size.entries, size.batch)
		})
	}
}

func benchmarkFullSet(b *testing.B, entries, batch int) {
	d, err := New(entries, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	keys := make([]Key, batch)
	n := 0
	fill := func() {
		for i := range keys {
			keys[i] = KeyOf("web", fmt.Sprint("m-", n))
			n++
		}
	}
	for range entries / len(keys) {
		fill()
		d.Add(keys, now)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		d.Seen(keys, now)
		d.Add(keys, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/id")
}
