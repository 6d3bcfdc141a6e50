package hubspot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/internal/hubspot/ratelimit"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
)

// emailHarness runs email pollers against a sandbox on an embedded log of
// one partition (so the events topic keeps the order of appends), with a
// directory that can be closed and opened again as after a restart.
type emailHarness struct {
	t       *testing.T
	log     *embedded.Log
	sandbox *sandbox.Server
	client  *api.Client
	cfg     Config
	metrics *Metrics
	dir     *Directory
	// now is the poller's clock, epoch ms.
	now atomic.Int64
	// failAfter makes the request after this many more fail (-1: none);
	// requests counts the requests sent.
	failAfter atomic.Int64
	requests  atomic.Int64
}

// failingTransport fails a request when the harness says so.
type failingTransport struct{ h *emailHarness }

var errInterrupted = errors.New("interrupted")

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.h.requests.Add(1)
	if f.h.failAfter.Add(-1) == -1 {
		return nil, errInterrupted
	}
	return http.DefaultTransport.RoundTrip(r)
}

// emailStart is the harness's clock at its start: 2026-12-01T10:00:00Z.
var emailStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newEmailHarness(t *testing.T, users map[string]string) *emailHarness {
	t.Helper()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	sb := sandbox.New(sandbox.Config{Tier: "api-add-on"})
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	h := &emailHarness{t: t, log: log, sandbox: sb}
	h.now.Store(emailStart.UnixMilli())
	h.failAfter.Store(-1)
	budget, err := ratelimit.NewBudget(ratelimit.APIAddOn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.client, err = api.New(api.Config{BaseURL: hs.URL, Token: "our-token"}, budget, &http.Client{Transport: failingTransport{h}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = Config{
		Name: "crm-in", Token: "our-token", URL: hs.URL, ClientSecret: testSecret,
		Contacts:    Mapping{Fields: map[string]string{"firstname": "first_name"}},
		EmailEvents: true, EmailEventsInterval: config.Duration(50 * time.Millisecond),
		DataDir: t.TempDir(),
		Now:     func() time.Time { return time.UnixMilli(h.now.Load()) },
	}
	if h.metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	h.open()
	t.Cleanup(func() { h.dir.Close() })

	// The app's users, learned from its identifies.
	for userID, email := range users {
		v := fmt.Sprintf(`{"type":"identify","userId":%q,"messageId":"m-%s","traits":{"email":%q},"_switchyard":{"source":"web"}}`, userID, userID, email)
		if err := log.Publish(context.Background(), queue.Message{Topic: "events", Key: []byte(userID), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.dir.Run(ctx, log) }()
	for userID, email := range users {
		waitFor(t, "the directory learns "+email, func() bool { u, ok := h.dir.UserByEmail(email); return ok && u == userID })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return h
}

// open opens the source's directory.
func (h *emailHarness) open() {
	h.t.Helper()
	dir, err := OpenDirectory(h.cfg, zap.NewNop())
	if err != nil {
		h.t.Fatal(err)
	}
	h.dir = dir
}

// restart closes the directory and opens it again, as a new process would.
func (h *emailHarness) restart() {
	h.t.Helper()
	if err := h.dir.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *emailHarness) poller() *EmailPoller {
	h.t.Helper()
	e, err := NewEmailPoller(h.cfg, h.log, h.client, h.dir, h.metrics, zap.NewNop())
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// add adds email events to the sandbox.
func (h *emailHarness) add(events ...sandbox.EmailEvent) {
	h.t.Helper()
	if _, err := h.sandbox.AddEmailEvents(events...); err != nil {
		h.t.Fatal(err)
	}
}

// tracks returns the track calls the source appended, in the log's order.
func (h *emailHarness) tracks() []gjson.Result {
	h.t.Helper()
	return appended(h.t, h.log, func(c gjson.Result) bool { return c.Get("type").String() == "track" })
}

func (h *emailHarness) outcome(outcome string) float64 {
	return testutil.ToFloat64(h.metrics.emailEvents.WithLabelValues("crm-in", outcome))
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func TestEmailPollerEmitsKnownRecipientsOldestFirst(t *testing.T) {
	h := newEmailHarness(t, map[string]string{"u-ada": "ada@example.com", "u-bob": "bob@example.com"})
	at := emailStart.Add(-time.Hour)
	h.add(
		sandbox.EmailEvent{"id": "e-open", "type": "OPEN", "recipient": "bob@example.com", "created": ms(at.Add(3 * time.Second)), "emailCampaignId": 42, "duration": 1200},
		sandbox.EmailEvent{"id": "e-sent", "type": "SENT", "recipient": "ADA@example.com", "created": ms(at), "emailCampaignId": 42, "subject": "Hello"},
		sandbox.EmailEvent{"id": "e-click", "type": "CLICK", "recipient": "ada@example.com", "created": ms(at.Add(2 * time.Second)), "emailCampaignId": 42, "url": "https://example.com/pricing?a=1&b=2"},
		sandbox.EmailEvent{"id": "e-bounce", "type": "BOUNCE", "recipient": "bob@example.com", "created": ms(at.Add(time.Second)), "emailCampaignId": 43, "category": "MAILBOX_FULL", "status": "5.2.2"},
		sandbox.EmailEvent{"id": "e-stranger", "type": "OPEN", "recipient": "stranger@example.com", "created": ms(at.Add(time.Second)), "emailCampaignId": 42},
		// Older than the first poll reads.
		sandbox.EmailEvent{"id": "e-old", "type": "SENT", "recipient": "ada@example.com", "created": ms(emailStart.Add(-31 * 24 * time.Hour)), "emailCampaignId": 41},
	)
	e := h.poller()
	n, err := e.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := h.tracks()
	if n != 4 || len(got) != 4 {
		t.Fatalf("Poll appended %d, the log holds %d tracks; want 4: %v", n, len(got), got)
	}
	want := []struct{ id, event, user, ts string }{
		{"e-sent", "Sent Email", "u-ada", "2026-12-01T09:00:00.000Z"},
		{"e-bounce", "Bounced Email", "u-bob", "2026-12-01T09:00:01.000Z"},
		{"e-click", "Clicked Email Link", "u-ada", "2026-12-01T09:00:02.000Z"},
		{"e-open", "Opened Email", "u-bob", "2026-12-01T09:00:03.000Z"},
	}
	for i, w := range want {
		c := got[i]
		if c.Get("properties.hubspot_event_id").String() != w.id || c.Get("event").String() != w.event ||
			c.Get("userId").String() != w.user || c.Get("timestamp").String() != w.ts {
			t.Errorf("track %d = %s; want %s %q for %s at %s", i, c.Raw, w.id, w.event, w.user, w.ts)
		}
		if c.Get("_switchyard.hubspot.hubId").Int() != 12345678 || c.Get("_switchyard.hubspot.objectType").String() != "email_events" ||
			c.Get("_switchyard.hubspot.objectId").String() != w.id {
			t.Errorf("track %d: _switchyard.hubspot = %s; want the portal, email_events and the event id", i, c.Get("_switchyard.hubspot").Raw)
		}
		if c.Get("receivedAt").String() != "2026-12-01T10:00:00.000Z" || c.Get("messageId").String() == "" {
			t.Errorf("track %d: receivedAt %s, messageId %q", i, c.Get("receivedAt"), c.Get("messageId"))
		}
	}
	for _, p := range []struct {
		track       int
		field, want string
	}{
		{0, "properties.campaign_id", "42"},
		{1, "properties.campaign_id", "43"},
		{1, "properties.bounce_category", "MAILBOX_FULL"},
		{1, "properties.bounce_status", "5.2.2"},
		{2, "properties.url", "https://example.com/pricing?a=1&b=2"},
		{3, "properties.duration_ms", "1200"},
		{0, "context.traits.email", "ADA@example.com"},
	} {
		if v := got[p.track].Get(p.field); v.String() != p.want {
			t.Errorf("track %d: %s = %s; want %s", p.track, p.field, v.Raw, p.want)
		}
	}
	if got := h.outcome("unknown_user"); got != 1 {
		t.Errorf("unknown_user counted %v; want 1", got)
	}
	if got := h.outcome("emitted"); got != 4 {
		t.Errorf("emitted counted %v; want 4", got)
	}
	if got := testutil.ToFloat64(h.metrics.emailCheckpoint.WithLabelValues("crm-in")); got != float64(ms(at.Add(3*time.Second)))/1000 {
		t.Errorf("the checkpoint gauge is %v; want the newest event's time", got)
	}

	// Nothing new: nothing appended.
	if n, err := e.Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second Poll appended %d (%v); want 0", n, err)
	}
	// An event of the checkpoint's millisecond that HubSpot shows only
	// now, and a newer one, after a restart.
	h.add(
		sandbox.EmailEvent{"id": "e-late", "type": "PRINT", "recipient": "ada@example.com", "created": ms(at.Add(3 * time.Second)), "emailCampaignId": 42},
		sandbox.EmailEvent{"id": "e-new", "type": "SPAMREPORT", "recipient": "bob@example.com", "created": ms(at.Add(4 * time.Second)), "emailCampaignId": 42},
	)
	h.restart()
	if n, err := h.poller().Poll(context.Background()); err != nil || n != 2 {
		t.Fatalf("Poll after a restart appended %d (%v); want 2", n, err)
	}
	got = h.tracks()
	if len(got) != 6 || got[4].Get("event").String() != "Printed Email" || got[5].Get("event").String() != "Marked as Spam" {
		t.Fatalf("the log holds %d tracks, ending %v; want 6, the last Printed Email and Marked as Spam", len(got), got[len(got)-2:])
	}
}

// TestEmailPollerHoldsABoundedWindow: a poller that holds few events at once
// splits the window by time and still emits every event once, oldest
// first, including a millisecond with more events than it holds.
func TestEmailPollerHoldsABoundedWindow(t *testing.T) {
	h := newEmailHarness(t, map[string]string{"u-ada": "ada@example.com"})
	var events []sandbox.EmailEvent
	base := ms(emailStart.Add(-time.Hour))
	for i := range 120 {
		created := base + int64(i)*1000
		if i >= 60 && i < 90 {
			created = base + 60_000 // 30 events in one millisecond
		}
		events = append(events, sandbox.EmailEvent{"id": fmt.Sprintf("e-%03d", i), "type": "DELIVERED", "recipient": "ada@example.com", "created": created})
	}
	h.add(events...)
	e := h.poller()
	e.pageSize, e.holdLimit = 7, 20
	n, err := e.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 120 {
		t.Fatalf("Poll appended %d; want 120", n)
	}
	if e.held > e.holdLimit+e.pageSize {
		t.Errorf("the poller held %d events at once; want at most %d", e.held, e.holdLimit+e.pageSize)
	}
	checkOnceInOrder(t, h.tracks(), events)
}

// TestEmailPollerWidensAgainAfterACrowdedMillisecond: a poller that holds
// one event at once narrows its window to a crowded millisecond and then
// widens it again, so the empty hour after it takes a few requests, not one
// per millisecond.
func TestEmailPollerWidensAgainAfterACrowdedMillisecond(t *testing.T) {
	h := newEmailHarness(t, map[string]string{"u-ada": "ada@example.com"})
	start := ms(emailStart.Add(-time.Hour))
	if err := h.dir.SetCheckpoint(emailCheckpointName, emailCheckpoint{Created: start}); err != nil {
		t.Fatal(err)
	}
	var events []sandbox.EmailEvent
	for i := range 3 {
		events = append(events, sandbox.EmailEvent{"id": fmt.Sprintf("e-%d", i), "type": "OPEN", "recipient": "ada@example.com", "created": start + 10})
	}
	h.add(events...)
	e := h.poller()
	e.pageSize, e.holdLimit = 1, 1
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := e.Poll(ctx)
	if err != nil {
		t.Fatalf("Poll: %v after %d requests", err, h.requests.Load())
	}
	if n != 3 {
		t.Fatalf("Poll appended %d; want 3", n)
	}
	// About 2*log2(3,600,000) requests narrow and widen the window.
	if got := h.requests.Load(); got > 100 {
		t.Errorf("the poll took %d requests; want at most 100", got)
	}
	checkOnceInOrder(t, h.tracks(), events)
}

// TestEmailPollerResumesAfterAnInterruption: a poll that fails halfway keeps
// what it appended; the next, after a restart, goes on from there. Polls
// interrupted after ever more requests, each after a restart, emit every
// event once.
func TestEmailPollerResumesAfterAnInterruption(t *testing.T) {
	h := newEmailHarness(t, map[string]string{"u-ada": "ada@example.com"})
	var events []sandbox.EmailEvent
	base := ms(emailStart.Add(-time.Hour))
	for i := range 50 {
		events = append(events, sandbox.EmailEvent{"id": fmt.Sprintf("e-%02d", i), "type": "OPEN", "recipient": "ada@example.com", "created": base + int64(i)*1000})
	}
	h.add(events...)
	if err := h.dir.SetCheckpoint(emailCheckpointName, emailCheckpoint{Created: base}); err != nil {
		t.Fatal(err)
	}
	total, partial := 0, 0
	for k := int64(1); ; k += 2 {
		h.restart()
		e := h.poller()
		e.pageSize, e.holdLimit = 5, 10
		h.failAfter.Store(k)
		n, err := e.Poll(context.Background())
		total += n
		if len(h.tracks()) != total {
			t.Fatalf("the polls appended %d, the log holds %d tracks", total, len(h.tracks()))
		}
		if err == nil {
			break
		}
		if !interrupted(err) {
			t.Fatal(err)
		}
		if n > 0 && total < len(events) {
			partial++
		}
	}
	t.Logf("%d requests", h.requests.Load())
	if total != len(events) || partial == 0 {
		t.Errorf("the polls appended %d in all, %d of them interrupted after appending some; want %d, and some", total, partial, len(events))
	}
	checkOnceInOrder(t, h.tracks(), events)
}

func interrupted(err error) bool {
	return err != nil && strings.Contains(err.Error(), errInterrupted.Error())
}

// TestEmailPollerRandomized: random event times (many in the same
// millisecond), random page sizes and window bounds, events added between
// polls, random interruptions and restarts: every event of a known
// recipient is emitted exactly once, in time order.
func TestEmailPollerRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	users := map[string]string{"u-1": "one@example.com", "u-2": "two@example.com", "u-3": "three@example.com"}
	h := newEmailHarness(t, users)
	recipients := []string{"one@example.com", "two@example.com", "three@example.com", "nobody@example.com"}

	var known []sandbox.EmailEvent
	unknown := 0
	prev := ms(emailStart.Add(-time.Hour))
	if err := h.dir.SetCheckpoint(emailCheckpointName, emailCheckpoint{Created: prev}); err != nil {
		t.Fatal(err)
	}
	// A poll that loops shows as a failure with its seed, not a hung test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := h.poller()
	for round := range 10 {
		// New events from the last poll's time to now, their times drawn from
		// a few milliseconds so that many share one.
		now := h.now.Load()
		slots := make([]int64, 1+rng.IntN(8))
		for i := range slots {
			slots[i] = prev + rng.Int64N(now-prev+1)
		}
		var batch []sandbox.EmailEvent
		for i := range rng.IntN(60) {
			r := recipients[rng.IntN(len(recipients))]
			ev := sandbox.EmailEvent{"id": fmt.Sprintf("r%d-%d", round, i), "type": "OPEN", "recipient": r, "created": slots[rng.IntN(len(slots))]}
			batch = append(batch, ev)
			if r == "nobody@example.com" {
				unknown++
			} else {
				known = append(known, ev)
			}
		}
		h.add(batch...)
		prev = now

		if rng.IntN(3) == 0 {
			h.restart()
			e = h.poller()
		}
		e.pageSize = 1 + rng.IntN(25)
		e.holdLimit = e.pageSize * (1 + rng.IntN(4))
		if rng.IntN(3) == 0 {
			h.failAfter.Store(rng.Int64N(6))
			if _, err := e.Poll(ctx); err != nil && !interrupted(err) {
				t.Fatal(err)
			}
			h.failAfter.Store(-1)
		}
		if _, err := e.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if e.held > e.holdLimit+e.pageSize {
			t.Fatalf("round %d: the poller held %d events at once; want at most %d", round, e.held, e.holdLimit+e.pageSize)
		}
		e.held = 0
		h.now.Add(rng.Int64N(5000))
	}
	t.Logf("%d events of known users, %d of others, %d requests", len(known), unknown, h.requests.Load())
	checkOnceInOrder(t, h.tracks(), known)
	if got := h.outcome("unknown_user"); got != float64(unknown) {
		t.Errorf("unknown_user counted %v; want %d", got, unknown)
	}
}

// checkOnceInOrder checks that tracks are want's events, each once, in the
// order of their created times.
func checkOnceInOrder(t *testing.T, tracks []gjson.Result, want []sandbox.EmailEvent) {
	t.Helper()
	created := map[string]int64{}
	for _, ev := range want {
		created[ev["id"].(string)] = ev["created"].(int64)
	}
	seen := map[string]bool{}
	var last int64
	for i, c := range tracks {
		id := c.Get("properties.hubspot_event_id").String()
		at, ok := created[id]
		switch {
		case !ok:
			t.Errorf("track %d is of event %q, which was not to be emitted", i, id)
		case seen[id]:
			t.Errorf("event %s emitted twice", id)
		case at < last:
			t.Errorf("event %s (created %d) emitted after an event created at %d", id, at, last)
		}
		if want := time.UnixMilli(at).UTC().Format("2006-01-02T15:04:05.000Z"); ok && c.Get("timestamp").String() != want {
			t.Errorf("event %s: timestamp %s; want %s", id, c.Get("timestamp"), want)
		}
		seen[id] = true
		last = max(last, at)
	}
	var missing []string
	for id := range created {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d events never emitted: %v", len(missing), len(created), missing)
	}
}

// TestEmailPollerRunTriesAgain: Run polls at its interval, and a failed
// poll is counted and tried again.
func TestEmailPollerRunTriesAgain(t *testing.T) {
	h := newEmailHarness(t, map[string]string{"u-ada": "ada@example.com"})
	h.add(sandbox.EmailEvent{"id": "e-1", "type": "SENT", "recipient": "ada@example.com", "created": ms(emailStart.Add(-time.Minute))})
	h.failAfter.Store(0)
	e := h.poller()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "the first event is emitted", func() bool { return len(h.tracks()) == 1 })
	if got := testutil.ToFloat64(h.metrics.emailPolls.WithLabelValues("crm-in", "failed")); got != 1 {
		t.Errorf("failed polls counted %v; want 1", got)
	}
	h.add(sandbox.EmailEvent{"id": "e-2", "type": "OPEN", "recipient": "ada@example.com", "created": ms(emailStart.Add(time.Second))})
	h.now.Add(2000)
	waitFor(t, "the second event is emitted", func() bool { return len(h.tracks()) == 2 })
	waitFor(t, "two polls are counted ok", func() bool {
		return testutil.ToFloat64(h.metrics.emailPolls.WithLabelValues("crm-in", "ok")) >= 2
	})
}

func TestNewEmailPollerRefuses(t *testing.T) {
	h := newEmailHarness(t, nil)
	off := h.cfg
	off.EmailEvents = false
	for name, build := range map[string]func() error{
		"email_events off": func() error { _, err := NewEmailPoller(off, h.log, h.client, h.dir, h.metrics, nil); return err },
		"no client":        func() error { _, err := NewEmailPoller(h.cfg, h.log, nil, h.dir, h.metrics, nil); return err },
		"no directory":     func() error { _, err := NewEmailPoller(h.cfg, h.log, h.client, nil, h.metrics, nil); return err },
		"no metrics":       func() error { _, err := NewEmailPoller(h.cfg, h.log, h.client, h.dir, nil, nil); return err },
	} {
		if err := build(); err == nil {
			t.Errorf("%s: NewEmailPoller gave no error", name)
		}
	}
}
