package hubspot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/config"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/schemas"
)

// These tests run the whole delivery path at HubSpot's free tier: identify
// events in the embedded log, a router, the HubSpot destination, and a
// sandbox portal behind an httptest server that enforces HubSpot's limits.

// loadClock is the time of the sandbox, the destination's rate limits and
// the router. It runs Scale times as fast as the wall clock, so a test can
// live through HubSpot's 10-second windows in a fraction of the time, and
// Advance jumps it forward, for example past the midnight that ends a daily
// pause. The embedded log and the HTTP client keep the wall clock.
type loadClock struct {
	scale  float64
	origin time.Time // wall time when the clock was at base

	mu   sync.Mutex
	base time.Time
}

func newLoadClock(start time.Time, scale float64) *loadClock {
	return &loadClock{scale: scale, origin: time.Now(), base: start}
}

func (c *loadClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Duration(float64(time.Since(c.origin)) * c.scale))
}

// After fires once d of this clock's time has passed at its running speed;
// a later Advance does not make it fire sooner, so waiters look again late,
// never early.
func (c *loadClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	time.AfterFunc(time.Duration(float64(d)/c.scale), func() { ch <- c.Now() })
	return ch
}

func (c *loadClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.base.Add(d)
}

// apiCall is one API request the sandbox answered.
type apiCall struct {
	at     time.Time // the load clock's time when it arrived
	route  string
	status int
}

// callRecorder sits in front of the sandbox and records every API request.
type callRecorder struct {
	next http.Handler
	now  func() time.Time

	mu    sync.Mutex
	calls []apiCall
}

func (c *callRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		c.next.ServeHTTP(w, r)
		return
	}
	at := c.now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	c.next.ServeHTTP(sw, r)
	c.mu.Lock()
	c.calls = append(c.calls, apiCall{at: at, route: r.Method + " " + r.URL.Path, status: sw.status})
	c.mu.Unlock()
}

func (c *callRecorder) snapshot() []apiCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]apiCall(nil), c.calls...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// countingDestination counts Send calls, begun and in progress. It keeps
// PausedUntil, which the router asks before it sends.
type countingDestination struct {
	*hubspot.HubSpot
	sends, sending atomic.Int64
}

func (d *countingDestination) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	d.sends.Add(1)
	d.sending.Add(1)
	defer d.sending.Add(-1)
	return d.HubSpot.Send(ctx, batch)
}

var _ destinations.Destination = (*countingDestination)(nil)

// pipeline is one router delivering the log's events to a sandbox portal.
type pipeline struct {
	log      queue.Log
	sandbox  *sandbox.Server
	calls    *callRecorder
	dest     *countingDestination
	router   *router.Router
	finished atomic.Int64 // events delivered, dead-lettered or skipped
}

type pipelineConfig struct {
	// clock is the time of the sandbox, the destination and the router;
	// nil means the wall clock.
	clock  *loadClock
	sbox   sandbox.Config
	dest   hubspot.Config
	router router.Config
}

func newPipeline(tb testing.TB, cfg pipelineConfig) *pipeline {
	tb.Helper()
	now := time.Now
	if cfg.clock != nil {
		now = cfg.clock.Now
		cfg.sbox.Now = cfg.clock.Now
		cfg.dest.Clock = cfg.clock
		cfg.router.Now = cfg.clock.Now
	}
	log, err := embedded.Open(embedded.Config{Dir: tb.TempDir(), Partitions: 4}, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { log.Close() })

	if cfg.sbox.Tier == "" {
		cfg.sbox.Tier = "free"
	}
	cfg.sbox.HubID = hubID
	p := &pipeline{log: log, sandbox: sandbox.New(cfg.sbox)}
	p.calls = &callRecorder{next: p.sandbox, now: now}
	srv := httptest.NewServer(p.calls)
	tb.Cleanup(srv.Close)

	cfg.dest.Token, cfg.dest.BaseURL, cfg.dest.HubID, cfg.dest.Tier = "pat-load", srv.URL, hubID, cfg.sbox.Tier
	h, err := hubspot.NewWithOwnClient("hubspot", cfg.dest, zap.NewNop(), srv.Client())
	if err != nil {
		tb.Fatal(err)
	}
	p.dest = &countingDestination{HubSpot: h}

	cfg.router.Destination = "hubspot"
	if cfg.router.BackoffMin == 0 {
		cfg.router.BackoffMin, cfg.router.BackoffMax = config.Duration(10*time.Millisecond), config.Duration(100*time.Millisecond)
	}
	if cfg.router.CommitInterval == 0 {
		// The router looks at its retries and at the destination's pause
		// each time it commits: often, so that a test clock's jumps are
		// noticed at once.
		cfg.router.CommitInterval = config.Duration(20 * time.Millisecond)
	}
	cfg.router.OnFinish = func() { p.finished.Add(1) }
	metrics, err := router.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	if p.router, err = router.New(cfg.router, p.dest, log, zap.NewNop(), metrics); err != nil {
		tb.Fatal(err)
	}
	return p
}

// start runs the router until the test ends or stop is called.
func (p *pipeline) start(tb testing.TB) (stop func()) {
	tb.Helper()
	sub, err := p.log.Subscribe(context.Background(), queue.SubscribeConfig{Group: p.router.Group(), Topic: "events"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.router.Run(ctx, sub) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("router: %v", err)
			}
			sub.Close()
		})
	}
	tb.Cleanup(stop)
	return stop
}

func (p *pipeline) publish(tb testing.TB, msgs []queue.Message) {
	tb.Helper()
	for start := 0; start < len(msgs); start += 1000 {
		if err := p.log.Publish(context.Background(), msgs[start:min(len(msgs), start+1000)]...); err != nil {
			tb.Fatal(err)
		}
	}
}

// waitFinished waits until n events are finished, for up to timeout.
func (p *pipeline) waitFinished(tb testing.TB, n int64, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for p.finished.Load() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d events finished after %s; sandbox answers: %v", p.finished.Load(), n, timeout, p.sandbox.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deadLetters returns the dead letters written so far.
func (p *pipeline) deadLetters(tb testing.TB) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := p.log.Read(ctx, "dlq", queue.Position{Kind: queue.First})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		lag, err := r.Lag(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if lag == 0 {
			return out
		}
		m, err := r.Fetch(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(m.Value))
	}
}

// answers sums the sandbox's answers with status over every endpoint.
func (p *pipeline) answers(status int) int {
	n := 0
	for _, byStatus := range p.sandbox.Stats() {
		n += byStatus[status]
	}
	return n
}

func (p *pipeline) totalCalls() int {
	n := 0
	for _, byStatus := range p.sandbox.Stats() {
		for _, c := range byStatus {
			n += c
		}
	}
	return n
}

const upsertRoute = "POST /crm/v3/objects/{objectType}/batch/upsert"

// upserts returns the contact upsert calls answered 200 or 207.
func (p *pipeline) upserts() int {
	s := p.sandbox.Stats()[upsertRoute]
	return s[http.StatusOK] + s[http.StatusMultiStatus]
}

// checkContacts fails unless the portal holds exactly the contacts of
// users [0, n), each with the properties its identify set.
func (p *pipeline) checkContacts(tb testing.TB, n int) {
	tb.Helper()
	contacts := p.sandbox.Contacts()
	byEmail := make(map[string]map[string]string, len(contacts))
	for _, c := range contacts {
		byEmail[c.Properties["email"]] = c.Properties
	}
	if len(contacts) != n || len(byEmail) != n {
		tb.Fatalf("the portal holds %d contacts (%d distinct emails), want %d", len(contacts), len(byEmail), n)
	}
	for i := range n {
		got, ok := byEmail[loadEmail(i)]
		if !ok {
			tb.Fatalf("no contact for %s", loadEmail(i))
		}
		for k, v := range loadProperties(i) {
			if got[k] != v {
				tb.Fatalf("%s: %s = %q, want %q (all: %v)", loadEmail(i), k, got[k], v, got)
			}
		}
	}
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen"}
	cities     = []struct{ city, zip, country string }{
		{"London", "EC1A 1BB", "United Kingdom"}, {"Paris", "75011", "France"}, {"Berlin", "10115", "Germany"},
		{"Boston", "02110", "United States"}, {"Lisbon", "1100-148", "Portugal"}, {"Toronto", "M5V 2T6", "Canada"},
	}
	titles = []string{"CTO", "Head of Growth", "Product Manager", "Software Engineer", "VP Sales"}
)

func loadEmail(i int) string { return fmt.Sprintf("user%06d@example.com", i) }

// loadIdentify is user i's identify, as the gateway writes it to the log.
func loadIdentify(i int, receivedAt time.Time) queue.Message {
	userID := fmt.Sprintf("user-%06d", i)
	c := cities[i%len(cities)]
	ts := receivedAt.UTC().Format(time.RFC3339Nano)
	value := fmt.Sprintf(`{"type":"identify","userId":%q,"messageId":"msg-%06d","timestamp":%q,"receivedAt":%q,`+
		`"context":{"library":{"name":"analytics.js","version":"4.1.0"},"ip":"203.0.113.%d","userAgent":"Mozilla/5.0"},`+
		`"traits":{"email":%q,"firstName":%q,"lastName":%q,"phone":"+44 20 7946 %04d","title":%q,"company":{"name":"Company %d"},`+
		`"address":{"city":%q,"postalCode":%q,"country":%q},"website":"https://company%d.example.com","lifecycle_stage":"lead","plan":"pro"},`+
		`"_switchyard":{"source":"web"}}`,
		userID, i, ts, ts, i%250, loadEmail(i), firstNames[i%len(firstNames)], lastNames[i/len(firstNames)%len(lastNames)],
		i%10000, titles[i%len(titles)], i%500, c.city, c.zip, c.country, i%500)
	return queue.Message{Topic: "events", Key: []byte(userID), Value: []byte(value)}
}

// loadProperties is what user i's identify sets on the contact.
func loadProperties(i int) map[string]string {
	c := cities[i%len(cities)]
	return map[string]string{
		"email": loadEmail(i), "firstname": firstNames[i%len(firstNames)], "lastname": lastNames[i/len(firstNames)%len(lastNames)],
		"phone": fmt.Sprintf("+44 20 7946 %04d", i%10000), "jobtitle": titles[i%len(titles)], "company": fmt.Sprintf("Company %d", i%500),
		"city": c.city, "zip": c.zip, "country": c.country, "website": fmt.Sprintf("https://company%d.example.com", i%500),
		"lifecyclestage": "lead",
	}
}

func loadIdentifies(from, to int, receivedAt time.Time) []queue.Message {
	msgs := make([]queue.Message, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, loadIdentify(i, receivedAt))
	}
	return msgs
}

// busiestWindow is the most calls that arrived within any 10 seconds.
func busiestWindow(calls []apiCall) int {
	times := make([]time.Time, len(calls))
	for i, c := range calls {
		times[i] = c.at
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	most := 0
	for i, j := 0, 0; j < len(times); j++ {
		for times[j].Sub(times[i]) >= 10*time.Second {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// At the free tier's ceiling (100 calls per 10 s, 100 contacts a call)
// 12,000 contacts need more than one window's calls, so the destination must
// pace itself through a second window; it must do so without a single 429.
func TestSteadyLoadAtTheFreeTierGetsNo429(t *testing.T) {
	const contacts = 12_000
	p := newPipeline(t, pipelineConfig{})
	p.publish(t, loadIdentifies(0, contacts, time.Now()))
	start := time.Now()
	stop := p.start(t)
	p.waitFinished(t, contacts, 60*time.Second)
	elapsed := time.Since(start)
	stop()

	if n := p.answers(http.StatusTooManyRequests); n != 0 {
		t.Fatalf("%d answers were 429 at steady state: %v", n, p.sandbox.Stats())
	}
	if dl := p.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, the first: %s", len(dl), dl[0])
	}
	p.checkContacts(t, contacts)
	calls := p.calls.snapshot()
	upserts := p.upserts()
	if len(calls) <= 100 {
		t.Fatalf("%d calls: the load never needed more than one 10-second window, so pacing was not tested", len(calls))
	}
	if most := busiestWindow(calls); most > 100 {
		t.Fatalf("%d calls within 10 seconds, over the free tier's 100", most)
	}
	t.Logf("%d contacts in %s: %d calls (%d upserts, %.1f records per upsert), at most %d calls in any 10 s, no 429",
		contacts, elapsed.Round(time.Millisecond), len(calls), upserts, float64(contacts)/float64(upserts), busiestWindow(calls))
}

// The sandbox answers 20 requests in a row with 429 TEN_SECONDLY_ROLLING in
// the middle of a run. Each 429 makes the destination wait out the 10-second
// window and the router retry the batch; every event must still be delivered
// and none dead-lettered. The clock runs 10 times as fast as the wall clock
// so the ten or so windows the storm costs pass in seconds.
func TestA429StormIsRiddenOutWithoutDeadLetters(t *testing.T) {
	const storm, before, after = 20, 1_500, 1_500
	clock := newLoadClock(time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), 10)
	p := newPipeline(t, pipelineConfig{clock: clock})
	p.start(t)
	p.publish(t, loadIdentifies(0, before, clock.Now()))
	p.waitFinished(t, before, 30*time.Second)

	p.sandbox.RateLimitBurst(storm)
	stormAt := clock.Now()
	p.publish(t, loadIdentifies(before, before+after, clock.Now()))
	p.waitFinished(t, before+after, 60*time.Second)

	if dl := p.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters after a 429 storm, the first: %s", len(dl), dl[0])
	}
	p.checkContacts(t, before+after)
	// Every injected 429 was met, and the destination's own pacing added
	// none: after a 429 it waits for the window instead of hammering.
	if n := p.answers(http.StatusTooManyRequests); n != storm {
		t.Fatalf("%d answers were 429, want the %d injected: %v", n, storm, p.sandbox.Stats())
	}
	calls := p.calls.snapshot()
	if most := busiestWindow(calls); most > 100 {
		t.Fatalf("%d calls within 10 seconds, over the free tier's 100", most)
	}
	t.Logf("a storm of %d 429s ridden out in %s of portal time: %d calls in all, %d upserts, no dead letters",
		storm, clock.Now().Sub(stormAt).Round(time.Second), len(calls), p.upserts())
}

// After a DAILY 429 the destination pauses until the account's midnight and
// the router sends nothing meanwhile; when the day turns, delivery resumes
// and nothing is dead-lettered. The sandbox, the destination's budget and
// the router share one clock, which the test moves past midnight instead of
// waiting for it. The router's timers run on the wall clock; with its 20 ms
// commit interval it looks at its retries and the pause again at once.
func TestADaily429PausesAndResumes(t *testing.T) {
	const warmup, total = 200, 700
	midnight := time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC)
	clock := newLoadClock(midnight.Add(-2*time.Minute), 1)
	p := newPipeline(t, pipelineConfig{clock: clock})
	p.start(t)
	p.publish(t, loadIdentifies(0, warmup, clock.Now()))
	p.waitFinished(t, warmup, 30*time.Second)

	p.sandbox.ExhaustDaily()
	p.publish(t, loadIdentifies(warmup, total, clock.Now()))
	deadline := time.Now().Add(30 * time.Second)
	// Wait for the pause, and for the batches sent before it to come back.
	for p.answers(http.StatusTooManyRequests) == 0 || p.dest.PausedUntil().IsZero() || p.dest.sending.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no pause after the daily limit was used up; sandbox answers %v", p.sandbox.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A batch handed over just before the pause may still be on its way
	// into Send.
	time.Sleep(50 * time.Millisecond)
	if until := p.dest.PausedUntil(); !until.Equal(midnight) {
		t.Fatalf("paused until %s, want the account's midnight %s", until, midnight)
	}

	// Watch for a while: with the router looking at its queue every 20 ms,
	// 500 ms is 25 chances to send. A router that ignored the pause would
	// send the waiting batches at once; a destination that ignored it would
	// call HubSpot.
	sends, calls, finished := p.dest.sends.Load(), p.totalCalls(), p.finished.Load()
	time.Sleep(500 * time.Millisecond)
	if n := p.dest.sends.Load() - sends; n != 0 {
		t.Fatalf("the router sent %d batches while the destination was paused", n)
	}
	if n := p.totalCalls() - calls; n != 0 {
		t.Fatalf("%d calls to HubSpot while paused: %v", n, p.sandbox.Stats())
	}
	if finished >= total {
		t.Fatalf("all %d events finished although the daily limit was used up", finished)
	}
	if p.dest.PausedUntil().IsZero() {
		t.Fatal("the pause ended before midnight")
	}

	clock.Advance(2*time.Minute + time.Second)
	if until := p.dest.PausedUntil(); !until.IsZero() {
		t.Fatalf("still paused until %s after midnight", until)
	}
	p.waitFinished(t, total, 30*time.Second)
	if dl := p.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters after a daily pause, the first: %s", len(dl), dl[0])
	}
	p.checkContacts(t, total)
	t.Logf("%d of %d events held by the pause (DAILY 429 answers: %d); all delivered after midnight, no dead letters",
		total-finished, total, p.answers(http.StatusTooManyRequests))
}

func TestAPausedSendWaitsByTheInjectedClock(t *testing.T) {
	midnight := time.Date(2027, 1, 16, 0, 0, 0, 0, time.UTC)
	clock := newLoadClock(midnight.Add(-2*time.Minute), 1)
	sb := sandbox.New(sandbox.Config{HubID: hubID, Now: clock.Now})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	h, err := hubspot.NewWithOwnClient("hubspot", hubspot.Config{Token: "pat", BaseURL: srv.URL, HubID: hubID, Clock: clock}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sb.ExhaustDaily()
	asEvent := func(m queue.Message) []destinations.Event {
		return []destinations.Event{{Event: schemas.NewEvent(m.Value), Attempt: 1}}
	}
	calls := func() int {
		n := 0
		for _, byStatus := range sb.Stats() {
			for _, c := range byStatus {
				n += c
			}
		}
		return n
	}
	h.Send(context.Background(), asEvent(loadIdentify(1, clock.Now()))) // 429 DAILY
	before := calls()
	if before == 0 {
		t.Fatal("the first send reached HubSpot by no call the sandbox counts")
	}
	second := h.Send(context.Background(), asEvent(loadIdentify(2, clock.Now())))[0] // paused: no call
	if after := calls(); after != before {
		t.Fatalf("the paused send made %d calls, want none", after-before)
	}
	if second.Result != destinations.Retry || second.RetryAfter > 3*time.Minute || second.RetryAfter <= 0 {
		t.Fatalf("a paused send retries after %s, want about the 2 minutes to midnight on the injected clock", second.RetryAfter)
	}
}
