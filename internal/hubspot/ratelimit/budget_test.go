package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

// The limits are the usage guidelines' table ([O-usage]; OAuth [O24-usage]).
func TestTierBurst(t *testing.T) {
	tests := []struct {
		tier  Tier
		burst int
	}{
		{Free, 100}, {Starter, 100}, {Professional, 190}, {Enterprise, 190}, {APIAddOn, 250}, {OAuth, 110},
	}
	for _, tt := range tests {
		if burst, err := TierBurst(tt.tier); err != nil || burst != tt.burst {
			t.Errorf("%s: %d %v, want %d", tt.tier, burst, err, tt.burst)
		}
	}
	if _, err := TierBurst("platinum"); err == nil {
		t.Error("an unknown tier is refused")
	}
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestTheServiceMaxHeaderCorrectsTheTier(t *testing.T) {
	b, _ := NewBudget(Free, newFakeClock(), nil)
	b.Observe(headers("X-HubSpot-RateLimit-Max", "190", "X-HubSpot-RateLimit-Remaining", "189"))
	if b.Burst.Max() != 190 {
		t.Fatalf("burst max %d after the service said 190", b.Burst.Max())
	}
}

func TestTheDailyLimitPausesUntilMidnightInTheAccountZone(t *testing.T) {
	c := newFakeClock() // 12:00 UTC
	ny, _ := time.LoadLocation("America/New_York")
	b, _ := NewBudget(Professional, c, ny)
	if until, _ := b.PausedUntil(); !until.IsZero() {
		t.Fatal("a new budget is paused")
	}
	b.Observe(headers("X-HubSpot-RateLimit-Daily", "625000", "X-HubSpot-RateLimit-Daily-Remaining", "0"))
	until, reason := b.PausedUntil()
	want := time.Date(2026, 11, 23, 0, 0, 0, 0, ny)
	if !until.Equal(want) || reason == "" {
		t.Fatalf("paused until %s (%q), want %s", until, reason, want)
	}
	c.Set(want)
	if until, _ := b.PausedUntil(); !until.IsZero() {
		t.Fatal("still paused after the reset")
	}
}

func TestA429TellsWhatToWaitFor(t *testing.T) {
	c := newFakeClock()
	b, _ := NewBudget(Free, c, nil)
	// [C-429] TEN_SECONDLY_ROLLING: the window is full for 10 s.
	if wait := b.RateLimited("TEN_SECONDLY_ROLLING", 0); wait != 10200*time.Millisecond {
		t.Fatalf("wait %s after TEN_SECONDLY_ROLLING, want the window and its guard (10.2s)", wait)
	}
	// [O24-usage] DAILY: nothing until the reset.
	wait := b.RateLimited("DAILY", 0)
	if wait != 12*time.Hour {
		t.Fatalf("wait %s after DAILY at noon UTC, want 12h", wait)
	}
	if until, reason := b.PausedUntil(); until.Sub(c.Now()) != 12*time.Hour || reason == "" {
		t.Fatalf("paused until %s (%q)", until, reason)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	c := newFakeClock()
	b, _ := NewBudget(Free, c, nil)
	if wait := b.RateLimited("TEN_SECONDLY_ROLLING", 30*time.Second); wait != 30*time.Second {
		t.Fatalf("wait %s with Retry-After 30s", wait)
	}
	if until, _ := b.PausedUntil(); until.Sub(c.Now()) != 30*time.Second {
		t.Fatalf("paused until %s", until)
	}
}

func TestASearch429FillsOnlyTheSearchWindow(t *testing.T) {
	c := newFakeClock()
	b, _ := NewBudget(Free, c, nil)
	if wait := b.RateLimited("SECONDLY", 0); wait != 1020*time.Millisecond {
		t.Fatalf("wait %s after a search 429, want 1.02s", wait)
	}
	if !b.Burst.Next().Equal(c.Now()) {
		t.Fatal("a search 429 held back ordinary calls")
	}
}

func TestASharedTokenIsSplitByShare(t *testing.T) {
	b, _ := NewBudget(Professional, newFakeClock(), nil)
	b.SetShare(3, 8)
	if got := b.Burst.Max(); got != 71 {
		t.Fatalf("3 of 8 parts of 190 = %d, want 71", got)
	}
	b.SetShare(8, 8)
	if got := b.Burst.Max(); got != 190 {
		t.Fatalf("the whole share = %d", got)
	}
}
