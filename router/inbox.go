package router

import (
	"context"
	"sync"

	"github.com/switchyard/switchyard/queue"
)

// inbox hands the fetching goroutine's messages to the run loop in batches,
// so the loop wakes once for all that arrived since it last looked, and caps
// the messages fetched and not yet finished.
type inbox struct {
	mu      sync.Mutex
	fetched []fetchResult
	// held counts the messages fetched and not yet released, with those
	// being fetched; it never passes limit.
	held, limit int

	// ready receives a value when fetched becomes non-empty; room when held
	// falls below limit. Both hold at most one value: a receiver looks
	// again after each.
	ready, room chan struct{}
}

type fetchResult struct {
	msg queue.Message
	err error
}

func newInbox(limit int) *inbox {
	return &inbox{limit: limit, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// acquire takes a slot for one message, waiting while limit are held. It
// returns false when ctx ends first.
func (in *inbox) acquire(ctx context.Context) bool { return in.acquireUpTo(ctx, 1) > 0 }

// acquireUpTo takes as many slots as are free, up to n (at least 1),
// waiting while none is. It returns how many it took, or 0 when ctx ends
// first.
func (in *inbox) acquireUpTo(ctx context.Context, n int) int {
	for {
		in.mu.Lock()
		if free := in.limit - in.held; free > 0 {
			took := min(free, max(n, 1))
			in.held += took
			in.mu.Unlock()
			return took
		}
		in.mu.Unlock()
		select {
		case <-in.room:
		case <-ctx.Done():
			return 0
		}
	}
}

// release frees n slots.
func (in *inbox) release(n int) {
	if n == 0 {
		return
	}
	in.mu.Lock()
	in.held -= n
	in.mu.Unlock()
	select {
	case in.room <- struct{}{}:
	default:
	}
}

// put adds a fetch's result for the run loop.
func (in *inbox) put(f fetchResult) {
	in.mu.Lock()
	wasEmpty := len(in.fetched) == 0
	in.fetched = append(in.fetched, f)
	in.mu.Unlock()
	in.signal(wasEmpty)
}

// putAll adds fetched messages for the run loop.
func (in *inbox) putAll(msgs []queue.Message) {
	if len(msgs) == 0 {
		return
	}
	in.mu.Lock()
	wasEmpty := len(in.fetched) == 0
	for _, m := range msgs {
		in.fetched = append(in.fetched, fetchResult{msg: m})
	}
	in.mu.Unlock()
	in.signal(wasEmpty)
}

// signal tells the run loop there is something to take, when fetched was
// empty before the put: otherwise it was told already.
func (in *inbox) signal(wasEmpty bool) {
	if !wasEmpty {
		return
	}
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// take returns everything put since the last take, in order, and keeps
// spare as the buffer for what is put next.
func (in *inbox) take(spare []fetchResult) []fetchResult {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.fetched
	in.fetched = spare[:0]
	return out
}
