package ingest

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// dedupe remembers recently stored messageIds per source, so a message an SDK
// sends again (every SDK retries whole batches) is stored once. It remembers
// at most a fixed number of ids and forgets each after the window. Calls take
// a whole request's ids at once, so a batch costs one lock, not one per
// message. It keeps a 128-bit digest of each id and the time in unix
// nanoseconds, about 100 bytes an entry, so a million ids fit in about
// 100 MB; two different ids share a digest with odds far below those of a
// disk error.
type dedupe struct {
	window time.Duration
	mu     sync.Mutex
	seenAt *simplelru.LRU[digest, int64]
}

// digest identifies one messageId of one source.
type digest [16]byte

func dedupeKey(source, messageID string) digest {
	sum := sha256.Sum256([]byte(source + "\x00" + messageID))
	return digest(sum[:16])
}

func newDedupe(entries int, window time.Duration) *dedupe {
	cache, err := simplelru.NewLRU[digest, int64](entries, nil)
	if err != nil {
		// NewLRU fails only for a non-positive size, which validation rules out.
		panic(err)
	}
	return &dedupe{window: window, seenAt: cache}
}

// seen reports, for each key, whether it was stored within the window
// before now.
func (d *dedupe) seen(keys []digest, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		at, ok := d.seenAt.Peek(k)
		out[i] = ok && now.Sub(time.Unix(0, at)) < d.window
	}
	return out
}

// add records that keys were stored at now.
func (d *dedupe) add(keys []digest, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.seenAt.Add(k, now.UnixNano())
	}
}
