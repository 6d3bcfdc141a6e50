// Package ui is the delivery page at /ui: server-rendered HTML, live over one
// server-sent-events stream, over read-only views of the process (its
// metrics and its readiness). It is an http.Handler with its assets
// embedded; the admin token guards every page, data endpoint and action.
package ui

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is what the page reads and how it is guarded.
type Config struct {
	// AdminToken guards the page. Empty means no token: the page then
	// answers only loopback clients, and says so.
	AdminToken string
	// Metrics is read every SampleEvery for the overview's counts and rates:
	// the same registry as /metrics. Required.
	Metrics prometheus.Gatherer
	// Ready reports whether the process is ready, as /readyz does: nil, or
	// the failing check. Nil means the page shows no readiness.
	Ready func(context.Context) error
	// Context ends the sampler and every open stream. Required.
	Context context.Context
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SampleEvery is how often the metrics are read; 0 means 1 s.
	SampleEvery time.Duration
	// Keep is how much history the charts show; 0 means 1 hour.
	Keep time.Duration
	// Heartbeat is how often an idle stream sends a comment; 0 means 15 s.
	Heartbeat time.Duration
	// DeadLetters is the dead-letter panel's topic and replay.
	DeadLetters DeadLetters
	// Tester runs the event tester's dry runs; nil means no destination
	// has one.
	Tester Tester
	// Live is what the live events panel reads; its zero value shows none.
	Live LiveConfig
	// Syncs are the HubSpot sources' syncs; nil means the process syncs
	// none.
	Syncs Syncs
}

// Handler serves the page. New returns one.
type Handler struct {
	cfg     Config
	auth    *auth
	assets  *assets
	pages   *template.Template
	ring    *ring
	hub     *hub
	tap     *tap
	mux     *http.ServeMux
	replays replays
	syncs   syncWatch

	mu       sync.Mutex
	fragment string // the latest overview fragment
	readyErr error
}

//go:embed templates
var templateFS embed.FS

// New checks cfg, loads the assets and starts the sampler, which runs until
// cfg.Context ends. The handler answers under /ui.
func New(cfg Config) (http.Handler, error) {
	if cfg.Metrics == nil {
		return nil, errors.New("ui: Config.Metrics is required")
	}
	if cfg.Context == nil {
		return nil, errors.New("ui: Config.Context is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SampleEvery < 0 || cfg.Keep < 0 || cfg.Heartbeat < 0 {
		return nil, errors.New("ui: SampleEvery, Keep and Heartbeat must not be negative")
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = time.Second
	}
	if cfg.Keep == 0 {
		cfg.Keep = time.Hour
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	a, err := newAuth(cfg.AdminToken, cfg.Now)
	if err != nil {
		return nil, err
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:    cfg,
		auth:   a,
		assets: as,
		ring:   newRing(int(cfg.Keep/cfg.SampleEvery) + 1),
		hub:    newHub(),
		tap:    newTap(cfg.Live, cfg.Context),
		mux:    http.NewServeMux(),
	}
	h.pages, err = template.New("").Funcs(template.FuncMap{
		"asset": as.url,
		"count": formatCount,
		"rate":  formatRate,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parse templates: %w", err)
	}
	if err := h.sample(); err != nil {
		return nil, err
	}
	h.routes()
	go h.run()
	return h, nil
}

func (h *Handler) routes() {
	h.mux.Handle("GET "+h.assets.prefix, h.assets)
	h.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	h.mux.HandleFunc("GET /ui/{$}", h.page(h.serveOverview))
	h.mux.HandleFunc("GET /ui/login", h.serveLoginForm)
	h.mux.HandleFunc("POST /ui/login", h.serveLogin)
	h.mux.HandleFunc("POST /ui/logout", h.action(h.serveLogout))
	h.mux.HandleFunc("GET /ui/overview", h.data(h.serveOverviewFragment))
	h.mux.HandleFunc("GET /ui/stream", h.serveStream)
	h.mux.HandleFunc("GET /ui/deadletters", h.page(h.serveDeadLetters))
	h.mux.HandleFunc("GET /ui/deadletters/{partition}/{offset}", h.page(h.serveDeadLetter))
	h.mux.HandleFunc("GET /ui/deadletters/replays", h.data(h.serveReplays))
	h.mux.HandleFunc("POST /ui/deadletters/replay", h.action(h.serveReplay))
	h.mux.HandleFunc("GET /ui/tester", h.page(h.serveTester))
	h.mux.HandleFunc("POST /ui/tester", h.action(h.serveTesterRun))
	h.mux.HandleFunc("GET /ui/live", h.page(h.serveLive))
	h.mux.HandleFunc("GET /ui/live/event", h.data(h.serveLiveEvent))
	h.mux.HandleFunc("POST /ui/syncs/full", h.action(h.serveStartFullSync))
}

// ServeHTTP answers requests under /ui.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the page's own form posts.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// run samples the metrics until the page's Context ends.
func (h *Handler) run() {
	t := time.NewTicker(h.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-h.cfg.Context.Done():
			return
		case <-t.C:
			h.sample()
		}
	}
}

// sample reads the metrics once, keeps the reading, renders the overview and
// offers the update to every stream.
func (h *Handler) sample() error {
	r, err := read(h.cfg.Metrics)
	if err != nil {
		return err
	}
	r.at = h.cfg.Now()
	var readyErr error
	if h.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(h.cfg.Context, h.cfg.SampleEvery)
		readyErr = h.cfg.Ready(ctx)
		cancel()
	}
	all := h.ring.all()
	if len(all) > 0 {
		r.seq = all[len(all)-1].seq + 1
		countToday(all[len(all)-1], r)
	} else {
		r.seq = 1
		countToday(nil, r)
	}
	h.ring.add(r)
	fragment, err := h.render("overview", h.overview(readyErr))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.fragment, h.readyErr = fragment, readyErr
	h.mu.Unlock()

	var buf bytes.Buffer
	sseEvent(&buf, "", r.seq, fragment)
	if len(all) > 0 {
		p, _ := json.Marshal(pointBetween(all[len(all)-1], r))
		sseEvent(&buf, "rates", r.seq, string(p))
	}
	h.hub.publish(buf.Bytes())
	return nil
}

// catchUp is what a stream sends first: the current overview, then the
// chart points after seq still in the ring.
func (h *Handler) catchUp(after uint64) []byte {
	h.mu.Lock()
	fragment := h.fragment
	h.mu.Unlock()
	all := h.ring.all()
	var buf bytes.Buffer
	var last uint64
	if len(all) > 0 {
		last = all[len(all)-1].seq
	}
	sseEvent(&buf, "", last, fragment)
	for i := 1; i < len(all); i++ {
		if all[i].seq > after && after > 0 {
			p, _ := json.Marshal(pointBetween(all[i-1], all[i]))
			sseEvent(&buf, "rates", all[i].seq, string(p))
		}
	}
	return buf.Bytes()
}

func (h *Handler) render(name string, data any) (string, error) {
	var b strings.Builder
	if err := h.pages.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("ui: render %s: %w", name, err)
	}
	return b.String(), nil
}

// page wraps a page GET: without auth it sends the browser to the login
// form (or, with no token and a non-loopback client, refuses). With no
// token configured a loopback client gets a session on its first visit, so
// write actions can carry a CSRF token.
func (h *Handler) page(next func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c, err := h.auth.authenticate(r)
		switch {
		case errors.Is(err, errNotLoopback):
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		case err != nil && h.cfg.AdminToken == "":
			c, err = h.startSession(w, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case err != nil:
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if c.session == nil {
			// A bearer caller has no session; it may read but gets no
			// CSRF token for the page's forms.
			c.session = &session{}
		}
		next(w, r, *c.session)
	}
}

// data wraps a data endpoint: 401 (or 403) without auth.
func (h *Handler) data(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, err := h.auth.authenticate(r); err != nil {
			http.Error(w, err.Error(), statusFor(err))
			return
		}
		next(w, r)
	}
}

// action wraps a write action: 401 (or 403) without auth, 403 when it may
// come from another site or lacks the session's CSRF token.
func (h *Handler) action(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c, err := h.auth.authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), statusFor(err))
			return
		}
		if err := h.auth.checkWrite(r, c); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request) (caller, error) {
	s, value, err := h.auth.newSession()
	if err != nil {
		return caller{}, err
	}
	setSessionCookie(w, r, value, s.expires)
	return caller{session: &s}, nil
}

// loginView is the login form's data.
type loginView struct {
	NoToken  bool
	Refused  string
	Loopback bool
}

func (h *Handler) serveLoginForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.AdminToken == "" {
		if !isLoopback(r.RemoteAddr) {
			http.Error(w, errNotLoopback.Error(), http.StatusForbidden)
			return
		}
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	h.writePage(w, r, http.StatusOK, "login", loginView{})
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := sameOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if h.cfg.AdminToken == "" {
		http.Error(w, "no admin token is configured; open /ui/ from this machine", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !h.auth.tokenMatches(r.PostFormValue("token")) {
		h.writePage(w, r, http.StatusUnauthorized, "login", loginView{Refused: "That is not the admin token."})
		return
	}
	if _, err := h.startSession(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// pageView is the overview page's data.
type pageView struct {
	CSRF     string
	NoToken  bool
	Fragment template.HTML
	History  template.JS // JSON chart points (encoding/json escapes <, > and &)
	After    uint64
	// SyncSources are the sources a full sync can be started of.
	SyncSources []string
}

func (h *Handler) serveOverview(w http.ResponseWriter, r *http.Request, s session) {
	h.mu.Lock()
	fragment := h.fragment
	h.mu.Unlock()
	all := h.ring.all()
	hist, _ := json.Marshal(history(all, 10*time.Minute, 10*time.Second))
	v := pageView{
		NoToken:     h.cfg.AdminToken == "",
		Fragment:    template.HTML(fragment),
		History:     template.JS(hist),
		SyncSources: h.syncSources(),
	}
	if s.expires.After(time.Time{}) {
		v.CSRF = h.auth.csrfToken(s)
	}
	if len(all) > 0 {
		v.After = all[len(all)-1].seq
	}
	h.writePage(w, r, http.StatusOK, "page", v)
}

func (h *Handler) serveOverviewFragment(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	fragment := h.fragment
	h.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(fragment))
}

// writePage renders a full page, gzipped when the client accepts it.
func (h *Handler) writePage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	body, err := h.render(name, data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		w.WriteHeader(status)
		w.Write([]byte(body))
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw := gzip.NewWriter(w)
	zw.Write([]byte(body))
	zw.Close()
}

// overviewView is the overview fragment's data.
type overviewView struct {
	At            string
	HasReady      bool
	ReadyErr      string
	Sources       []sourceRow
	Destinations  []destRow
	Viewers       int
	RateWindow    string
	LatencyWindow string
	// HubSpotSources and HubSpotDestinations say whether any row has a
	// HubSpot part.
	HubSpotSources, HubSpotDestinations bool
	// Syncs are the HubSpot sources' running or last syncs.
	Syncs []syncRow
}

type sourceRow struct {
	Name                   string
	Received, ReceivedRate float64
	Rejected, RejectedRate float64
	Reasons                []reasonCount
	HubSpot                *hubspotSourceRow
}

// hubspotSourceRow is what a HubSpot source adds to its row.
type hubspotSourceRow struct {
	LastWebhook string // its age, or why it is not known
	Checkpoints []checkpoint
	SyncRecords []reasonCount // by kind
}

type checkpoint struct {
	ObjectType, At string
}

type destRow struct {
	Name                           string
	Delivered, DeliveredRate       float64
	Retried, RetriedRate           float64
	DeadLettered, DeadLetteredRate float64
	Classes                        []reasonCount
	Lag, Pending                   string
	P50, P99                       string // over latencyWindow
	HubSpot                        *hubspotDestRow
}

// hubspotDestRow is what a HubSpot destination adds to its row.
type hubspotDestRow struct {
	Paused bool
	// PauseReason, PausedUntil (its time of day, UTC), PausedAt (RFC 3339)
	// and PausedIn (how long from the reading) say why and until when;
	// empty when the process does not export them.
	PauseReason, PausedUntil, PausedAt, PausedIn string
	// Burst, Daily and Search are the token's budget windows; DailyReset
	// says when the daily one starts again.
	Burst, Daily, Search budgetCell
	DailyReset           string
	Calls, CallsToday    float64 // Calls over rateWindow
}

type reasonCount struct {
	Reason string
	Count  float64
}

// rateWindow is the span the overview's per-second figures average over.
const rateWindow = 10 * time.Second

func (h *Handler) overview(readyErr error) overviewView {
	now, before := h.ring.latest(rateWindow)
	v := overviewView{
		At:            now.at.UTC().Format(time.RFC3339),
		HasReady:      h.cfg.Ready != nil,
		Viewers:       h.hub.count(),
		RateWindow:    rateWindow.String(),
		LatencyWindow: latencyWindow.String(),
		Syncs:         h.syncs.rows(h.cfg.Syncs, now.at),
	}
	_, minuteAgo := h.ring.latest(latencyWindow)
	all := h.ring.all()
	if readyErr != nil {
		v.ReadyErr = readyErr.Error()
	}
	dt := now.at.Sub(before.at).Seconds()
	for _, name := range sortedKeys(now.sources) {
		s := now.sources[name]
		prev := before.sources[name]
		if prev == nil {
			prev = &sourceReading{}
		}
		row := sourceRow{
			Name: name, Received: s.received, ReceivedRate: rate(s.received, prev.received, dt),
			Rejected: s.rejectedTotal(), RejectedRate: rate(s.rejectedTotal(), prev.rejectedTotal(), dt),
		}
		for _, reason := range sortedKeys(s.rejected) {
			if n := s.rejected[reason]; n > 0 {
				row.Reasons = append(row.Reasons, reasonCount{reason, n})
			}
		}
		if s.hubspot {
			row.HubSpot = hubspotSource(all, name, s, now.at)
			v.HubSpotSources = true
		}
		v.Sources = append(v.Sources, row)
	}
	for _, name := range sortedKeys(now.dests) {
		d := now.dests[name]
		prev := before.dests[name]
		if prev == nil {
			prev = &destReading{}
		}
		row := destRow{
			Name:      name,
			Delivered: d.delivered, DeliveredRate: rate(d.delivered, prev.delivered, dt),
			Retried: d.retried, RetriedRate: rate(d.retried, prev.retried, dt),
			DeadLettered: d.deadLettered, DeadLetteredRate: rate(d.deadLettered, prev.deadLettered, dt),
			Lag: "–", Pending: "–",
		}
		if d.hasLag {
			row.Lag = formatCount(d.lag)
		}
		if d.hasPending {
			row.Pending = formatCount(d.pending)
		}
		for _, class := range sortedKeys(d.deadByClass) {
			if n := d.deadByClass[class]; n > 0 {
				row.Classes = append(row.Classes, reasonCount{class, n})
			}
		}
		var latency *histogram
		if d.latency != nil {
			var old *histogram
			if p := minuteAgo.dests[name]; p != nil && minuteAgo != now {
				old = p.latency
			}
			latency = d.latency.since(old)
		}
		row.P50, row.P99 = formatSeconds(latency.quantile(0.5)), formatSeconds(latency.quantile(0.99))
		if d.hubspot {
			row.HubSpot = hubspotDest(d, prev, now.at)
			v.HubSpotDestinations = true
		}
		v.Destinations = append(v.Destinations, row)
	}
	return v
}

// hubspotSource is the HubSpot part of source's row at now.
func hubspotSource(all []*reading, name string, s *sourceReading, now time.Time) *hubspotSourceRow {
	row := &hubspotSourceRow{LastWebhook: "none accepted"}
	if at, ok := lastWebhook(all, name); ok {
		row.LastWebhook = now.Sub(at).Truncate(time.Second).String() + " ago"
	} else if s.webhooks > 0 && len(all) > 0 {
		row.LastWebhook = "before " + all[0].at.UTC().Format(time.RFC3339)
	}
	for _, t := range sortedKeys(s.checkpoints) {
		at := "none yet"
		if sec := s.checkpoints[t]; sec > 0 {
			at = time.Unix(int64(sec), 0).UTC().Format(time.RFC3339)
		}
		row.Checkpoints = append(row.Checkpoints, checkpoint{t, at})
	}
	for _, kind := range sortedKeys(s.syncRecords) {
		row.SyncRecords = append(row.SyncRecords, reasonCount{kind, s.syncRecords[kind]})
	}
	return row
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func formatRate(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
