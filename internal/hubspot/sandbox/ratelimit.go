package sandbox

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const tenSeconds = 10 * time.Second

// window is a rolling window: the times of the requests it admitted.
type window struct {
	times []time.Time
}

// prune forgets the requests older than d before now.
func (w *window) prune(now time.Time, d time.Duration) {
	cut := now.Add(-d)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	if i > 0 {
		w.times = append(w.times[:0], w.times[i:]...)
	}
}

// since counts the admitted requests in the last d.
func (w *window) since(now time.Time, d time.Duration) int {
	cut := now.Add(-d)
	n := 0
	for j := len(w.times) - 1; j >= 0 && w.times[j].After(cut); j-- {
		n++
	}
	return n
}

// daily is the account's daily counter; it restarts when the date in the
// account's time zone changes.
type daily struct {
	day  string
	used int
}

// policy is the limit a request ran into.
type policy struct {
	policy            string
	message           string
	retryAfterSeconds int
}

// verdict is the result of admission: the rate-limit headers to send and,
// when the request is refused, the policy that refused it.
type verdict struct {
	headers  bool // send the X-HubSpot-RateLimit-* headers
	daily    bool // include the Daily ones
	max      int
	remain   int
	secMax   int
	secRem   int
	dayMax   int
	dayRem   int
	rejected *policy
}

func (v verdict) writeHeaders(w http.ResponseWriter) {
	if !v.headers {
		return
	}
	h := w.Header()
	if v.daily {
		h.Set("X-HubSpot-RateLimit-Daily", strconv.Itoa(v.dayMax))
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.Itoa(v.dayRem))
	}
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
	h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(v.max))
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(v.remain))
	h.Set("X-HubSpot-RateLimit-Secondly", strconv.Itoa(v.secMax))
	h.Set("X-HubSpot-RateLimit-Secondly-Remaining", strconv.Itoa(v.secRem))
}

func (s *Server) isOAuth(token string) bool {
	return s.cfg.Tier == "oauth" || strings.HasPrefix(token, s.cfg.OAuthTokenPrefix)
}

// tenSecondLimit is the token's requests per 10 s ([O-usage], [O24-usage]).
func (s *Server) tenSecondLimit(token string) int {
	if s.isOAuth(token) {
		return 110
	}
	if s.cfg.TenSecondlyLimit > 0 {
		return s.cfg.TenSecondlyLimit
	}
	switch s.cfg.Tier {
	case "professional", "enterprise":
		return 190
	case "api-add-on":
		return 250
	default:
		return 100
	}
}

// dailyLimit is the account's requests per day ([O-usage]).
func (s *Server) dailyLimit() int {
	if s.cfg.DailyLimit > 0 {
		return s.cfg.DailyLimit
	}
	switch s.cfg.Tier {
	case "professional":
		return 625_000
	case "enterprise":
		return 1_000_000
	case "api-add-on":
		return 1_625_000
	default:
		return 250_000
	}
}

// dayKey is the account-local date of t; the daily limit resets when it changes.
func (s *Server) dayKey(t time.Time) string {
	return t.In(s.cfg.TimeZone).Format("2006-01-02")
}

// secondsToMidnight is how long until the account's next midnight, rounded up.
func (s *Server) secondsToMidnight(now time.Time) int {
	local := now.In(s.cfg.TimeZone)
	y, m, d := local.Date()
	next := time.Date(y, m, d+1, 0, 0, 0, 0, s.cfg.TimeZone)
	return int(math.Ceil(next.Sub(now).Seconds()))
}

func (s *Server) rollDay(now time.Time) {
	if day := s.dayKey(now); s.daily.day != day {
		s.daily = daily{day: day}
	}
}

var (
	policyDaily = policy{policy: "DAILY", message: "You have reached your daily limit."}
	policyTen   = policy{policy: "TEN_SECONDLY_ROLLING", message: "You have reached your ten_secondly_rolling limit."}
	policySec   = policy{policy: "SECONDLY", message: "You have reached your secondly limit.", retryAfterSeconds: 1}
)

// admit decides whether a request may proceed and counts it if so. burst
// forces a TEN_SECONDLY_ROLLING refusal. Callers hold s.mu.
func (s *Server) admit(token string, class limitClass, burst bool) verdict {
	now := s.cfg.Now()
	oauth := s.isOAuth(token)
	s.rollDay(now)
	dayMax := s.dailyLimit()

	switch class {
	case limitEvents:
		// Exempt from the daily and ten-secondly limits ([S]); own per-second limit ([O-events]).
		if burst {
			p := policyTen
			p.retryAfterSeconds = 10
			return verdict{rejected: &p}
		}
		s.eventsWin.prune(now, time.Second)
		if len(s.eventsWin.times) >= s.cfg.EventsPerSecond {
			p := policySec
			return verdict{rejected: &p}
		}
		s.eventsWin.times = append(s.eventsWin.times, now)
		return verdict{}

	case limitSearch:
		// Own 5/s limit and no rate-limit headers ([O-search], [O24-usage]).
		if burst {
			p := policyTen
			p.retryAfterSeconds = 10
			return verdict{rejected: &p}
		}
		if !oauth && s.daily.used >= dayMax {
			p := policyDaily
			p.retryAfterSeconds = s.secondsToMidnight(now)
			return verdict{rejected: &p}
		}
		s.searchWin.prune(now, time.Second)
		if len(s.searchWin.times) >= s.cfg.SearchPerSecond {
			p := policySec
			return verdict{rejected: &p}
		}
		s.searchWin.times = append(s.searchWin.times, now)
		if !oauth {
			s.daily.used++
		}
		return verdict{}
	}

	limit := s.tenSecondLimit(token)
	win := s.windows[token]
	if win == nil {
		win = &window{}
		s.windows[token] = win
	}
	win.prune(now, tenSeconds)
	v := verdict{
		headers: true,
		daily:   !oauth,
		max:     limit,
		secMax:  limit / 10,
		dayMax:  dayMax,
	}
	fill := func() {
		v.remain = limit - len(win.times)
		v.secRem = max(0, v.secMax-win.since(now, time.Second))
		v.dayRem = max(0, dayMax-s.daily.used)
	}
	switch {
	case burst:
		p := policyTen
		p.retryAfterSeconds = 10
		v.rejected = &p
	case !oauth && s.daily.used >= dayMax:
		p := policyDaily
		p.retryAfterSeconds = s.secondsToMidnight(now)
		v.rejected = &p
	case len(win.times) >= limit:
		p := policyTen
		p.retryAfterSeconds = max(1, int(math.Ceil(win.times[0].Add(tenSeconds).Sub(now).Seconds())))
		v.rejected = &p
	default:
		win.times = append(win.times, now)
		if !oauth {
			s.daily.used++
		}
	}
	fill()
	if v.remain < 0 {
		v.remain = 0
	}
	return v
}
