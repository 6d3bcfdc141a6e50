package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// sendAll sends n requests as fast as the window allows, moving the fake
// clock to each allowed time, and returns the send times.
func sendAll(t *testing.T, w *Window, c *fakeClock, n int) []time.Time {
	t.Helper()
	var times []time.Time
	for i := 0; i < n; i++ {
		c.Set(w.Next())
		if err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		times = append(times, c.Now())
	}
	return times
}

func maxInAnyWindow(times []time.Time, length time.Duration) int {
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < length; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

func TestTheCeilingIsUsedFullyAndNeverExceeded(t *testing.T) {
	c := newFakeClock()
	w := NewWindow(100, 10*time.Second, c)
	start := c.Now()
	times := sendAll(t, w, c, 1000)
	if got := maxInAnyWindow(times, 10*time.Second); got != 100 {
		t.Fatalf("at most %d requests in a 10 s window, want exactly 100", got)
	}
	// 1000 requests at 100 per 10 s (plus the 2% guard): the last one goes
	// out after 9 windows, at 91.8 s.
	if took := times[len(times)-1].Sub(start); took != 9*10200*time.Millisecond {
		t.Fatalf("the 1000th request went out at %s, want 91.8s", took)
	}
}

func TestOthersUsageReportedByTheServiceSlowsTheWindow(t *testing.T) {
	c := newFakeClock()
	w := NewWindow(100, 10*time.Second, c)
	sendAll(t, w, c, 10)
	// The service says only 60 are left: others sent 30 that we did not.
	w.Observe(60)
	times := sendAll(t, w, c, 60)
	if times[len(times)-1] != c.Now() || c.Now().Sub(times[0]) != 0 {
		t.Fatal("the 60 the service allows should go at once")
	}
	next := w.Next()
	if d := next.Sub(c.Now()); d != 10200*time.Millisecond {
		t.Fatalf("after the service's remaining is used up, the next request waits %s, want the window and its guard (10.2s)", d)
	}
	// A report of more remaining than we believe never speeds us up.
	w.Observe(100)
	if w.Next() != next {
		t.Fatal("a generous report sped the window up")
	}
}

func TestSetMaxChangesTheAllowance(t *testing.T) {
	c := newFakeClock()
	w := NewWindow(100, 10*time.Second, c)
	w.SetMax(190)
	times := sendAll(t, w, c, 380)
	if got := maxInAnyWindow(times, 10*time.Second); got != 190 {
		t.Fatalf("%d in a window after SetMax(190)", got)
	}
	w.SetMax(0)
	if w.Max() != 1 {
		t.Fatalf("Max %d after SetMax(0), want at least 1", w.Max())
	}
}

func TestWaitReturnsWhenTheContextEnds(t *testing.T) {
	c := newFakeClock()
	w := NewWindow(1, time.Second, c)
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Wait returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return when its context ended")
	}
}

func TestConcurrentWaitersShareTheWindow(t *testing.T) {
	w := NewWindow(50, 200*time.Millisecond, RealClock)
	begin := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := w.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// 200 requests at 50 per 200ms: the last cannot go before 600ms.
	if took := time.Since(begin); took < 600*time.Millisecond {
		t.Fatalf("200 requests took %s, faster than the window allows", took)
	}
}
