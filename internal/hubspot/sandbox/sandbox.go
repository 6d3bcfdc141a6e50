package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config configures a Server. The zero value is a new free-tier
// portal that accepts any bearer token.
type Config struct {
	// Tier is the account's product tier; it sizes the rate limits as
	// HubSpot's usage guidelines document them ([O-usage]):
	//
	//	free, starter   100 requests per 10 s per token, 250,000 a day per account
	//	professional    190 per 10 s, 625,000 a day
	//	enterprise      190 per 10 s, 1,000,000 a day
	//	api-add-on      250 per 10 s, 1,625,000 a day (professional's 625,000
	//	                plus one 1,000,000 increase)
	//	oauth           every token is an OAuth access token: 110 per 10 s,
	//	                no daily limit and no Daily headers
	//
	// Default "free".
	Tier string

	// HubID is the portal id, used in event names (pe{HubID}_...), error
	// messages and 429 bodies. Default 12345678.
	HubID int64

	// Tokens lists the accepted bearer tokens. Empty means any non-empty
	// token is accepted. Each distinct token is one app with its own
	// 10-second budget; the daily budget is the account's, shared by all
	// non-OAuth tokens ([O-usage]).
	Tokens []string

	// OAuthTokenPrefix marks OAuth access tokens: a token that starts with it
	// gets OAuth limits (110 per 10 s, no daily limit, no Daily headers)
	// whatever the Tier. Default "oauth-".
	OAuthTokenPrefix string

	// TenSecondlyLimit overrides the tier's requests per 10-second rolling
	// window. 0 means the tier's figure.
	TenSecondlyLimit int

	// DailyLimit overrides the tier's daily requests per account. 0 means the
	// tier's figure.
	DailyLimit int

	// SearchPerSecond is the search endpoints' own limit per account
	// ([O-search]). Default 5.
	SearchPerSecond int

	// EventsPerSecond is the custom-event send endpoints' own limit per
	// account ([O-events]). Default 1250.
	EventsPerSecond int

	// Now is the clock used for rate windows, the daily reset and record
	// timestamps. Default time.Now.
	Now func() time.Time

	// SendRetryAfter adds a Retry-After header (seconds) to 429 responses.
	// HubSpot does not document one on 429s, so it is off by default.
	SendRetryAfter bool

	// TimeZone is the account's time-zone setting; the daily limit resets at
	// its midnight ([O24-usage]). Default UTC.
	TimeZone *time.Location

	// SearchLag makes search see every record as it was this long ago,
	// like HubSpot's search index, where "it may take a few moments for
	// newly created or updated CRM objects to appear" ([O-search]): a
	// record younger than the lag is not found, and a value written within
	// it is not matched yet. Reads and writes see the record at once.
	// Default 0: no lag.
	SearchLag time.Duration

	// SearchResultsCap is how many results one search query pages through
	// before paging beyond them is refused with 400 ([O-search]: 10,000).
	// Tests shrink it to reach the cap with few records. Default 10000.
	SearchResultsCap int

	// AppID is the id of the app a token belongs to, reported as the
	// sourceId of its writes in the change journal. Default 1160452.
	AppID int64

	// AppIDs gives tokens their own app ids, over AppID.
	AppIDs map[string]int64

	// UIUserID is the portal user whose edits /_sandbox/edit makes, reported
	// as sourceId "userId:N". Default 45678.
	UIUserID int64

	// MergeKeepsPrimaryID makes a merge of contacts or companies keep the
	// primary record's id, HubSpot's behaviour before it began to create a
	// new record with a new id for the merged record ([O-cl-merge]). Deals
	// always keep the primary's id.
	MergeKeepsPrimaryID bool

	// EmailUpsertAllOrNothing refuses per-input (207) results on contact
	// upserts by email: one bad input fails the whole batch even with
	// objectWriteTraceIds. HubSpot's contacts guide says "Partial upserts are
	// not supported when using email as the idProperty"; whether that means
	// this is not documented, so it is off by default.
	EmailUpsertAllOrNothing bool
}

// Server is an in-memory HubSpot portal that answers the parts of HubSpot's
// API that switchyard uses, with HubSpot's limits, errors and rate-limit
// headers. It is an http.Handler; its methods are safe for concurrent use.
//
// Control endpoints under /_sandbox/ need no token and are not counted:
//
//	POST /_sandbox/fail             {"count":N,"status":503}  next N requests fail with status
//	POST /_sandbox/fail-for         {"ms":N,"statuses":[500,503]}  every request fails for N ms, statuses in turn
//	POST /_sandbox/ratelimit-burst  {"count":N}               next N requests get 429 TEN_SECONDLY_ROLLING
//	POST /_sandbox/exhaust-daily                               DAILY 429s until the account's midnight
//	POST /_sandbox/lock             {"count":N}               next N requests get 423 Locked
//	POST /_sandbox/latency          {"ms":N}                  delay every request
//	POST /_sandbox/slow             {"ms":N,"ratio":0.5}      apply that share of each path's requests (the first one too), answer them N ms later
//	POST /_sandbox/faults/clear                                clear the switches above
//	POST /_sandbox/reset                                       a fresh portal: data, limits, switches, stats
//	GET  /_sandbox/stats                                       request counts by endpoint and status
//	GET  /_sandbox/events?from=N                               custom events received after the first N (default 0), with when
//	                                                           the sandbox received each, and next: the N for later ones
//	GET  /_sandbox/objects/{objectType}                        every record of a type
//	GET  /_sandbox/associations                                every default association
//	GET  /_sandbox/lists                                       every list with its members
//	POST /_sandbox/email-events     {"events":[{...}]}        add marketing email events (HubSpot's field names)
//	POST /_sandbox/edit/{objectType}      {"properties":{...},"associations":[{"toObjectType":"contacts","toObjectId":"1001"}]}
//	POST /_sandbox/edit/{objectType}/{id} {"properties":{...}}  create or change a record as a person in HubSpot's UI would
//	GET  /_sandbox/changes?from=N                              the change journal (see Changes) from position N
//	GET  /_sandbox/webhooks                                    webhook counters and switches (see SendWebhooks)
//	POST /_sandbox/webhooks/switches {"shuffle":true,"duplicateRatio":R,"delayRatio":R,"delayMs":N,"staleTimestamp":true,"wrongSecret":true}
//	                                                           misbehave as HubSpot may; {} turns them off
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	routes map[string]limitClass // pattern -> which limiter applies

	mu sync.Mutex
	portalState
	journal journal
}

// portalState is everything a reset clears. Guarded by Server.mu.
type portalState struct {
	nextID     int64
	nextListID int64
	objects    map[string]*objects    // "contacts", "companies", "deals"
	props      map[string]*properties // "contacts", "companies", "deals"
	assocs     map[assocKey]map[int]bool
	events     []Event
	// eventUUIDs holds the uuid of every occurrence received, by event
	// name: HubSpot keeps the first occurrence of a uuid.
	eventUUIDs map[string]map[string]bool
	eventDefs  map[string]*eventDefinition
	lists      map[int64]*list
	email      emailEventState

	windows   map[string]*window // token -> 10-second window
	daily     daily
	searchWin window
	eventsWin window

	faults faults
	stats  map[string]map[int]int

	webhookSwitches WebhookSwitches
	webhookStats    WebhookStats
}

type limitClass int

const (
	limitGeneral limitClass = iota // the 10-second window and the daily budget
	limitSearch                    // 5/s, counts against the day, no headers
	limitEvents                    // 1250/s, exempt from both general limits
)

// Validate reports a configuration New would not honour: an unknown
// Tier or a negative limit.
func (c Config) Validate() error {
	switch c.Tier {
	case "", "free", "starter", "professional", "enterprise", "api-add-on", "oauth":
	default:
		return fmt.Errorf("tier %q: want free, starter, professional, enterprise, api-add-on or oauth", c.Tier)
	}
	if c.TenSecondlyLimit < 0 || c.DailyLimit < 0 || c.SearchPerSecond < 0 || c.EventsPerSecond < 0 || c.SearchLag < 0 || c.SearchResultsCap < 0 {
		return fmt.Errorf("limits and SearchLag must not be negative")
	}
	return nil
}

// New returns a sandbox portal with the default property catalogue
// and no records. An unknown Tier gets the free tier's limits; call
// Validate first to refuse one.
func New(cfg Config) *Server {
	if cfg.Tier == "" {
		cfg.Tier = "free"
	}
	if cfg.HubID == 0 {
		cfg.HubID = 12345678
	}
	if cfg.OAuthTokenPrefix == "" {
		cfg.OAuthTokenPrefix = "oauth-"
	}
	if cfg.SearchResultsCap == 0 {
		cfg.SearchResultsCap = searchMaxResults
	}
	if cfg.SearchPerSecond == 0 {
		cfg.SearchPerSecond = 5
	}
	if cfg.EventsPerSecond == 0 {
		cfg.EventsPerSecond = 1250
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TimeZone == nil {
		cfg.TimeZone = time.UTC
	}
	if cfg.AppID == 0 {
		cfg.AppID = 1160452
	}
	if cfg.UIUserID == 0 {
		cfg.UIUserID = 45678
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), routes: map[string]limitClass{}}
	s.portalState = s.freshState()
	s.registerRoutes()
	return s
}

func (s *Server) freshState() portalState {
	return portalState{
		nextID:     1001,
		nextListID: 1,
		objects: map[string]*objects{
			"contacts":  newSBObjects("contacts"),
			"companies": newSBObjects("companies"),
			"deals":     newSBObjects("deals"),
		},
		props: map[string]*properties{
			"contacts":  defaultProperties("contacts"),
			"companies": defaultProperties("companies"),
			"deals":     defaultProperties("deals"),
		},
		assocs:     map[assocKey]map[int]bool{},
		eventUUIDs: map[string]map[string]bool{},
		eventDefs:  map[string]*eventDefinition{},
		lists:      map[int64]*list{},
		windows:    map[string]*window{},
		stats:      map[string]map[int]int{},
	}
}

// Reset makes the sandbox a fresh portal again: no records, associations,
// events or lists, the default catalogue, full rate budgets, no switches and
// no stats. The change journal goes on, so that its positions stay valid.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.portalState = s.freshState()
}

func (s *Server) registerRoutes() {
	g, se, ev := limitGeneral, limitSearch, limitEvents
	api := func(class limitClass, pattern string, h http.HandlerFunc, versioned ...string) {
		for _, p := range append([]string{pattern}, versioned...) {
			s.routes[p] = class
			s.mux.HandleFunc(p, h)
		}
	}

	// Objects.
	api(g, "POST /crm/v3/objects/{objectType}/batch/upsert", s.handleBatchUpsert, "POST /crm/objects/2026-03/{objectType}/batch/upsert")
	api(g, "POST /crm/v3/objects/{objectType}/batch/create", s.handleBatchCreate, "POST /crm/objects/2026-03/{objectType}/batch/create")
	api(g, "POST /crm/v3/objects/{objectType}/batch/update", s.handleBatchUpdate, "POST /crm/objects/2026-03/{objectType}/batch/update")
	api(g, "POST /crm/v3/objects/{objectType}/batch/read", s.handleBatchRead, "POST /crm/objects/2026-03/{objectType}/batch/read")
	api(g, "GET /crm/v3/objects/{objectType}/{objectId}", s.handleGetObject, "GET /crm/objects/2026-03/{objectType}/{objectId}")
	api(g, "GET /crm/v3/objects/{objectType}", s.handleListObjects, "GET /crm/objects/2026-03/{objectType}")
	api(se, "POST /crm/v3/objects/{objectType}/search", s.handleSearch, "POST /crm/objects/2026-03/{objectType}/search")
	api(g, "DELETE /crm/v3/objects/{objectType}/{objectId}", s.handleArchive, "DELETE /crm/objects/2026-03/{objectType}/{objectId}")
	api(g, "POST /crm/v3/objects/{objectType}/merge", s.handleMerge, "POST /crm/objects/2026-03/{objectType}/merge")
	api(g, "POST /crm/v3/objects/contacts/gdpr-delete", s.handleGDPRDelete, "POST /crm/objects/2026-03/contacts/gdpr-delete")

	// The account.
	api(g, "GET /account-info/v3/details", s.handleAccountDetails)

	// Properties.
	api(g, "GET /crm/v3/properties/{objectType}", s.handleListProperties, "GET /crm/properties/2026-03/{objectType}")
	api(g, "GET /crm/v3/properties/{objectType}/{propertyName}", s.handleGetProperty, "GET /crm/properties/2026-03/{objectType}/{propertyName}")
	api(g, "POST /crm/v3/properties/{objectType}", s.handleCreateProperty, "POST /crm/properties/2026-03/{objectType}")
	api(g, "GET /crm/v3/properties/{objectType}/groups", s.handleListGroups, "GET /crm/properties/2026-03/{objectType}/groups")
	api(g, "POST /crm/v3/properties/{objectType}/groups", s.handleCreateGroup, "POST /crm/properties/2026-03/{objectType}/groups")

	// Associations v4.
	api(g, "POST /crm/v4/associations/{fromType}/{toType}/batch/associate/default", s.handleAssociateDefault, "POST /crm/associations/2026-03/{fromType}/{toType}/batch/associate/default")
	api(g, "POST /crm/v4/associations/{fromType}/{toType}/batch/create", s.handleAssociateCreate, "POST /crm/associations/2026-03/{fromType}/{toType}/batch/create")
	api(g, "POST /crm/v4/associations/{fromType}/{toType}/batch/read", s.handleAssociationsBatchRead, "POST /crm/associations/2026-03/{fromType}/{toType}/batch/read")
	api(g, "PUT /crm/v4/objects/{fromType}/{fromId}/associations/default/{toType}/{toId}", s.handleAssociateOneDefault)
	api(g, "GET /crm/v4/objects/{fromType}/{fromId}/associations/{toType}", s.handleAssociationsList)

	// Custom behavioral events.
	api(ev, "POST /events/v3/send", s.handleEventSend, "POST /events/custom/2026-03/send")
	api(ev, "POST /events/v3/send/batch", s.handleEventSendBatch, "POST /events/custom/2026-03/send/batch")
	api(g, "POST /events/v3/event-definitions", s.handleCreateEventDefinition, "POST /events/2026-03/event-definitions")
	api(g, "GET /events/v3/event-definitions/{eventName}", s.handleGetEventDefinition, "GET /events/2026-03/event-definitions/{eventName}")
	api(g, "POST /events/v3/event-definitions/{eventName}/property", s.handleCreateEventProperty, "POST /events/2026-03/event-definitions/{eventName}/property")

	// Lists v3. hubspot-api-client 12.0.0's ListsApi.create posts to
	// /crm/v3/lists/, with the slash.
	api(g, "POST /crm/v3/lists", s.handleCreateList, "POST /crm/v3/lists/", "POST /crm/lists/2026-03")
	api(g, "GET /crm/v3/lists/{listId}", s.handleGetList, "GET /crm/lists/2026-03/{listId}")
	api(g, "GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}", s.handleGetListByName, "GET /crm/lists/2026-03/object-type-id/{objectTypeId}/name/{listName}")
	api(g, "PUT /crm/v3/lists/{listId}/memberships/add-and-remove", s.handleMembershipsAddAndRemove, "PUT /crm/lists/2026-03/{listId}/memberships/add-and-remove")
	api(g, "PUT /crm/v3/lists/{listId}/memberships/add", s.handleMembershipsAdd, "PUT /crm/lists/2026-03/{listId}/memberships/add")
	api(g, "PUT /crm/v3/lists/{listId}/memberships/remove", s.handleMembershipsRemove, "PUT /crm/lists/2026-03/{listId}/memberships/remove")
	api(g, "GET /crm/v3/lists/{listId}/memberships", s.handleMembershipsGet, "GET /crm/lists/2026-03/{listId}/memberships")

	// Marketing email events (emailevents.go).
	api(g, "GET /email/public/v1/events", s.handleEmailEvents)
	api(g, "GET /email/public/v1/events/{created}/{id}", s.handleEmailEvent)
	s.mux.HandleFunc("POST /_sandbox/email-events", s.handleCtlEmailEvents)

	// Anything else: HubSpot-shaped 404.
	api(g, "/", s.handleNotFound)

	// Control endpoints.
	s.mux.HandleFunc("POST /_sandbox/fail", s.handleCtlFail)
	s.mux.HandleFunc("POST /_sandbox/fail-for", s.handleCtlFailFor)
	s.mux.HandleFunc("POST /_sandbox/slow", s.handleCtlSlow)
	s.mux.HandleFunc("POST /_sandbox/ratelimit-burst", s.handleCtlBurst)
	s.mux.HandleFunc("POST /_sandbox/exhaust-daily", s.handleCtlExhaustDaily)
	s.mux.HandleFunc("POST /_sandbox/lock", s.handleCtlLock)
	s.mux.HandleFunc("POST /_sandbox/latency", s.handleCtlLatency)
	s.mux.HandleFunc("POST /_sandbox/faults/clear", s.handleCtlClear)
	s.mux.HandleFunc("POST /_sandbox/reset", s.handleCtlReset)
	s.mux.HandleFunc("GET /_sandbox/stats", s.handleCtlStats)
	s.mux.HandleFunc("GET /_sandbox/events", s.handleCtlEvents)
	s.mux.HandleFunc("GET /_sandbox/objects/{objectType}", s.handleCtlObjects)
	s.mux.HandleFunc("GET /_sandbox/associations", s.handleCtlAssociations)
	s.mux.HandleFunc("GET /_sandbox/lists", s.handleCtlLists)
	s.mux.HandleFunc("POST /_sandbox/edit/{objectType}", s.handleCtlEdit)
	s.mux.HandleFunc("POST /_sandbox/edit/{objectType}/{objectId}", s.handleCtlEdit)
	s.mux.HandleFunc("GET /_sandbox/changes", s.handleCtlChanges)
	s.mux.HandleFunc("GET /_sandbox/webhooks", s.handleCtlWebhooks)
	s.mux.HandleFunc("POST /_sandbox/webhooks/switches", s.handleCtlWebhookSwitches)
}

// ServeHTTP answers one request: latency, authentication, injected faults
// and rate limits, then the endpoint. Every API request is counted in the
// stats under its route pattern and final status.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		s.mux.ServeHTTP(w, r)
		return
	}
	_, pattern := s.mux.Handler(r)
	class := s.routes[pattern]
	if pattern == "/" || pattern == "" {
		pattern = "unmatched"
	}
	rec := &recorder{ResponseWriter: w}
	s.serveAPI(rec, r, class)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	key := r.Method + " " + strings.TrimPrefix(pattern, r.Method+" ")
	if pattern == "unmatched" {
		key = r.Method + " (unmatched)"
	}
	s.mu.Lock()
	if s.stats[key] == nil {
		s.stats[key] = map[int]int{}
	}
	s.stats[key][rec.status]++
	s.mu.Unlock()
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, class limitClass) {
	s.mu.Lock()
	latency := s.faults.latency
	s.mu.Unlock()
	if latency > 0 && !sleep(r.Context(), latency) {
		return
	}

	token, ok := bearer(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. Send a private app or OAuth access token as 'Authorization: Bearer <token>'.", nil)
		return
	}
	if !s.tokenAccepted(token) {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"The access token provided is not valid for this portal.", nil)
		return
	}
	s.mu.Lock()
	scope := s.faults.missingScope
	s.mu.Unlock()
	if scope != "" {
		writeError(w, http.StatusForbidden, "MISSING_SCOPES", "", missingScopes(scope))
		return
	}

	s.mu.Lock()
	fault := s.faults.take(s.cfg.Now())
	var verdict verdict
	if fault.kind == faultNone || fault.kind == faultBurst {
		verdict = s.admit(token, class, fault.kind == faultBurst)
	}
	s.mu.Unlock()

	switch fault.kind {
	case faultStatus:
		writeError(w, fault.status, "INTERNAL_ERROR",
			"The sandbox was told to fail this request ("+http.StatusText(fault.status)+").", nil)
		return
	case faultLock:
		writeError(w, http.StatusLocked, "LOCKED",
			"The record is locked while a large volume of data is synced. Wait at least 2 seconds and retry.", nil)
		return
	}
	verdict.writeHeaders(w)
	if verdict.rejected != nil {
		s.writeRateLimited(w, verdict)
		return
	}
	s.mu.Lock()
	hold := s.faults.slowed(r.Method + " " + r.URL.Path)
	s.mu.Unlock()
	if hold == 0 {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Applied now, answered late: a caller that gave up in between misses
	// an answer to a request that took effect.
	answer := &heldAnswer{header: http.Header{}}
	s.mux.ServeHTTP(answer, r)
	sleep(r.Context(), hold)
	answer.writeTo(w)
}

func (s *Server) tokenAccepted(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cfg.Tokens) == 0 {
		return true
	}
	for _, t := range s.cfg.Tokens {
		if t == token {
			return true
		}
	}
	return false
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// heldAnswer keeps an answer to write later.
type heldAnswer struct {
	header http.Header
	status int
	body   []byte
}

func (a *heldAnswer) Header() http.Header { return a.header }

func (a *heldAnswer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

func (a *heldAnswer) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	a.body = append(a.body, b...)
	return len(b), nil
}

// writeTo writes the held answer to w.
func (a *heldAnswer) writeTo(w http.ResponseWriter) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// recorder remembers the status written through it.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

var _ http.Handler = (*Server)(nil)

// handleAccountDetails answers GET /account-info/v3/details with the
// portal's id, as the account-info API reports it (portalId, the hubId).
func (s *Server) handleAccountDetails(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"portalId": s.cfg.HubID, "accountType": "STANDARD", "timeZone": s.cfg.TimeZone.String(), "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"})
}
