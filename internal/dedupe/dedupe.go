// Package dedupe remembers recently seen messageIds, per source, for a
// window: the gateway uses it so a message an SDK sends again is stored once,
// and each router so a message already delivered is not sent again.
package dedupe

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Set remembers messageIds per source. It remembers at most a fixed number of
// ids and forgets each after the window. Calls take
// a whole request's ids at once, so a batch costs one lock, not one per
// message. It keeps a 128-bit digest of each id and the time in unix
// nanoseconds, about 100 bytes an entry, so a million ids fit in about
// 100 MB; two different ids share a digest with odds far below those of a
// disk error.
type Set struct {
	window time.Duration
	mu     sync.Mutex
	seenAt *simplelru.LRU[Key, int64]
}

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

// New returns a Set of at most entries ids (at least 1), each remembered for
// window.
func New(entries int, window time.Duration) (*Set, error) {
	cache, err := simplelru.NewLRU[Key, int64](entries, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the dedupe set: %w", err)
	}
	return &Set{window: window, seenAt: cache}, nil
}

// Seen reports, for each key, whether it was added within the window
// before now.
func (d *Set) Seen(keys []Key, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		at, ok := d.seenAt.Peek(k)
		out[i] = ok && now.Sub(time.Unix(0, at)) < d.window
	}
	return out
}

// Add records keys as seen at now.
func (d *Set) Add(keys []Key, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.seenAt.Add(k, now.UnixNano())
	}
}
