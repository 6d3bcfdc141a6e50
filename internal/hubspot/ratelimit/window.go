// Package ratelimit paces requests to HubSpot so its limits are respected by
// construction rather than by hitting them.
//
// HubSpot's burst limit is a rolling window: at most Max requests in any
// 10-second span (policy TEN_SECONDLY_ROLLING). A token bucket cannot use
// that ceiling fully without sometimes exceeding it, since a full bucket
// plus the refill during one window is more than one window's allowance.
// Window keeps the send times of the last Max requests instead, and lets a
// request go at the earliest moment the window allows: the ceiling is used
// exactly and never exceeded.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source; tests inject their own.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Window allows at most Max requests in any span of Length. It keeps a
// guard of 2% of Length on top, so requests that reach the service a little
// later or earlier than they left (network jitter, clock reads) still fall
// into separate windows there. It is safe for concurrent use.
type Window struct {
	mu     sync.Mutex
	clock  Clock
	length time.Duration
	max    int
	// sent holds the times of recent requests (ours and, as reported by the
	// service, others'), oldest first; only the last max matter.
	sent []time.Time
}

// NewWindow returns a window of limit requests per length (at least 1).
func NewWindow(limit int, length time.Duration, clock Clock) *Window {
	if clock == nil {
		clock = RealClock
	}
	return &Window{clock: clock, length: length, max: max(1, limit)}
}

// Wait blocks until a request may be sent, records it, and returns nil; or
// returns ctx's error.
func (w *Window) Wait(ctx context.Context) error {
	for {
		w.mu.Lock()
		now := w.clock.Now()
		at := w.nextLocked(now)
		if !at.After(now) {
			w.sent = append(w.sent, now)
			w.trimLocked(now)
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.clock.After(at.Sub(now)):
		}
	}
}

// Next returns when the next request could be sent.
func (w *Window) Next() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextLocked(w.clock.Now())
}

func (w *Window) nextLocked(now time.Time) time.Time {
	if len(w.sent) < w.max {
		return now
	}
	// The request max places back must have left the window.
	return w.sent[len(w.sent)-w.max].Add(w.span())
}

// span is the window's length with its guard.
func (w *Window) span() time.Duration { return w.length + w.length/50 }

func (w *Window) trimLocked(now time.Time) {
	cut := 0
	for cut < len(w.sent) && !w.sent[cut].After(now.Add(-w.span())) {
		cut++
	}
	if extra := len(w.sent) - cut - w.max; extra > 0 {
		cut += extra
	}
	if cut > 0 {
		w.sent = append(w.sent[:0], w.sent[cut:]...)
	}
}

// SetMax changes the allowance, for example when the service reports a
// different limit than the configured tier, or when this process's share of
// a shared budget changes.
func (w *Window) SetMax(limit int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.max = max(1, limit)
}

// Max returns the allowance per window.
func (w *Window) Max() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// Used returns the requests in the current window: those sent in the last
// Length (and its guard), including those the service reported for others.
func (w *Window) Used() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := w.clock.Now().Add(-w.span())
	n := 0
	for i := len(w.sent) - 1; i >= 0 && w.sent[i].After(cut); i-- {
		n++
	}
	return n
}

// Observe corrects the window from the service's count of the requests
// left in its current window. When the service has fewer left than this
// window believes it may still send (other processes or apps share the
// budget and used more than their part), the difference is recorded as
// sent now, which slows this window to the shared truth. It never speeds
// the window up.
func (w *Window) Observe(remaining int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	w.trimLocked(now)
	used := 0
	for _, t := range w.sent {
		if t.After(now.Add(-w.span())) {
			used++
		}
	}
	deficit := (w.max - used) - max(remaining, 0)
	for i := 0; i < deficit; i++ {
		w.sent = append(w.sent, now)
	}
	w.trimLocked(now)
}
