package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/queue/embedded"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// fakeSyncer stands for hubspotsource.Syncer: Run reports the pages it is
// given, one at each release (or all at once when release is nil), and
// ends as end says; RunSchedule counts the schedules running.
type fakeSyncer struct {
	source string
	pages  int
	// release, when set, lets one page through per value.
	release chan struct{}
	// fail, when set, is the error a sync ends with.
	fail error

	mu        sync.Mutex
	running   bool
	last      hubspotsource.Progress
	ran       bool
	requests  []hubspotsource.SyncRequest
	schedules int
	maxSched  int
	// scheduleRunning makes Progress report a running sync, as while the
	// schedule's catch-up runs.
	scheduleRunning bool
}

func (f *fakeSyncer) Run(ctx context.Context, req hubspotsource.SyncRequest, report func(hubspotsource.Progress)) error {
	f.mu.Lock()
	if f.running || f.scheduleRunning {
		f.mu.Unlock()
		return hubspotsource.ErrSyncRunning
	}
	kind := "catch-up"
	if req.Full {
		kind = "full"
	}
	now := time.Now().UTC()
	f.running, f.ran = true, true
	f.requests = append(f.requests, req)
	f.last = hubspotsource.Progress{Source: f.source, Kind: kind, State: hubspotsource.SyncRunning, ObjectType: "contacts", Total: int64(f.pages * 10), Started: now, Updated: now}
	f.mu.Unlock()
	end := func(state string, err error) error {
		f.mu.Lock()
		f.running = false
		f.last.State, f.last.Updated = state, time.Now().UTC()
		if err != nil {
			f.last.Error = err.Error()
		}
		p := f.last
		f.mu.Unlock()
		if report != nil {
			report(p)
		}
		return err
	}
	for range f.pages {
		if f.release != nil {
			select {
			case <-ctx.Done():
				return end(hubspotsource.SyncInterrupted, ctx.Err())
			case <-f.release:
			}
		}
		f.mu.Lock()
		f.last.Done += 10
		f.last.Emitted += 10
		f.last.Updated = time.Now().UTC()
		p := f.last
		f.mu.Unlock()
		if report != nil {
			report(p)
		}
	}
	if f.fail != nil {
		return end(hubspotsource.SyncFailed, f.fail)
	}
	return end(hubspotsource.SyncDone, nil)
}

func (f *fakeSyncer) Progress() (hubspotsource.Progress, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scheduleRunning {
		return hubspotsource.Progress{Source: f.source, Kind: "catch-up", State: hubspotsource.SyncRunning}, true
	}
	return f.last, f.ran
}

func (f *fakeSyncer) RunSchedule(ctx context.Context) error {
	f.mu.Lock()
	f.schedules++
	f.maxSched = max(f.maxSched, f.schedules)
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	f.schedules--
	f.mu.Unlock()
	return nil
}

func (f *fakeSyncer) scheduled() (now, most int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.schedules, f.maxSched
}

// adminFixture is the admin endpoint of one source, crm-in, synced by a
// fakeSyncer, under a context the test ends.
func adminFixture(t *testing.T, token string, f syncer) *syncAdmin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &hubspotSource{cfg: hubspotsource.Config{Name: "crm-in"}, syncs: newSyncJobs("crm-in", f)}
	s.syncs.open(ctx)
	t.Cleanup(func() {
		cancel()
		s.syncs.wait()
	})
	return hubspotSources{s}.syncAdmin(token)
}

// adminCallTo calls the admin endpoint from remote with the Authorization
// header auth ("" for none) and returns the status and the body's code.
func adminCallTo(t *testing.T, a *syncAdmin, method, path, remote, auth, body string) (int, gjsonish) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	var out gjsonish
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: the answer %q is not JSON: %v", method, path, w.Body.String(), err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return w.Code, out
}

type gjsonish map[string]any

func TestSyncAdminRefusals(t *testing.T) {
	const path = "/admin/sources/crm-in/sync"
	const loopback, remote = "127.0.0.1:40000", "10.1.2.3:40000"
	withToken := adminFixture(t, "s3cret", &fakeSyncer{source: "crm-in", pages: 1})
	noToken := adminFixture(t, "", &fakeSyncer{source: "crm-in", pages: 1})
	cases := []struct {
		name               string
		a                  *syncAdmin
		method, path       string
		remote, auth, body string
		status             int
		code               string
	}{
		{"no token given", withToken, "POST", path, loopback, "", "{}", 401, "unauthorized"},
		{"a wrong token", withToken, "POST", path, loopback, "Bearer s3creT", "{}", 401, "unauthorized"},
		{"the token as basic auth", withToken, "GET", path, loopback, "Basic czNjcmV0", "", 401, "unauthorized"},
		{"a token of which the right one is a prefix", withToken, "GET", path, remote, "Bearer s3cret2", "", 401, "unauthorized"},
		{"no token set, not loopback", noToken, "POST", path, remote, "", "{}", 403, "forbidden"},
		{"no token set, not loopback, any bearer", noToken, "GET", path, remote, "Bearer x", "", 403, "forbidden"},
		{"an unknown source", noToken, "POST", "/admin/sources/other/sync", loopback, "", "{}", 404, "not_found"},
		{"an unknown source with the token", withToken, "GET", "/admin/sources/other/sync", remote, "Bearer s3cret", "", 404, "not_found"},
		{"no sync ran", noToken, "GET", path, loopback, "", "", 404, "no_sync"},
		{"not JSON", noToken, "POST", path, loopback, "", `{"full":`, 400, "invalid_body"},
		{"an unknown field", noToken, "POST", path, loopback, "", `{"fulll":true}`, 400, "invalid_body"},
		{"a wrong type", noToken, "POST", path, loopback, "", `{"full":"yes"}`, 400, "invalid_body"},
		{"since is not a time", noToken, "POST", path, loopback, "", `{"since":"yesterday"}`, 400, "invalid_body"},
		{"since with full", noToken, "POST", path, loopback, "", `{"full":true,"since":"2026-01-01T00:00:00Z"}`, 400, "invalid_body"},
		{"since in the future", noToken, "POST", path, loopback, "", `{"since":"2999-01-01T00:00:00Z"}`, 400, "invalid_body"},
		{"two values", noToken, "POST", path, loopback, "", `{} {}`, 400, "invalid_body"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			status, body := adminCallTo(t, tt.a, tt.method, tt.path, tt.remote, tt.auth, tt.body)
			if status != tt.status || body["code"] != tt.code {
				t.Fatalf("%s %s: %d %v, want %d %s", tt.method, tt.path, status, body, tt.status, tt.code)
			}
		})
	}
}

func TestSyncAdminServes(t *testing.T) {
	const path = "/admin/sources/crm-in/sync"
	f := &fakeSyncer{source: "crm-in", pages: 3, release: make(chan struct{})}
	a := adminFixture(t, "s3cret", f)
	// With the token, any client is served.
	status, body := adminCallTo(t, a, "POST", path, "10.1.2.3:5", "Bearer s3cret", `{"full":true}`)
	if status != http.StatusAccepted || body["state"] != "running" || body["kind"] != "full" || body["source"] != "crm-in" {
		t.Fatalf("POST: %d %v, want 202 with a running full sync", status, body)
	}
	if status, body = adminCallTo(t, a, "POST", path, "10.1.2.3:5", "Bearer s3cret", `{}`); status != http.StatusConflict || body["code"] != "sync_running" {
		t.Fatalf("a second POST while it runs: %d %v, want 409 sync_running", status, body)
	}
	f.release <- struct{}{}
	eventuallyTrueWithin(t, 10*time.Second, "the first page's progress", func() bool {
		_, body := adminCallTo(t, a, "GET", path, "10.1.2.3:5", "Bearer s3cret", "")
		return body["done"] == float64(10) && body["state"] == "running"
	})
	f.release <- struct{}{}
	f.release <- struct{}{}
	eventuallyTrueWithin(t, 10*time.Second, "the sync's end", func() bool {
		status, body := adminCallTo(t, a, "GET", path, "10.1.2.3:5", "Bearer s3cret", "")
		return status == 200 && body["state"] == "done" && body["done"] == float64(30)
	})
	// An empty body asks for the catch-up.
	f.release = nil
	if status, body = adminCallTo(t, a, "POST", path, "[::1]:5", "Bearer s3cret", ``); status != http.StatusAccepted || body["kind"] != "catch-up" {
		t.Fatalf("POST with no body: %d %v, want 202 with a catch-up", status, body)
	}
	eventuallyTrueWithin(t, 10*time.Second, "the catch-up's end", func() bool {
		_, body := adminCallTo(t, a, "GET", path, "[::1]:5", "Bearer s3cret", "")
		return body["state"] == "done" && body["kind"] == "catch-up"
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 2 || !f.requests[0].Full || f.requests[1].Full {
		t.Fatalf("the syncer ran %+v, want a full sync then a catch-up", f.requests)
	}
}

func TestSyncAdminRefusesWhileTheScheduleRuns(t *testing.T) {
	a := adminFixture(t, "", &fakeSyncer{source: "crm-in", pages: 1, scheduleRunning: true})
	status, body := adminCallTo(t, a, "POST", "/admin/sources/crm-in/sync", "127.0.0.1:5", "", `{}`)
	if status != http.StatusConflict || body["code"] != "sync_running" {
		t.Fatalf("POST while the schedule's catch-up runs: %d %v, want 409 sync_running", status, body)
	}
}

// TestSyncAdminReportsASyncThatFailsAtOnce checks that a sync whose Run
// fails before it reports anything is shown failed, with its error.
func TestSyncAdminReportsASyncThatFailsAtOnce(t *testing.T) {
	a := adminFixture(t, "", &failingSyncer{})
	status, body := adminCallTo(t, a, "POST", "/admin/sources/crm-in/sync", "127.0.0.1:5", "", `{}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST: %d %v", status, body)
	}
	eventuallyTrueWithin(t, 10*time.Second, "the failure shown", func() bool {
		_, body = adminCallTo(t, a, "GET", "/admin/sources/crm-in/sync", "127.0.0.1:5", "", "")
		return body["state"] == "failed" && body["error"] == "no token"
	})
}

// failingSyncer's Run fails at once, reporting nothing.
type failingSyncer struct{}

func (failingSyncer) Run(context.Context, hubspotsource.SyncRequest, func(hubspotsource.Progress)) error {
	return errNoToken
}
func (failingSyncer) Progress() (hubspotsource.Progress, bool) {
	return hubspotsource.Progress{}, false
}
func (failingSyncer) RunSchedule(ctx context.Context) error { <-ctx.Done(); return nil }

var errNoToken = errors.New("no token")

// fakeOwner is a subscription's share of the notifications topic, as the
// test moves it.
type fakeOwner struct {
	mu    sync.Mutex
	owned []int
}

func (o *fakeOwner) Owned(context.Context) ([]int, int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.owned, 4, nil
}

func (o *fakeOwner) set(owned ...int) {
	o.mu.Lock()
	o.owned = owned
	o.mu.Unlock()
}

// TestTheOwnerOfPartitionZeroRunsTheScheduleAndPoller moves partition 0 to
// and from a process: its catch-up schedule and email poller run while it
// owns the partition, and only then.
func TestTheOwnerOfPartitionZeroRunsTheScheduleAndPoller(t *testing.T) {
	f := &fakeSyncer{source: "crm-in"}
	var pollers sync.WaitGroup
	var pollMu sync.Mutex
	polling := 0
	s := &hubspotSource{cfg: hubspotsource.Config{Name: "crm-in"}, syncs: newSyncJobs("crm-in", f),
		emailPoller: func(ctx context.Context) error {
			pollers.Add(1)
			defer pollers.Done()
			pollMu.Lock()
			polling++
			pollMu.Unlock()
			<-ctx.Done()
			pollMu.Lock()
			polling--
			pollMu.Unlock()
			return nil
		}}
	polls := func() int {
		pollMu.Lock()
		defer pollMu.Unlock()
		return polling
	}
	owner := &fakeOwner{}
	owner.set(1, 2)
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	go func() {
		defer close(led)
		s.lead(ctx, owner, zap.NewNop())
	}()
	time.Sleep(2 * ownershipCheck)
	if now, _ := f.scheduled(); now != 0 || polls() != 0 {
		t.Fatalf("without partition 0: %d schedules and %d pollers run, want none", now, polls())
	}
	owner.set(0, 3)
	eventuallyTrueWithin(t, 10*time.Second, "the schedule and the poller to start", func() bool {
		now, _ := f.scheduled()
		return now == 1 && polls() == 1
	})
	owner.set(3)
	eventuallyTrueWithin(t, 10*time.Second, "the schedule and the poller to stop", func() bool {
		now, _ := f.scheduled()
		return now == 0 && polls() == 0
	})
	owner.set(0)
	eventuallyTrueWithin(t, 10*time.Second, "the schedule and the poller to start again", func() bool {
		now, _ := f.scheduled()
		return now == 1 && polls() == 1
	})
	cancel()
	<-led
	if now, most := f.scheduled(); now != 0 || most != 1 || polls() != 0 {
		t.Fatalf("after the end: %d schedules running, at most %d at once, %d pollers; want 0, 1, 0", now, most, polls())
	}
}

// TestSyncAdminIsServedOnEachRolesAddress serves the admin endpoint as
// serve does (on the gateway's Fiber app) and as router does (with the
// operational endpoints), over TCP from loopback: a client there is served
// with no token set, and the answers are the endpoint's.
func TestSyncAdminIsServedOnEachRolesAddress(t *testing.T) {
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	f := &fakeSyncer{source: "crm-in", pages: 1}
	admin := adminFixture(t, "", f)

	gw, err := gatewayServer(ingest.Config{Routes: admin.routes(), EventsTopic: "events", DLQTopic: "dlq"}, log, zap.NewNop(), newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	router := opsServer(newRegistry(), log, destinationHealth{}, nil, admin, testPage(t))
	for name, srv := range map[string]httpServer{"serve's gateway": gw, "router": router} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.serve(ln) //nolint:errcheck // ends with shutdown
			defer srv.shutdown(context.Background())
			endpoint := "http://" + ln.Addr().String() + "/admin/sources/crm-in/sync"
			client := &http.Client{Timeout: 10 * time.Second}
			if _, err := adminCall(t.Context(), client, http.MethodPost, endpoint, "", []byte(`{"full":true}`), http.StatusAccepted); err != nil {
				t.Fatal(err)
			}
			eventuallyTrueWithin(t, 10*time.Second, "the sync's end", func() bool {
				p, err := adminCall(t.Context(), client, http.MethodGet, endpoint, "", nil, http.StatusOK)
				return err == nil && p.State == hubspotsource.SyncDone && p.Kind == "full"
			})
			_, err = adminCall(t.Context(), client, http.MethodGet, "http://"+ln.Addr().String()+"/admin/sources/other/sync", "", nil, http.StatusOK)
			if err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("GET of an unknown source: %v, want a 404", err)
			}
		})
	}
}
