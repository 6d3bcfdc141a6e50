// Package dedupe remembers recently seen messageIds, per source, for a
// window: the gateway uses it so a message an SDK sends again is stored once,
// and each router so a message already delivered is not sent again.
package dedupe

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Set remembers messageIds per source: the ids of its last N additions,
// each for a window. Calls take a whole request's ids at once, so a batch
// costs one lock, not one per message.
//
// It keeps a 128-bit digest of each id and the time in unix nanoseconds in
// a ring of N slots, and a map from digest to slot: about 70 bytes an id
// (BytesPerEntry), so a million ids take about 70 MB. Adding allocates
// nothing once the ring and map have grown to N. Two different ids share a
// digest with odds far below those of a disk error.
type Set struct {
	window time.Duration
	mu     sync.Mutex
	// ring holds the additions in order, up to its capacity; next is the
	// slot the next addition takes once the ring is full.
	ring []entry
	next int
	// slot maps each remembered key to the slot of its last addition.
	slot map[Key]int32
}

type entry struct {
	key Key
	at  int64 // unix nanoseconds
}

// BytesPerEntry is about what a Set takes per remembered id, measured by
// TestSetMemoryPerEntry.
const BytesPerEntry = 70

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
	return &Set{window: window, ring: make([]entry, 0, entries), slot: make(map[Key]int32)}, nil
}

// Seen reports, for each key, whether it was added within the window
// before now.
func (d *Set) Seen(keys []Key, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		if s, ok := d.slot[k]; ok {
			out[i] = now.Sub(time.Unix(0, d.ring[s].at)) < d.window
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
			if old := d.ring[s].key; d.slot[old] == int32(s) {
				delete(d.slot, old)
			}
		}
		d.ring[s] = entry{key: k, at: at}
		d.slot[k] = int32(s)
	}
}
