// Package dedupe remembers recently seen messageIds, per source, for a
// window: the gateway uses it so a message an SDK sends again is stored once,
// and each router so a message already delivered is not sent again.
package dedupe

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Set remembers messageIds per source: the ids of its last N additions,
// each for a window. Calls take a whole request's ids at once, so a batch
// costs one lock, not one per message.
//
// It keeps a 128-bit digest of each id and the time in unix nanoseconds in
// a ring of N slots, and finds a digest's slot through an open-addressing
// table at most half full, whose places hold a slot number and 32 bits of
// the digest, so a search reads the ring only where those bits match:
// about 40 bytes an id (BytesPerEntry), so a million ids take about 40 MB,
// allocated when the Set is made. Adding allocates nothing.
type Set struct {
	window time.Duration
	mu     sync.Mutex
	// ring holds the additions in order, up to its capacity; next is the
	// slot the next addition takes once the ring is full.
	ring []entry
	next int
	// index holds, for each remembered key, a place: its last addition's
	// slot plus one (0 is an empty place) in the high 32 bits and its tag
	// in the low 32, at the first free place from the key's home on; its
	// length is a power of two.
	index []uint64
	mask  uint64
	// touched keeps what touch read, so the reads are made.
	touched uint64
}

type entry struct {
	key Key
	at  int64 // unix nanoseconds
}

// BytesPerEntry is about what a Set takes per id it can remember, measured
// by TestSetMemoryPerEntry.
const BytesPerEntry = 40

// Key identifies one messageId of one source.
type Key [16]byte

// seeds key the digests. Sets live in one process and are never stored, so
// digests need only agree within it; seeds drawn at random per process keep
// anyone from choosing ids whose digests collide.
var seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// KeyOf returns the key of a source's messageId: two 64-bit seeded hashes
// of the pair. Two different ids share a key with odds of about 2^-128 per
// pair, far below those of a disk error.
func KeyOf(source, messageID string) Key {
	var k Key
	for i, seed := range seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(source)
		h.WriteByte(0)
		h.WriteString(messageID)
		binary.LittleEndian.PutUint64(k[8*i:], h.Sum64())
	}
	return k
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
		index:  make([]uint64, size),
		mask:   uint64(size - 1),
	}, nil
}

// tag is the part of k an index place holds: 32 bits, from which its home
// is found too, as the index has at most 2^31 places.
func tag(k Key) uint64 { return uint64(binary.LittleEndian.Uint32(k[:4])) }

// home is where the search for a key of tag t in the index starts. A key is
// a digest, so its first bytes are as good a hash as any.
func (d *Set) home(t uint64) uint64 { return t & d.mask }

// place is the index place of slot s of a key of tag t.
func place(s int, t uint64) uint64 { return uint64(s+1)<<32 | t }

// slotOf returns the ring slot of an index place that is not empty.
func slotOf(p uint64) int { return int(p>>32) - 1 }

// find returns the position of k in the index and true, or the empty
// position where it would go and false.
func (d *Set) find(k Key) (uint64, bool) {
	t := tag(k)
	for i := d.home(t); ; i = (i + 1) & d.mask {
		p := d.index[i]
		if p == 0 {
			return i, false
		}
		if p&0xffffffff == t && d.ring[slotOf(p)].key == k {
			return i, true
		}
	}
}

// remove empties position i of the index, moving back the places after it
// that would no longer be found past the hole.
func (d *Set) remove(i uint64) {
	d.index[i] = 0
	for j := (i + 1) & d.mask; d.index[j] != 0; j = (j + 1) & d.mask {
		h := d.home(d.index[j] & 0xffffffff)
		// The place at j stays unless its home is outside (i, j], going
		// round the end of the index.
		var stays bool
		if i <= j {
			stays = i < h && h <= j
		} else {
			stays = i < h || h <= j
		}
		if !stays {
			d.index[i], d.index[j] = d.index[j], 0
			i = j
		}
	}
}

// touch reads the index places where the search for each key begins,
// and, when evicting, for the keys of the ring's next slots, which the
// additions of keys forget. A search waits for its place to come from
// memory, one after another; these reads do not depend on each other, so
// the processor fetches them together, and the searches after find them
// in its cache.
func (d *Set) touch(keys []Key, evicting bool) {
	var t uint64
	for i, k := range keys {
		t |= d.index[d.home(tag(k))]
		if evicting {
			t |= d.index[d.home(tag(d.ring[(d.next+i)%len(d.ring)].key))]
		}
	}
	d.touched = t
}

// Seen reports, for each key, whether it was added within the window
// before now.
func (d *Set) Seen(keys []Key, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.touch(keys, false)
	for i, k := range keys {
		if p, ok := d.find(k); ok {
			out[i] = now.Sub(time.Unix(0, d.ring[slotOf(d.index[p])].at)) < d.window
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
	d.touch(keys, len(d.ring) == cap(d.ring))
	for _, k := range keys {
		var s int
		if len(d.ring) < cap(d.ring) {
			s = len(d.ring)
			d.ring = append(d.ring, entry{})
		} else {
			s = d.next
			d.next = (d.next + 1) % len(d.ring)
			old := d.ring[s].key
			if p, ok := d.find(old); ok && slotOf(d.index[p]) == s {
				d.remove(p)
			}
		}
		d.ring[s] = entry{key: k, at: at}
		p, _ := d.find(k)
		d.index[p] = place(s, tag(k))
	}
}
