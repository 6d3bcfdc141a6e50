package ratelimit

import (
	"net/http"
	"strings"
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

func TestStateReadsEachWindowAndThePause(t *testing.T) {
	c := newFakeClock() // 12:00 UTC, 07:00 in New York
	ny, _ := time.LoadLocation("America/New_York")
	b, _ := NewBudget(Professional, c, ny)
	midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, ny)

	s := b.State()
	if s.Burst != (WindowState{Limit: 190}) || s.Search != (WindowState{Limit: 5}) || s.Daily != (WindowState{}) {
		t.Fatalf("a new budget's state %+v", s)
	}
	if !s.DailyReset.Equal(midnight) || !s.PausedUntil.IsZero() || s.PauseReason != "" {
		t.Fatalf("a new budget resets at %s, paused until %s (%q)", s.DailyReset, s.PausedUntil, s.PauseReason)
	}

	// 4 of 8 parts of the burst; 12 calls of ours, then HubSpot says 80 of
	// its 95 are left (3 more by others) and 625000-600000 of the day.
	b.SetShare(4, 8)
	sendAll(t, b.Burst, c, 12)
	sendAll(t, b.Search, c, 2)
	b.Observe(headers("X-HubSpot-RateLimit-Max", "190", "X-HubSpot-RateLimit-Remaining", "160",
		"X-HubSpot-RateLimit-Daily", "625000", "X-HubSpot-RateLimit-Daily-Remaining", "25000"))
	s = b.State()
	if s.Burst != (WindowState{Limit: 95, Used: 15}) || s.Burst.Left() != 80 {
		t.Errorf("burst %+v (left %d), want 15 of 95 used, 80 left", s.Burst, s.Burst.Left())
	}
	if s.Search != (WindowState{Limit: 5, Used: 2}) {
		t.Errorf("search %+v, want 2 of 5", s.Search)
	}
	if s.Daily != (WindowState{Limit: 625000, Used: 600000}) || s.Daily.Left() != 25000 {
		t.Errorf("daily %+v, want 600000 of 625000 used", s.Daily)
	}

	// A second on, the search window is empty; the burst window still holds
	// the calls.
	c.Set(c.Now().Add(time.Second + 20*time.Millisecond))
	if s = b.State(); s.Search.Used != 0 || s.Burst.Used != 15 {
		t.Errorf("a second on: search %+v, burst %+v", s.Search, s.Burst)
	}
	c.Set(c.Now().Add(10200 * time.Millisecond))
	if s = b.State(); s.Burst.Used != 0 {
		t.Errorf("a window on: burst %+v", s.Burst)
	}

	// A DAILY 429 leaves nothing of the day and pauses until midnight.
	b.RateLimited("DAILY", 0)
	s = b.State()
	if s.Daily != (WindowState{Limit: 625000, Used: 625000}) || s.Daily.Left() != 0 {
		t.Errorf("daily after a DAILY 429 %+v", s.Daily)
	}
	if !s.PausedUntil.Equal(midnight) || !strings.Contains(s.PauseReason, "DAILY") {
		t.Errorf("paused until %s (%q), want midnight in New York for DAILY", s.PausedUntil, s.PauseReason)
	}

	// After midnight the day starts again and the pause is over.
	c.Set(midnight.Add(time.Minute))
	s = b.State()
	if s.Daily != (WindowState{Limit: 625000}) || !s.PausedUntil.IsZero() || s.PauseReason != "" {
		t.Errorf("after midnight: daily %+v, paused until %s (%q)", s.Daily, s.PausedUntil, s.PauseReason)
	}
	if !s.DailyReset.Equal(midnight.AddDate(0, 0, 1)) {
		t.Errorf("next reset %s", s.DailyReset)
	}
}
