package ingest

import (
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// dedupe remembers recently stored messageIds per source, so a message an SDK
// sends again (every SDK retries whole batches) is stored once. It remembers
// at most a fixed number of ids and forgets each after the window.
type dedupe struct {
	window time.Duration
	mu     sync.Mutex
	seenAt *lru.Cache[string, time.Time]
}

func newDedupe(entries int, window time.Duration) *dedupe {
	cache, err := lru.New[string, time.Time](entries)
	if err != nil {
		// lru.New fails only for a non-positive size, which validation rules out.
		panic(err)
	}
	return &dedupe{window: window, seenAt: cache}
}

// seen reports whether key was stored within the window before now.
func (d *dedupe) seen(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.seenAt.Peek(key)
	return ok && now.Sub(at) < d.window
}

// add records that key was stored at now. The key is copied so it does not
// pin the request body in memory.
func (d *dedupe) add(key string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seenAt.Add(strings.Clone(key), now)
}
