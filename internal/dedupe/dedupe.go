// Package dedupe remembers recently seen messageIds, per source, for a
// window: the gateway uses it so a message an SDK sends again is stored once,
// and each router so a message already delivered is not sent again.
package dedupe

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Set remembers messageIds per source: the ids of its last N additions,
// each for a window. Calls take a whole request's ids at once, so a batch
// costs one lock, not one per message.
//
// It keeps a 128-bit digest of each id and the time in unix nanoseconds in
// a ring of N slots, and finds a digest's slot through an open-addressing
// table of slot numbers at most half full: about 32 bytes an id
// (BytesPerEntry), so a million ids take about 32 MB, allocated when the
// Set is made. Adding allocates nothing. Two different ids share a digest
// with odds far below those of a disk error.
type Set struct {
	window time.Duration
	mu     sync.Mutex
	// ring holds the additions in order, up to its capacity; next is the
	// slot the next addition takes once the ring is full.
	ring []entry
	next int
	// index holds, for each remembered key, its last addition's slot plus
	// one (0 is an empty place), at the first free place from the key's
	// home (home) on; its length is a power of two.
	index []int32
	mask  uint64
}

type entry struct {
	key Key
	at  int64 // unix nanoseconds
}

// BytesPerEntry is about what a Set takes per id it can remember, measured
// by TestSetMemoryPerEntry.
const BytesPerEntry = 32

// Key identifies one messageId of one source.
type Key [16]byte

// KeyOf returns the key of a source's messageId.
func KeyOf(source, messageID string) Key {
	var buf [256]byte
	b := append(buf[:0], source...)
	b = append(b, 0)
	b = append(b, messageID...)
	sum := sha256.Sum256(b)
	return Key(sum[:16])
}

// maxEntries is the most a Set can remember: slots are int32.
const maxEntries = 1 << 30

// New returns a Set that remembers the ids of its last entries additions
// (at least 1), each for window.
func New(entries int, window time.Duration) (*Set, error) {
	if entries < 1 || entries > maxEntries {
		return nil, fmt.Errorf("creating the dedupe set: %d entries, want 1 to %d", entries, maxEntries)
	}
	size := 2
	for size < 2*entries {
		size *= 2
	}
	return &Set{
		window: window,
		ring:   make([]entry, 0, entries),
		index:  make([]int32, size),
		mask:   uint64(size - 1),
	}, nil
}

// home is where k's search in the index starts. A key is a digest, so its
// first bytes are as good a hash as any.
func (d *Set) home(k Key) uint64 { return binary.LittleEndian.Uint64(k[:8]) & d.mask }

// find returns the place of k in the index and true, or the empty place
// where it would go and false.
func (d *Set) find(k Key) (uint64, bool) {
	for p := d.home(k); ; p = (p + 1) & d.mask {
		s := d.index[p]
		if s == 0 {
			return p, false
		}
		if d.ring[s-1].key == k {
			return p, true
		}
	}
}

// remove empties place p of the index, moving back the entries after it
// that would no longer be found past the hole.
func (d *Set) remove(p uint64) {
	d.index[p] = 0
	for q := (p + 1) & d.mask; d.index[q] != 0; q = (q + 1) & d.mask {
		h := d.home(d.ring[d.index[q]-1].key)
		// The entry at q stays unless its home is outside (p, q], going
		// round the end of the index.
		var stays bool
		if p <= q {
			stays = p < h && h <= q
		} else {
			stays = p < h || h <= q
		}
		if !stays {
			d.index[p], d.index[q] = d.index[q], 0
			p = q
		}
	}
}

// Seen reports, for each key, whether it was added within the window
// before now.
func (d *Set) Seen(keys []Key, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		if p, ok := d.find(k); ok {
			out[i] = now.Sub(time.Unix(0, d.ring[d.index[p]-1].at)) < d.window
		}
	}
	return out
}

// Add records keys as seen at now. Each takes the ring's next slot; the
// addition that held it is forgotten, unless its key was added again since.
func (d *Set) Add(keys []Key, now time.Time) {
	at := now.UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		var s int
		if len(d.ring) < cap(d.ring) {
			s = len(d.ring)
			d.ring = append(d.ring, entry{})
		} else {
			s = d.next
			d.next = (d.next + 1) % len(d.ring)
			if p, ok := d.find(d.ring[s].key); ok && d.index[p] == int32(s+1) {
				d.remove(p)
			}
		}
		d.ring[s] = entry{key: k, at: at}
		p, _ := d.find(k)
		d.index[p] = int32(s + 1)
	}
}
