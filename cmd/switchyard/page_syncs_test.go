package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ui"
)

// TestPageShowsAndStartsTheAdminEndpointsSyncs starts a full sync from the
// page, which runs through the admin endpoint's jobs, and follows it on the
// overview to its end.
func TestPageShowsAndStartsTheAdminEndpointsSyncs(t *testing.T) {
	if pageSyncs(hubspotSources{}.syncAdmin("")) != nil {
		t.Error("a process that syncs no source gives the page Syncs")
	}
	f := &fakeSyncer{source: "crm-in", pages: 3, release: make(chan struct{})}
	admin := adminFixture(t, "", f)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := newDeliveryPage(ctx, ui.Config{AdminToken: "tok", Metrics: newRegistry(), Syncs: pageSyncs(admin), SampleEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler)
	t.Cleanup(func() { cancel(); srv.Close() })
	bearer := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.Header.Set("Authorization", "Bearer tok")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	overviewHas := func(what string, parts ...string) {
		t.Helper()
		eventuallyTrueWithin(t, 10*time.Second, what, func() bool {
			_, body := bearer("GET", "/ui/overview", nil)
			for _, part := range parts {
				if !strings.Contains(body, part) {
					return false
				}
			}
			return true
		})
	}
	overviewHas("crm-in without a sync", `<tr data-sync-source="crm-in">`, "no sync has run in this process")

	full := url.Values{"source": {"crm-in"}}
	if status, body := bearer("POST", "/ui/syncs/full", full); status != http.StatusSeeOther {
		t.Fatalf("starting a full sync: %d %s", status, body)
	}
	if status, _ := bearer("POST", "/ui/syncs/full", full); status != http.StatusConflict {
		t.Errorf("a second start while it runs: %d, want 409", status)
	}
	overviewHas("the full sync running", `<td data-field="sync-kind">full</td>`, `data-state="running"`, `<td data-field="sync-read">0 of 30</td>`)
	f.release <- struct{}{}
	overviewHas("its first page", `<td data-field="sync-read">10 of 30</td>`, `<td data-field="sync-percent">33%</td>`)
	f.release <- struct{}{}
	f.release <- struct{}{}
	overviewHas("its end", `<td data-field="sync-read">30 of 30</td>`, `data-state="done"`)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 || !f.requests[0].Full {
		t.Errorf("the syncer ran %+v, want one full sync", f.requests)
	}
}
