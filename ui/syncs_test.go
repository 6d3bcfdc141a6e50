package ui

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSyncs is a Syncs whose progress the test sets; StartFull records the
// sources asked for and answers err.
type testSyncs struct {
	mu      sync.Mutex
	list    map[string]SourceSync
	started []string
	err     error
}

func newTestSyncs(sources ...string) *testSyncs {
	s := &testSyncs{list: map[string]SourceSync{}}
	for _, name := range sources {
		s.list[name] = SourceSync{Source: name}
	}
	return s
}

func (s *testSyncs) set(p SourceSync) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list[p.Source] = p
}

func (s *testSyncs) Progress() []SourceSync {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SourceSync
	for _, p := range s.list {
		out = append(out, p)
	}
	return out
}

func (s *testSyncs) StartFull(source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.started = append(s.started, source)
	return nil
}

func (s *testSyncs) startedNow() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.started...)
}

func newSyncsHandler(t *testing.T, syncs Syncs, c *clock, sampleEvery time.Duration) *Handler {
	t.Helper()
	cfg := Config{AdminToken: testToken, Metrics: newTestMetrics().reg, Context: t.Context(), SampleEvery: sampleEvery, Syncs: syncs}
	if c != nil {
		cfg.Now = c.now
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

func TestOverviewShowsEachSourcesSyncAndItsOutcome(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	syncs := newTestSyncs("portal", "crm")
	h := newSyncsHandler(t, syncs, c, time.Hour)
	cell := func(f, source, name string) string {
		t.Helper()
		return field(t, f, "data-sync-source", source, name)
	}

	// A catch-up, whose total HubSpot has not counted yet.
	t0 := c.t
	syncs.set(SourceSync{Source: "crm", Kind: "catch-up", State: "running", ObjectType: "contacts", Done: 40, Emitted: 38, Started: t0, Updated: t0})
	f := h.mustSample(t)
	if row := regexp.MustCompile(`(?s)<tr data-sync-source="portal">.*?</tr>`).FindString(f); !strings.Contains(row, "no sync has run in this process") {
		t.Errorf("the row of a source with no sync = %q", row)
	}
	for name, want := range map[string]string{
		"sync-kind": "catch-up", "sync-object-type": "contacts", "sync-read": "40", "sync-percent": "total not known",
		"sync-emitted": "38", "sync-rate": "–", "sync-left": "–", "sync-took": "running",
	} {
		if got := cell(f, "crm", name); got != want {
			t.Errorf("crm %s = %q, want %q", name, got, want)
		}
	}
	if got := cell(f, "crm", "sync-state"); !strings.Contains(got, `data-state="running"`) {
		t.Errorf("crm state = %q, want running", got)
	}
	if got := cell(f, "crm", "sync-started"); !strings.Contains(got, "2026-12-01T10:00:00Z") {
		t.Errorf("crm started = %q", got)
	}
	c.t = c.t.Add(5 * time.Second)
	syncs.set(SourceSync{Source: "crm", Kind: "catch-up", State: "running", ObjectType: "companies", Done: 90, Emitted: 88, Started: t0, Updated: c.t})
	f = h.mustSample(t)
	if got := cell(f, "crm", "sync-rate"); got != "10.0/s" {
		t.Errorf("crm rate after 50 records in 5 s = %q, want 10.0/s", got)
	}
	if got := cell(f, "crm", "sync-left"); got != "–" {
		t.Errorf("crm time left with no total = %q, want –", got)
	}
	if got := cell(f, "crm", "sync-object-type"); got != "companies" {
		t.Errorf("crm object type = %q, want companies", got)
	}

	// A full sync of a known total.
	t1 := c.t
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "running", ObjectType: "contacts", Done: 100, Total: 1000, Emitted: 100, Started: t1, Updated: t1})
	h.mustSample(t)
	c.t = c.t.Add(2 * time.Second)
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "running", ObjectType: "contacts", Done: 300, Total: 1000, Emitted: 300, Started: t1, Updated: c.t})
	f = h.mustSample(t)
	for name, want := range map[string]string{"sync-kind": "full", "sync-read": "300 of 1000", "sync-percent": "30%", "sync-rate": "100.0/s", "sync-left": "about 7s"} {
		if got := cell(f, "portal", name); got != want {
			t.Errorf("portal %s = %q, want %q", name, got, want)
		}
	}

	// Both end: the catch-up done, the full sync failed.
	syncs.set(SourceSync{Source: "crm", Kind: "catch-up", State: "done", ObjectType: "companies", Done: 120, Emitted: 118, Started: t0, Updated: t0.Add(12 * time.Second)})
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "failed", ObjectType: "contacts", Done: 400, Total: 1000, Emitted: 400, Started: t1, Updated: t1.Add(3 * time.Second),
		Error: "HubSpot answered 500 to the contacts search"})
	c.t = c.t.Add(time.Second)
	f = h.mustSample(t)
	if got := cell(f, "crm", "sync-state"); !strings.Contains(got, `data-state="done"`) || strings.Contains(got, "sync-error") {
		t.Errorf("crm state = %q, want done with no error", got)
	}
	if got := cell(f, "crm", "sync-took"); got != "12s" {
		t.Errorf("crm took %q, want 12s", got)
	}
	if got := cell(f, "crm", "sync-rate"); got != "–" {
		t.Errorf("crm rate once done = %q, want –", got)
	}
	if got := cell(f, "portal", "sync-state"); !strings.Contains(got, `data-state="failed"`) || !strings.Contains(got, "HubSpot answered 500 to the contacts search") {
		t.Errorf("portal state = %q, want failed with its error", got)
	}
	if strings.Contains(f, "data-sync-previous") {
		t.Error("an ended sync shows a previous one")
	}

	// The next full sync of portal runs; the failed one shows under it.
	t2 := c.t
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "running", ObjectType: "contacts", Done: 400, Total: 1000, Started: t2, Updated: t2})
	f = h.mustSample(t)
	if got := cell(f, "portal", "sync-state"); !strings.Contains(got, `data-state="running"`) {
		t.Errorf("portal state = %q, want running", got)
	}
	if got := cell(f, "portal", "sync-rate"); got != "–" {
		t.Errorf("the new sync's first rate = %q, want – (the old one's samples do not count)", got)
	}
	if got := field(t, f, "data-sync-previous", "portal", "sync-state"); !strings.Contains(got, `data-state="failed"`) || !strings.Contains(got, "HubSpot answered 500") {
		t.Errorf("portal's previous sync = %q, want the failed one", got)
	}
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "interrupted", ObjectType: "contacts", Done: 450, Total: 1000, Started: t2, Updated: t2.Add(time.Second), Error: "context canceled"})
	f = h.mustSample(t)
	if got := cell(f, "portal", "sync-state"); !strings.Contains(got, `data-state="interrupted"`) || !strings.Contains(got, "context canceled") {
		t.Errorf("portal state = %q, want interrupted", got)
	}
}

func TestOverviewWithoutSyncsHasNoSyncTable(t *testing.T) {
	h := newSyncsHandler(t, nil, nil, time.Hour)
	if f := h.mustSample(t); strings.Contains(f, "hubspot-syncs") {
		t.Error("an overview with no Syncs shows a sync table")
	}
}

// overviewFragments reads the overview fragments a stream sends.
func overviewFragments(t *testing.T, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	out := make(chan string, 1000)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case line == "":
				if name == "" && len(data) > 0 {
					select {
					case out <- strings.Join(data, "\n"):
					case <-t.Context().Done():
						return
					}
				}
				name, data = "", nil
			}
		}
	}()
	return out
}

// waitFragment reads fragments until one holds want.
func waitFragment(t *testing.T, fragments <-chan string, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-fragments:
			if strings.Contains(f, want) {
				return f
			}
		case <-deadline:
			t.Fatalf("no overview on the stream holds %q", want)
		}
	}
}

func TestSyncProgressUpdatesOnTheStream(t *testing.T) {
	syncs := newTestSyncs()
	started := time.Now()
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "running", ObjectType: "contacts", Done: 10, Total: 50, Started: started, Updated: started})
	h := newSyncsHandler(t, syncs, nil, 20*time.Millisecond)
	srv := httptest.NewServer(h)
	// After the test's context ends, which ends the stream.
	t.Cleanup(srv.Close)

	resp := do(t, noRedirect(), "GET", srv.URL+"/ui/overview", nil, map[string]string{"Authorization": "Bearer " + testToken})
	body, _ := io.ReadAll(resp.Body)
	if got := field(t, string(body), "data-sync-source", "portal", "sync-read"); got != "10 of 50" {
		t.Errorf("the overview's records read = %q, want 10 of 50", got)
	}
	fragments := overviewFragments(t, srv.URL+"/ui/stream")
	waitFragment(t, fragments, `<td data-field="sync-read">10 of 50</td>`)
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "running", ObjectType: "companies", Done: 30, Total: 50, Started: started, Updated: time.Now()})
	f := waitFragment(t, fragments, `<td data-field="sync-read">30 of 50</td>`)
	if got := field(t, f, "data-sync-source", "portal", "sync-object-type"); got != "companies" {
		t.Errorf("object type on the stream = %q, want companies", got)
	}
	syncs.set(SourceSync{Source: "portal", Kind: "full", State: "done", ObjectType: "companies", Done: 50, Total: 50, Started: started, Updated: time.Now()})
	f = waitFragment(t, fragments, `data-state="done"`)
	if got := field(t, f, "data-sync-source", "portal", "sync-percent"); got != "100%" {
		t.Errorf("percent once done = %q, want 100%%", got)
	}
}

func TestStartFullSyncFromThePage(t *testing.T) {
	syncs := newTestSyncs("portal")
	h := newSyncsHandler(t, syncs, nil, time.Hour)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := noRedirect()
	form := url.Values{"source": {"portal"}}
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Cookie": sessionCookie + "=forged.value"}} {
		if resp := do(t, c, "POST", srv.URL+"/ui/syncs/full", form, hdr); resp.StatusCode != 401 {
			t.Errorf("POST /ui/syncs/full %v: status %d, want 401", hdr, resp.StatusCode)
		}
	}
	cookie := login(t, srv.URL)
	withCookie := map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}
	if resp := do(t, c, "POST", srv.URL+"/ui/syncs/full", form, withCookie); resp.StatusCode != 403 {
		t.Errorf("a start without the CSRF token: %d, want 403", resp.StatusCode)
	}
	resp := do(t, c, "GET", srv.URL+"/ui/", nil, withCookie)
	page, _ := io.ReadAll(resp.Body)
	button := regexp.MustCompile(`(?s)<form method="post" action="/ui/syncs/full" class="start-sync" data-sync-source="portal">.*?name="csrf" value="([^"]+)".*?</form>`).FindStringSubmatch(string(page))
	if button == nil {
		t.Fatalf("the overview has no full sync button for portal:\n%s", page)
	}
	form.Set("csrf", button[1])
	crossSite := map[string]string{"Cookie": withCookie["Cookie"], "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
	if resp := do(t, c, "POST", srv.URL+"/ui/syncs/full", form, crossSite); resp.StatusCode != 403 {
		t.Errorf("a cross-site start: %d, want 403", resp.StatusCode)
	}
	if got := syncs.startedNow(); len(got) != 0 {
		t.Fatalf("refused starts started %v", got)
	}

	resp = do(t, c, "POST", srv.URL+"/ui/syncs/full", form, map[string]string{"Cookie": withCookie["Cookie"], "Origin": srv.URL})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("a start: %d to %q, want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := syncs.startedNow(); len(got) != 1 || got[0] != "portal" {
		t.Errorf("started %v, want [portal]", got)
	}
	unknown := url.Values{"source": {"other"}, "csrf": {button[1]}}
	if resp := do(t, c, "POST", srv.URL+"/ui/syncs/full", unknown, withCookie); resp.StatusCode != 404 {
		t.Errorf("a start of an unknown source: %d, want 404", resp.StatusCode)
	}
	syncs.mu.Lock()
	syncs.err = ErrSyncRunning
	syncs.mu.Unlock()
	if resp := do(t, c, "POST", srv.URL+"/ui/syncs/full", form, withCookie); resp.StatusCode != 409 {
		t.Errorf("a start while a sync runs: %d, want 409", resp.StatusCode)
	}

	// A process that syncs no source shows no button and starts nothing.
	none := httptest.NewServer(newSyncsHandler(t, nil, nil, time.Hour))
	defer none.Close()
	cookie = login(t, none.URL)
	withCookie = map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}
	resp = do(t, c, "GET", none.URL+"/ui/", nil, withCookie)
	page, _ = io.ReadAll(resp.Body)
	if strings.Contains(string(page), "/ui/syncs/full") {
		t.Error("a process with no synced source shows a full sync button")
	}
	csrf := csrfInput.FindStringSubmatch(string(page))
	if csrf == nil {
		t.Fatal("the overview has no CSRF field")
	}
	if resp := do(t, c, "POST", none.URL+"/ui/syncs/full", url.Values{"source": {"portal"}, "csrf": {csrf[1]}}, withCookie); resp.StatusCode != 404 {
		t.Errorf("a start where no source is synced: %d, want 404", resp.StatusCode)
	}
}
