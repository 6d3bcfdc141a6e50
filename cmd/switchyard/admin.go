package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/ingest"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// syncAdminPath is the route of the admin endpoint that runs and shows a
// hubspot source's sync, as Fiber writes a path parameter:
// /admin/sources/{source}/sync.
const syncAdminPath = "/admin/sources/:source/sync"

// syncAnswerWait is how long POST waits for a sync it started to end or
// report, so that one refused at once (another sync of the source runs)
// gets its 409.
const syncAnswerWait = 100 * time.Millisecond

// maxSyncRequestBytes caps the body of POST /admin/sources/{source}/sync.
const maxSyncRequestBytes = 4 << 10

// syncJobs runs one source's syncs for the admin endpoint: each in the
// background, under the context the sources run in, so that stopping the
// process interrupts it (resumable), and one at a time.
type syncJobs struct {
	source string
	syncer syncer

	mu  sync.Mutex
	ctx context.Context // nil until open
	wg  sync.WaitGroup
	// inFlight is set while a sync this started has not returned;
	// accepted is its progress until the syncer reports (latest), and
	// how it ended when it returned without reporting.
	inFlight bool
	accepted hubspotsource.Progress
	latest   *hubspotsource.Progress
}

func newSyncJobs(source string, s syncer) *syncJobs {
	return &syncJobs{source: source, syncer: s}
}

// open lets syncs start, under ctx.
func (j *syncJobs) open(ctx context.Context) {
	j.mu.Lock()
	j.ctx = ctx
	j.mu.Unlock()
}

// wait returns once the syncs started have returned, after ctx ends.
func (j *syncJobs) wait() {
	j.mu.Lock()
	ctx := j.ctx
	j.mu.Unlock()
	if ctx != nil {
		<-ctx.Done()
	}
	j.wg.Wait()
}

// errNotRunning answers a sync asked for before the sources run or after
// they stopped.
var errNotRunning = errors.New("the source is not running")

// start starts a sync of req and returns its progress so far, or
// hubspotsource.ErrSyncRunning while one (asked for, or the schedule's)
// runs: the syncer's Run refuses at once, within syncAnswerWait.
func (j *syncJobs) start(req hubspotsource.SyncRequest) (hubspotsource.Progress, error) {
	j.mu.Lock()
	if j.ctx == nil || j.ctx.Err() != nil {
		j.mu.Unlock()
		return hubspotsource.Progress{}, errNotRunning
	}
	if j.inFlight {
		j.mu.Unlock()
		return hubspotsource.Progress{}, hubspotsource.ErrSyncRunning
	}
	now := time.Now().UTC()
	kind := "catch-up"
	if req.Full {
		kind = "full"
	}
	j.inFlight = true
	j.accepted = hubspotsource.Progress{Source: j.source, Kind: kind, State: hubspotsource.SyncRunning, Started: now, Updated: now}
	j.latest = nil
	ctx := j.ctx
	j.wg.Add(1)
	j.mu.Unlock()

	reported := make(chan struct{}, 1)
	returned := make(chan error, 1)
	go func() {
		defer j.wg.Done()
		err := j.syncer.Run(ctx, req, func(p hubspotsource.Progress) {
			j.mu.Lock()
			j.latest = &p
			j.mu.Unlock()
			select {
			case reported <- struct{}{}:
			default:
			}
		})
		j.mu.Lock()
		j.inFlight = false
		if j.latest == nil {
			j.accepted.Updated = time.Now().UTC()
			switch {
			case err == nil:
				j.accepted.State = hubspotsource.SyncDone
			case ctx.Err() != nil:
				j.accepted.State = hubspotsource.SyncInterrupted
			default:
				j.accepted.State, j.accepted.Error = hubspotsource.SyncFailed, err.Error()
			}
		}
		j.mu.Unlock()
		returned <- err
	}()
	select {
	case err := <-returned:
		if errors.Is(err, hubspotsource.ErrSyncRunning) {
			return hubspotsource.Progress{}, err
		}
	case <-reported:
	case <-time.After(syncAnswerWait):
	}
	p, _ := j.progress()
	return p, nil
}

// progress returns the progress of the sync running, or of the last one:
// while a sync this started runs, its own, even before the syncer first
// reports; false when none ran.
func (j *syncJobs) progress() (hubspotsource.Progress, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inFlight {
		if j.latest != nil {
			return *j.latest, true
		}
		if p, ok := j.syncer.Progress(); ok && p.State == hubspotsource.SyncRunning && !p.Started.Before(j.accepted.Started) {
			return p, true
		}
		return j.accepted, true
	}
	if p, ok := j.syncer.Progress(); ok {
		return p, true
	}
	return j.accepted, !j.accepted.Started.IsZero()
}

// syncAdmin serves POST and GET /admin/sources/{source}/sync for the
// sources' syncs, to clients with the admin token or, with none set, to
// loopback clients only.
type syncAdmin struct {
	token string
	jobs  map[string]*syncJobs
}

// syncAdmin returns the admin endpoint of the sources the process syncs
// (those of the router role), with token ("" for none).
func (ss hubspotSources) syncAdmin(token string) *syncAdmin {
	a := &syncAdmin{token: token, jobs: make(map[string]*syncJobs)}
	for _, s := range ss {
		if s.syncs != nil {
			a.jobs[s.cfg.Name] = s.syncs
		}
	}
	return a
}

// routes are the gateway routes of the admin endpoint, served whether or
// not the process syncs any source, as the gateway's OpenAPI document has
// them.
func (a *syncAdmin) routes() []ingest.Route {
	return []ingest.Route{
		{Method: http.MethodPost, Path: syncAdminPath, Handler: a},
		{Method: http.MethodGet, Path: syncAdminPath, Handler: a},
	}
}

// register adds the admin endpoint to mux, for the router role.
func (a *syncAdmin) register(mux *http.ServeMux) {
	mux.Handle("POST /admin/sources/{source}/sync", a)
	mux.Handle("GET /admin/sources/{source}/sync", a)
}

func (a *syncAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status, code, msg := a.refusal(r); status != 0 {
		writeAdminError(w, status, code, msg)
		return
	}
	name, ok := sourceOfSyncPath(r.URL.Path)
	jobs := a.jobs[name]
	if !ok || jobs == nil {
		writeAdminError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no hubspot source named %q is synced by this process", name))
		return
	}
	switch r.Method {
	case http.MethodGet:
		p, ok := jobs.progress()
		if !ok {
			writeAdminError(w, http.StatusNotFound, "no_sync", fmt.Sprintf("no sync of source %s has run in this process", name))
			return
		}
		writeAdminJSON(w, http.StatusOK, p)
	case http.MethodPost:
		req, err := readSyncRequest(r.Body)
		if err != nil {
			writeAdminError(w, http.StatusBadRequest, "invalid_body", err.Error())
			return
		}
		p, err := jobs.start(req)
		switch {
		case errors.Is(err, hubspotsource.ErrSyncRunning):
			writeAdminError(w, http.StatusConflict, "sync_running", fmt.Sprintf("a sync of source %s is running; follow it with GET %s", name, r.URL.Path))
		case err != nil:
			writeAdminError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		default:
			writeAdminJSON(w, http.StatusAccepted, p)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeAdminError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not served at "+r.URL.Path)
	}
}

// refusal returns the status, code and message that refuse r, or 0: with a
// token set, a request must bear it (Authorization: Bearer); with none,
// only loopback clients are served.
func (a *syncAdmin) refusal(r *http.Request) (int, string, string) {
	if a.token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			return http.StatusUnauthorized, "unauthorized", "the admin token is missing or wrong (Authorization: Bearer TOKEN)"
		}
		return 0, "", ""
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return http.StatusForbidden, "forbidden", "with no admin token set (--admin-token, SWITCHYARD_ADMIN_TOKEN), only loopback clients are served"
	}
	return 0, "", ""
}

// sourceOfSyncPath returns the source named by /admin/sources/{source}/sync.
func sourceOfSyncPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/admin/sources/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(strings.TrimSuffix(rest, "/"), "/sync")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// readSyncRequest reads a SyncRequest; an empty body asks for the catch-up.
func readSyncRequest(body io.Reader) (hubspotsource.SyncRequest, error) {
	var req hubspotsource.SyncRequest
	raw, err := io.ReadAll(io.LimitReader(body, maxSyncRequestBytes+1))
	if err != nil {
		return req, fmt.Errorf("reading the body: %w", err)
	}
	if len(raw) > maxSyncRequestBytes {
		return req, fmt.Errorf("the body is over %d bytes", maxSyncRequestBytes)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf(`the body is not a sync request ({"full":false,"since":"2026-12-01T00:00:00Z"}): %w`, err)
	}
	if dec.More() {
		return req, errors.New("the body holds more than one JSON value")
	}
	return req, checkSyncRequest(req, time.Now())
}

// checkSyncRequest refuses a request that cannot be run as asked.
func checkSyncRequest(req hubspotsource.SyncRequest, now time.Time) error {
	switch {
	case req.Full && !req.Since.IsZero():
		return errors.New("since applies to the catch-up, not to a full sync")
	case req.Since.After(now):
		return fmt.Errorf("since %s is in the future", req.Since.Format(time.RFC3339))
	}
	return nil
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

func writeAdminError(w http.ResponseWriter, status int, code, msg string) {
	writeAdminJSON(w, status, map[string]any{"success": false, "code": code, "message": msg, "error": msg})
}

// registerAdminToken adds --admin-token to fs. The function it returns,
// called once fs is parsed, gives the flag's value, else that of
// SWITCHYARD_ADMIN_TOKEN.
func registerAdminToken(fs *flag.FlagSet) func() string {
	token := fs.String("admin-token", "", "`token` of the admin endpoint (Authorization: Bearer); with none, only loopback clients are served (env SWITCHYARD_ADMIN_TOKEN)")
	return func() string {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "admin-token" })
		if set {
			return *token
		}
		return os.Getenv("SWITCHYARD_ADMIN_TOKEN")
	}
}
