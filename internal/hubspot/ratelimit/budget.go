package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Tier names an account's API allowance.
type Tier string

// Tiers, as HubSpot's usage guidelines list them.
const (
	Free         Tier = "free"
	Starter      Tier = "starter"
	Professional Tier = "professional"
	Enterprise   Tier = "enterprise"
	// APIAddOn is any tier with the API Limit Increase.
	APIAddOn Tier = "api-add-on"
	// OAuth is a public app's access token: 110 per 10 s, no daily limit.
	OAuth Tier = "oauth"
)

// TierBurst returns a tier's requests per 10-second rolling window, per
// app: free and starter 100, professional and enterprise 190, with the API
// add-on 250, OAuth apps 110. There is no daily figure here: the budget
// pauses on HubSpot's Daily-Remaining header and DAILY 429s, which count
// every app of the account.
func TierBurst(t Tier) (int, error) {
	switch t {
	case Free, Starter:
		return 100, nil
	case Professional, Enterprise:
		return 190, nil
	case APIAddOn:
		return 250, nil
	case OAuth:
		return 110, nil
	}
	return 0, fmt.Errorf("tier %q is not one of free, starter, professional, enterprise, api-add-on, oauth", t)
}

// Window lengths and the budgets HubSpot gives endpoints outside the burst
// window.
const (
	BurstWindow = 10 * time.Second
	// SearchPerSecond is the search endpoints' own limit.
	SearchPerSecond = 5
	// EventsPerSecond is the custom events endpoints' own limit.
	EventsPerSecond = 1250
)

// Budget is everything one token may spend: the burst window (this
// process's share of it), the search and events windows, and the daily
// allowance. It learns from HubSpot's rate-limit headers and 429 answers.
// It is safe for concurrent use.
type Budget struct {
	// Burst paces ordinary API calls; Search the search endpoints; Events
	// the custom behavioral events endpoints.
	Burst, Search, Events *Window

	clock Clock
	loc   *time.Location

	mu          sync.Mutex
	tierBurst   int
	share       float64
	pausedUntil time.Time
	pauseReason string
	// dailyLimit and dailyRemaining are what HubSpot's Daily headers last
	// said, at dailySeen; dailyLimit is 0 until a response reports it.
	dailyLimit     int
	dailyRemaining int
	dailySeen      time.Time
}

// NewBudget returns the budget of a token of the tier. The daily allowance
// resets at midnight in loc (the account's time zone; nil means UTC).
func NewBudget(tier Tier, clock Clock, loc *time.Location) (*Budget, error) {
	burst, err := TierBurst(tier)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = RealClock
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Budget{
		Burst:     NewWindow(burst, BurstWindow, clock),
		Search:    NewWindow(SearchPerSecond, time.Second, clock),
		Events:    NewWindow(EventsPerSecond, time.Second, clock),
		clock:     clock,
		loc:       loc,
		tierBurst: burst,
		share:     1,
	}, nil
}

// SetShare gives this process owned of total parts of the token's burst
// allowance, for several processes serving one token (for example the
// partitions of the topic it owns).
func (b *Budget) SetShare(owned, total int) {
	if total <= 0 || owned < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.share = float64(owned) / float64(total)
	b.applyLocked()
}

func (b *Budget) applyLocked() {
	b.Burst.SetMax(int(float64(b.tierBurst) * b.share))
}

// Observe learns from a response's rate-limit headers: the burst allowance
// (X-HubSpot-RateLimit-Max, when it differs from the configured tier), what
// is left of it (X-HubSpot-RateLimit-Remaining) and what is left of the day
// (X-HubSpot-RateLimit-Daily-Remaining; at 0 the budget pauses until the
// daily reset). Search responses carry no such headers.
func (b *Budget) Observe(h http.Header) {
	if max, ok := headerInt(h, "X-Hubspot-Ratelimit-Max"); ok && max > 0 {
		b.mu.Lock()
		if max != b.tierBurst {
			b.tierBurst = max
			b.applyLocked()
		}
		share := b.share
		b.mu.Unlock()
		if remaining, ok := headerInt(h, "X-Hubspot-Ratelimit-Remaining"); ok {
			// This process may use its share of what is left.
			b.Burst.Observe(int(float64(remaining) * share))
		}
	}
	if limit, ok := headerInt(h, "X-Hubspot-Ratelimit-Daily"); ok && limit > 0 {
		b.mu.Lock()
		b.dailyLimit = limit
		b.mu.Unlock()
	}
	if remaining, ok := headerInt(h, "X-Hubspot-Ratelimit-Daily-Remaining"); ok {
		b.observeDaily(remaining)
		if remaining <= 0 {
			b.pause(b.nextReset(), "the daily limit is used up")
		}
	}
}

// observeDaily records what is left of the day, as of now.
func (b *Budget) observeDaily(remaining int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dailyRemaining, b.dailySeen = max(remaining, 0), b.clock.Now()
}

// RateLimited learns from a 429 answer's policyName: TEN_SECONDLY_ROLLING
// fills the burst window, SECONDLY (search) the search window, DAILY pauses
// everything until the daily reset. A Retry-After, when given, sets the
// least wait. It returns how long the refused request should wait.
func (b *Budget) RateLimited(policy string, retryAfter time.Duration) time.Duration {
	now := b.clock.Now()
	wait := retryAfter
	switch policy {
	case "DAILY":
		until := b.nextReset()
		b.observeDaily(0)
		b.pause(until, "HubSpot answered 429 DAILY: the daily limit is used up")
		wait = max(wait, until.Sub(now))
	case "SECONDLY":
		b.Search.Observe(0)
		wait = max(wait, b.Search.Next().Sub(now))
	default: // TEN_SECONDLY_ROLLING and anything unknown
		b.Burst.Observe(0)
		wait = max(wait, b.Burst.Next().Sub(now))
	}
	if retryAfter > 0 && policy != "DAILY" {
		b.pause(now.Add(retryAfter), "HubSpot asked to retry after "+retryAfter.String())
	}
	return wait
}

func (b *Budget) pause(until time.Time, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until.After(b.pausedUntil) {
		b.pausedUntil, b.pauseReason = until, reason
	}
}

// PausedUntil returns when the budget allows requests again, and why it
// does not now; the zero time when it is not paused.
func (b *Budget) PausedUntil() (time.Time, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pausedUntil.After(b.clock.Now()) {
		return time.Time{}, ""
	}
	return b.pausedUntil, b.pauseReason
}

// BudgetState is a budget at one moment, for metrics and the delivery page.
type BudgetState struct {
	// Burst is this process's share of the 10-second rolling window (the
	// tier's allowance, or what X-HubSpot-RateLimit-Max said, split by
	// SetShare) and the calls in it, others' included as
	// X-HubSpot-RateLimit-Remaining reported them.
	Burst WindowState
	// Search is the search endpoints' per-second window.
	Search WindowState
	// Daily is the account's daily allowance and the calls spent today, by
	// every app of the account, as HubSpot's X-HubSpot-RateLimit-Daily and
	// -Daily-Remaining headers last said (a DAILY 429 means none left). Its
	// Limit is 0 until a response reports it (OAuth tokens have none); Used
	// starts at 0 again at DailyReset.
	Daily WindowState
	// DailyReset is the next midnight in the account's time zone.
	DailyReset time.Time
	// PausedUntil is when calls may go again, zero when they may go now;
	// PauseReason says why they may not.
	PausedUntil time.Time
	PauseReason string
}

// WindowState is a limit and the calls it has spent in its current window.
type WindowState struct {
	Limit, Used int
}

// Left is what the window may still spend, never below 0.
func (w WindowState) Left() int { return max(0, w.Limit-w.Used) }

// State reads the budget's limits, what each has used and its pause.
func (b *Budget) State() BudgetState {
	s := BudgetState{
		Burst:      WindowState{Limit: b.Burst.Max(), Used: b.Burst.Used()},
		Search:     WindowState{Limit: b.Search.Max(), Used: b.Search.Used()},
		DailyReset: b.nextReset(),
	}
	s.PausedUntil, s.PauseReason = b.PausedUntil()
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Daily.Limit = b.dailyLimit
	// A figure from before today's midnight is yesterday's.
	if b.dailyLimit > 0 && !b.dailySeen.IsZero() && !b.dailySeen.Before(s.DailyReset.AddDate(0, 0, -1)) {
		s.Daily.Used = max(0, b.dailyLimit-b.dailyRemaining)
	}
	return s
}

// Now is the budget's clock's time.
func (b *Budget) Now() time.Time { return b.clock.Now() }

// nextReset is the next midnight in the account's time zone.
func (b *Budget) nextReset() time.Time {
	now := b.clock.Now().In(b.loc)
	y, m, d := now.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, b.loc)
}

func headerInt(h http.Header, name string) (int, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}
