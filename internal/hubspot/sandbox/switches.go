package sandbox

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// faults are the switches that make the sandbox misbehave on purpose.
type faults struct {
	failCount  int
	failStatus int
	burstCount int
	lockCount  int
	latency    time.Duration
	// failUntil ends a storm of failures: until then every API request
	// fails with failStatuses in turn (failTurn is the next one).
	failUntil    time.Time
	failStatuses []int
	failTurn     int
	// slowBy holds the answers of slowRatio of the requests to each path
	// that reach their endpoint; slowCredit spreads them evenly, by path.
	slowBy     time.Duration
	slowRatio  float64
	slowCredit map[string]float64
	// missingScope, when set, is the scope every API request is refused
	// for with a 403 MISSING_SCOPES.
	missingScope string
	// withheldScopes are scopes the token lacks: only the endpoints that
	// need one of them answer 403 MISSING_SCOPES.
	withheldScopes map[string]bool
}

type faultKind int

const (
	faultNone faultKind = iota
	faultStatus
	faultLock
	faultBurst
)

type fault struct {
	kind   faultKind
	status int
}

// take consumes one pending fault at now, in the order: a storm of
// failures, injected status, 423, 429 burst.
func (f *faults) take(now time.Time) fault {
	switch {
	case now.Before(f.failUntil):
		status := f.failStatuses[f.failTurn%len(f.failStatuses)]
		f.failTurn++
		return fault{kind: faultStatus, status: status}
	case f.failCount > 0:
		f.failCount--
		return fault{kind: faultStatus, status: f.failStatus}
	case f.lockCount > 0:
		f.lockCount--
		return fault{kind: faultLock}
	case f.burstCount > 0:
		f.burstCount--
		return fault{kind: faultBurst}
	}
	return fault{}
}

// FailNext makes the next n API requests fail with status (a 5xx such as
// 500, 502, 503 or 504; other values become 500) and a HubSpot error body.
func (s *Server) FailNext(n, status int) {
	if status < 500 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failCount, s.faults.failStatus = n, status
}

// slowed reports how long to hold the answer of a request to path that
// reached its endpoint: slowBy for slowRatio of the requests to each path,
// spread evenly and starting with the first, else 0.
func (f *faults) slowed(path string) time.Duration {
	if f.slowBy <= 0 || f.slowRatio <= 0 {
		return 0
	}
	credit, ok := f.slowCredit[path]
	if !ok {
		credit = 1 - f.slowRatio
	}
	credit += f.slowRatio
	slow := credit >= 1
	if slow {
		credit--
	}
	f.slowCredit[path] = credit
	if !slow {
		return 0
	}
	return f.slowBy
}

// FailFor makes every API request fail for d from now, with statuses in
// turn (each a 5xx; others become 500; none means 500), as when HubSpot's
// API is down or overloaded for a while: [O-err] documents 502 and 504 when
// processing limits are met and 503 while it is unavailable, each to be
// retried after a pause. It takes precedence over the other switches.
func (s *Server) FailFor(d time.Duration, statuses ...int) {
	if len(statuses) == 0 {
		statuses = []int{http.StatusInternalServerError}
	}
	codes := make([]int, len(statuses))
	for i, status := range statuses {
		if status < 500 || status > 599 {
			status = http.StatusInternalServerError
		}
		codes[i] = status
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failUntil, s.faults.failStatuses, s.faults.failTurn = s.cfg.Now().Add(d), codes, 0
}

// SlowAnswers makes ratio (0 to 1) of the API requests to each path that
// reach their endpoint be applied at once and answered d later, the first
// request to each path among them, so the first write of each kind is a
// slow one. A client whose timeout is shorter than d gives up on a request
// HubSpot did apply, as HubSpot carries on with a request whose caller went
// away; its retry must not apply it twice. Ratio 0, or d 0, turns it off.
func (s *Server) SlowAnswers(d time.Duration, ratio float64) {
	ratio = min(max(ratio, 0), 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.slowBy, s.faults.slowRatio, s.faults.slowCredit = d, ratio, map[string]float64{}
}

// RateLimitBurst makes the next n API requests, search and events
// included, get a 429 TEN_SECONDLY_ROLLING.
func (s *Server) RateLimitBurst(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.burstCount = n
}

// LockNext makes the next n API requests get 423 Locked ([O-err]).
func (s *Server) LockNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.lockCount = n
}

// SetLatency delays every API request by d before it is answered.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// AcceptToken adds token to the accepted tokens (Config.Tokens), as when a
// refused token is granted access again.
func (s *Server) AcceptToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Tokens = append(s.cfg.Tokens, token)
}

// RequireScope makes every API request from an accepted token get 403
// MISSING_SCOPES naming scope in errors[0].context.requiredGranularScopes,
// with links.scopes, as HubSpot answers a token that lacks a scope
// [O-objapis]. An empty scope (or ClearFaults) turns it off.
func (s *Server) RequireScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.missingScope = scope
}

// WithholdScope makes the endpoints that need scope answer 403
// MISSING_SCOPES naming it, as HubSpot answers a token granted other scopes
// but not that one; the rest of the API answers as before. Of the
// endpoints, only the email events API names its scope (content). ClearFaults
// grants it again.
func (s *Server) WithholdScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.withheldScopes == nil {
		s.faults.withheldScopes = map[string]bool{}
	}
	s.faults.withheldScopes[scope] = true
}

// scopeGranted answers 403 MISSING_SCOPES and reports false when scope is
// withheld.
func (s *Server) scopeGranted(w http.ResponseWriter, scope string) bool {
	s.mu.Lock()
	withheld := s.faults.withheldScopes[scope]
	s.mu.Unlock()
	if withheld {
		writeError(w, http.StatusForbidden, "MISSING_SCOPES", "", missingScopes(scope))
	}
	return !withheld
}

// ExhaustDaily spends the account's daily budget: every non-OAuth request
// gets a 429 DAILY until the account's next midnight.
func (s *Server) ExhaustDaily() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollDay(s.cfg.Now())
	s.daily.used = s.dailyLimit()
}

// ClearFaults turns off every switch: injected statuses, storms of
// failures, bursts, locks, latency and slow answers. Rate budgets and data stay as they are.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

// Stats returns the API requests answered so far, by endpoint ("POST
// /crm/v3/objects/{objectType}/batch/upsert") and status.
func (s *Server) Stats() map[string]map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[int]int, len(s.stats))
	for k, m := range s.stats {
		c := make(map[int]int, len(m))
		for st, n := range m {
			c[st] = n
		}
		out[k] = c
	}
	return out
}

type countBody struct {
	Count    int     `json:"count"`
	Status   int     `json:"status"`
	MS       int     `json:"ms"`
	Statuses []int   `json:"statuses"`
	Ratio    float64 `json:"ratio"`
}

func readControl(w http.ResponseWriter, r *http.Request) (countBody, bool) {
	var b countBody
	data, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "reading body: "+err.Error(), nil)
		return b, false
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &b); err != nil {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "parsing body: "+err.Error(), nil)
			return b, false
		}
	}
	if b.Count < 0 || b.MS < 0 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "count and ms must not be negative", nil)
		return b, false
	}
	if b.Ratio < 0 || b.Ratio > 1 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "ratio must be between 0 and 1", nil)
		return b, false
	}
	for _, status := range b.Statuses {
		if status < 500 || status > 599 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "statuses must be 5xx, got "+strconv.Itoa(status), nil)
			return b, false
		}
	}
	return b, true
}

func (s *Server) handleCtlFail(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	if b.Status == 0 {
		b.Status = http.StatusInternalServerError
	}
	if b.Status < 500 || b.Status > 599 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "status must be a 5xx, got "+strconv.Itoa(b.Status), nil)
		return
	}
	s.FailNext(b.Count, b.Status)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlFailFor(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	if b.MS == 0 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "ms is required: how long every request fails", nil)
		return
	}
	s.FailFor(time.Duration(b.MS)*time.Millisecond, b.Statuses...)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlSlow(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	s.SlowAnswers(time.Duration(b.MS)*time.Millisecond, b.Ratio)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlBurst(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	s.RateLimitBurst(b.Count)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlLock(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	s.LockNext(b.Count)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlLatency(w http.ResponseWriter, r *http.Request) {
	b, ok := readControl(w, r)
	if !ok {
		return
	}
	s.SetLatency(time.Duration(b.MS) * time.Millisecond)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlExhaustDaily(w http.ResponseWriter, r *http.Request) {
	s.ExhaustDaily()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlClear(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCtlReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// handleCtlStats answers {"total":N,"endpoints":{"POST /crm/...":{"200":3,"429":1}}}.
func (s *Server) handleCtlStats(w http.ResponseWriter, r *http.Request) {
	stats := s.Stats()
	out := struct {
		Total     int                       `json:"total"`
		Endpoints map[string]map[string]int `json:"endpoints"`
	}{Endpoints: map[string]map[string]int{}}
	for k, m := range stats {
		c := map[string]int{}
		for st, n := range m {
			c[strconv.Itoa(st)] = n
			out.Total += n
		}
		out.Endpoints[k] = c
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCtlEvents answers {"results":[...],"next":N}: the events received
// after the first ?from= (default 0), each with the sandbox's receivedAt,
// and next, the from that lists only the events received later (see
// EventsFrom).
func (s *Server) handleCtlEvents(w http.ResponseWriter, r *http.Request) {
	from := 0
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "from must be a count of events, got "+strconv.Quote(v), nil)
			return
		}
		from = n
	}
	events, next := s.EventsFrom(from)
	writeJSON(w, http.StatusOK, map[string]any{"results": events, "next": next})
}

func (s *Server) handleCtlObjects(w http.ResponseWriter, r *http.Request) {
	typ, ok := canonicalType(r.PathValue("objectType"))
	if !ok {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "unknown object type "+r.PathValue("objectType"), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": s.Objects(typ)})
}

func (s *Server) handleCtlAssociations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"results": s.Associations()})
}

func (s *Server) handleCtlLists(w http.ResponseWriter, r *http.Request) {
	type listOut struct {
		ListID  string   `json:"listId"`
		Name    string   `json:"name"`
		Members []string `json:"members"`
	}
	out := []listOut{}
	s.mu.Lock()
	for _, id := range slices.Sorted(maps.Keys(s.lists)) {
		l := s.lists[id]
		out = append(out, listOut{ListID: strconv.FormatInt(id, 10), Name: l.name, Members: idStrings(l.sortedMembers())})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}
