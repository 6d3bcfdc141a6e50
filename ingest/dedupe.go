package ingest

import (
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// dedupe remembers recently stored messageIds per source, so a message an SDK
// sends again (every SDK retries whole batches) is stored once. It remembers
// at most a fixed number of ids and forgets each after the window. Calls take
// a whole request's ids at once, so a batch costs one lock, not one per
// message.
type dedupe struct {
	window time.Duration
	mu     sync.Mutex
	seenAt *simplelru.LRU[string, time.Time]
}

func newDedupe(entries int, window time.Duration) *dedupe {
	cache, err := simplelru.NewLRU[string, time.Time](entries, nil)
	if err != nil {
		// NewLRU fails only for a non-positive size, which validation rules out.
		panic(err)
	}
	return &dedupe{window: window, seenAt: cache}
}

// seen reports, for each key, whether it was stored within the window
// before now.
func (d *dedupe) seen(keys []string, now time.Time) []bool {
	out := make([]bool, len(keys))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		at, ok := d.seenAt.Peek(k)
		out[i] = ok && now.Sub(at) < d.window
	}
	return out
}

// add records that keys were stored at now. Keys are copied so they do not
// pin the request body in memory.
func (d *dedupe) add(keys []string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.seenAt.Add(strings.Clone(k), now)
	}
}
