package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/config"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/queuetest"
)

// scripted is a destination that answers each event from a script keyed by
// messageId (unscripted events are delivered) and records every attempt. Like
// a real destination it holds back, within a batch, the events that follow a
// retried one of the same user: those are retried with class "held".
type scripted struct {
	policy destinations.Policy

	mu       sync.Mutex
	script   map[string][]destinations.Outcome
	always   map[string]destinations.Outcome
	attempts []attempt
	changed  chan struct{}
	// block, when set, holds every Send until it is closed or ctx ends;
	// sending then receives a value as each Send starts.
	block   chan struct{}
	sending chan struct{}
}

type attempt struct {
	messageID string
	user      string
	n         int
	outcome   destinations.Result
	class     string
}

func newScripted(policy destinations.Policy) *scripted {
	return &scripted{policy: policy, script: map[string][]destinations.Outcome{},
		always: map[string]destinations.Outcome{}, changed: make(chan struct{}, 1)}
}

func (s *scripted) Policy() destinations.Policy { return s.policy }

func (s *scripted) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	if s.block != nil {
		select {
		case s.sending <- struct{}{}:
		default:
		}
		select {
		case <-s.block:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]destinations.Outcome, len(batch))
	heldBack := map[string]bool{}
	for i, ev := range batch {
		id := ev.MessageID()
		o := destinations.Ok()
		switch {
		case ctx.Err() != nil:
			o = destinations.RetryLater("shutdown", "stopping", 0)
		case heldBack[ev.Key()]:
			o = destinations.RetryLater("held", "an earlier event of this user is being retried", 0)
		case s.always[id].Reason != "":
			o = s.always[id]
		case len(s.script[id]) > 0:
			o = s.script[id][0]
			s.script[id] = s.script[id][1:]
		}
		if o.Result == destinations.Retry {
			heldBack[ev.Key()] = true
		}
		out[i] = o
		s.attempts = append(s.attempts, attempt{messageID: id, user: ev.Key(), n: ev.Attempt, outcome: o.Result, class: o.Class})
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return out
}

// all returns every attempt, held ones included, in the order they were made.
func (s *scripted) all() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

func (s *scripted) delivered() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []attempt
	for _, a := range s.attempts {
		if a.outcome == destinations.Delivered {
			out = append(out, a)
		}
	}
	return out
}

// count counts the attempts of an event answered with r, leaving out those
// the destination held back behind a retried event of the same user.
func (s *scripted) count(id string, r destinations.Result) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.attempts {
		if a.messageID == id && a.outcome == r && a.class != "held" {
			n++
		}
	}
	return n
}

// waitUntil re-checks cond each time the destination answers, for up to 20s.
func (s *scripted) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

var (
	status500 = destinations.Outcome{Result: destinations.Retry, Class: "http_5xx", Reason: "answered 500", Status: 500}
	status400 = destinations.Outcome{Result: destinations.DeadLetter, Class: "http_4xx", Reason: "answered 400 Bad Request", Status: 400, Response: `{"error":"bad"}`}
)

type harness struct {
	log     queue.Log
	metrics *Metrics
	reg     *prometheus.Registry
}

func newHarness(t *testing.T, partitions int) *harness {
	t.Helper()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: partitions}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{log: log, metrics: m, reg: reg}
}

func event(user, id string, extra ...string) queue.Message {
	fields := append([]string{
		`"type":"track"`, `"event":"E"`, fmt.Sprintf(`"userId":%q`, user), fmt.Sprintf(`"messageId":%q`, id),
		fmt.Sprintf(`"receivedAt":%q`, time.Now().UTC().Format(time.RFC3339Nano)), `"_switchyard":{"source":"web"}`,
	}, extra...)
	return queue.Message{Topic: "events", Key: []byte(user), Value: []byte("{" + strings.Join(fields, ",") + "}")}
}

func (h *harness) publish(t *testing.T, msgs ...queue.Message) {
	t.Helper()
	if err := h.log.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// start runs a router until the test ends or stop is called.
func (h *harness) start(t *testing.T, cfg Config, dest destinations.Destination) (stop func()) {
	t.Helper()
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = config.Duration(5*time.Millisecond), config.Duration(20*time.Millisecond)
	}
	r, err := New(cfg, dest, h.log, zap.NewNop(), h.metrics)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := h.log.Subscribe(context.Background(), queue.SubscribeConfig{Group: r.Group(), Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, sub) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("router: %v", err)
			}
			sub.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func (h *harness) deadLetters(t *testing.T) []gjson.Result {
	t.Helper()
	var out []gjson.Result
	for _, m := range queuetest.ReadAll(t, h.log, "dlq") {
		out = append(out, gjson.ParseBytes(m.Value))
	}
	return out
}

// eventually waits up to 10s for cond, which the router's own goroutine
// makes true a moment after the destination has answered.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

var smallBatches = destinations.Policy{MaxItems: 10, MaxWait: 5 * time.Millisecond, MaxInFlight: 2}

func TestEveryEventIsDeliveredAndCommitted(t *testing.T) {
	h := newHarness(t, 4)
	for i := 0; i < 200; i++ {
		h.publish(t, event(fmt.Sprintf("user-%d", i%7), fmt.Sprintf("m%d", i)))
	}
	dest := newScripted(smallBatches)
	stop := h.start(t, Config{Destination: "hook"}, dest)
	dest.waitUntil(t, "200 events are delivered", func() bool { return len(dest.delivered()) == 200 })
	stop()

	// A new run of the same group finds nothing left to deliver.
	again := newScripted(smallBatches)
	h.publish(t, event("user-x", "after"))
	stopAgain := h.start(t, Config{Destination: "hook"}, again)
	again.waitUntil(t, "the new event is delivered", func() bool {
		for _, d := range again.delivered() {
			if d.messageID == "after" {
				return true
			}
		}
		return false
	})
	// Stopped, the second run can deliver nothing more: what it delivered
	// is all it will ever deliver.
	stopAgain()
	if d := again.delivered(); len(d) != 1 || d[0].messageID != "after" {
		t.Fatalf("the second run delivered %v, want only the new event: committed offsets were not honoured", d)
	}
	if got := testutil.ToFloat64(h.metrics.events.WithLabelValues("hook", "delivered")); got != 201 {
		t.Fatalf("delivered metric %v, want exactly 201", got)
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	dest.script["flaky"] = []destinations.Outcome{status500, status500, destinations.Ok()}
	h.publish(t, event("u1", "flaky"))
	h.start(t, Config{Destination: "hook"}, dest)
	dest.waitUntil(t, "the flaky event is delivered", func() bool { return dest.count("flaky", destinations.Delivered) == 1 })
	if n := dest.count("flaky", destinations.Retry); n != 2 {
		t.Fatalf("%d failed attempts, want 2", n)
	}
	if got := testutil.ToFloat64(h.metrics.events.WithLabelValues("hook", "retried")); got != 2 {
		t.Fatalf("retried metric %v, want 2", got)
	}
	if dl := h.deadLetters(t); len(dl) != 0 {
		t.Fatalf("dead letters for an event that was delivered: %v", dl)
	}
}

func TestPermanentFailuresAreDeadLetteredAtOnce(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	dest.script["bad"] = []destinations.Outcome{status400}
	h.publish(t, event("u1", "bad"), event("u1", "good"))
	h.start(t, Config{Destination: "hook"}, dest)
	dest.waitUntil(t, "the good event is delivered", func() bool { return dest.count("good", destinations.Delivered) == 1 })
	var dl []gjson.Result
	dest.waitUntil(t, "the dead letter is written", func() bool { dl = h.deadLetters(t); return len(dl) == 1 })
	d := dl[0]
	if d.Get("message.messageId").String() != "bad" || d.Get("stage").String() != "hook" || d.Get("attempts").Int() != 1 ||
		d.Get("lastStatus").Int() != 400 || d.Get("lastResponse").String() != `{"error":"bad"}` || !strings.Contains(d.Get("reason").String(), "400") {
		t.Fatalf("dead letter %s", d.Raw)
	}
	if n := dest.count("bad", destinations.DeadLetter); n != 1 {
		t.Fatalf("the bad event was attempted %d times, want once", n)
	}
	eventually(t, "the dead letter metric counts it", func() bool {
		return testutil.ToFloat64(h.metrics.dead.WithLabelValues("hook", "http_4xx")) == 1
	})
}

func TestAUsersLaterEventsWaitForARetriedOneAndOthersFlow(t *testing.T) {
	h := newHarness(t, 1) // one partition: every user's events interleave in it
	dest := newScripted(smallBatches)
	dest.script["a1"] = []destinations.Outcome{status500, status500, status500}
	for i := 1; i <= 3; i++ {
		h.publish(t, event("alice", fmt.Sprintf("a%d", i)))
	}
	h.start(t, Config{Destination: "hook", BackoffMin: config.Duration(100 * time.Millisecond), BackoffMax: config.Duration(100 * time.Millisecond)}, dest)
	// Bob's events arrive while alice's first is being retried: a router
	// that held the whole partition behind a retry would keep them waiting.
	dest.waitUntil(t, "a1 has failed once", func() bool { return dest.count("a1", destinations.Retry) >= 1 })
	for i := 1; i <= 3; i++ {
		h.publish(t, event("bob", fmt.Sprintf("b%d", i)))
	}
	dest.waitUntil(t, "all six are delivered", func() bool { return len(dest.delivered()) == 6 })
	var alice, order []string
	for _, a := range dest.delivered() {
		order = append(order, a.messageID)
		if a.user == "alice" {
			alice = append(alice, a.messageID)
		}
	}
	if strings.Join(alice, ",") != "a1,a2,a3" {
		t.Fatalf("alice's events delivered as %v, want a1,a2,a3", alice)
	}
	if strings.Join(order[:3], ",") != "b1,b2,b3" {
		t.Fatalf("delivery order %v: bob was held back by alice's retries", order)
	}
	// Until a1 is delivered, every attempt of a2 is one the destination
	// held back behind it in the same batch: none went out on its own.
	held := 0
	for _, a := range dest.all() {
		if a.messageID == "a1" && a.outcome == destinations.Delivered {
			break
		}
		if a.messageID == "a2" {
			if a.class != "held" {
				t.Fatalf("a2 attempt %d answered %v (class %q) while a1 was still failing", a.n, a.outcome, a.class)
			}
			held++
		}
	}
	if held == 0 {
		t.Fatal("a2 was never sent next to a failing a1: the check above saw nothing")
	}
	if dest.count("a2", destinations.Delivered) != 1 {
		t.Fatalf("a2 delivered %d times, want once", dest.count("a2", destinations.Delivered))
	}
}

func TestAnEventStuckInRetryIsNeverCommittedPast(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	dest.always["stuck"] = status500
	h.publish(t, event("u-stuck", "before"), event("u-stuck", "stuck"))
	for i := 0; i < 20; i++ {
		h.publish(t, event(fmt.Sprintf("other-%d", i), fmt.Sprintf("later-%d", i)))
	}
	stop := h.start(t, Config{Destination: "hook", CommitInterval: config.Duration(5 * time.Millisecond)}, dest)
	dest.waitUntil(t, "the later events are delivered and stuck is retried", func() bool {
		return len(dest.delivered()) == 21 && dest.count("stuck", destinations.Retry) >= 3
	})
	stop()

	// The group resumes at the stuck event, not after the later ones.
	sub, err := h.log.Subscribe(context.Background(), queue.SubscribeConfig{Group: "switchyard-hook", Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := sub.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id := gjson.GetBytes(m.Value, "messageId").String(); id != "stuck" {
		t.Fatalf("the group resumes at %q, want stuck (offset 1)", id)
	}
}

func TestRetriesEndInADeadLetterAfterTheRetryWindow(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	dest.always["doomed"] = status500
	h.publish(t, event("u1", "doomed"))
	h.start(t, Config{Destination: "hook", RetryWindow: config.Duration(100 * time.Millisecond)}, dest)
	var dl []gjson.Result
	dest.waitUntil(t, "the dead letter is written", func() bool { dl = h.deadLetters(t); return len(dl) == 1 })
	reason := dl[0].Get("reason").String()
	if !strings.Contains(reason, "retry window") || !strings.Contains(reason, "answered 500") || dl[0].Get("attempts").Int() < 2 {
		t.Fatalf("dead letter %s", dl[0].Raw)
	}
	eventually(t, "the retry_window metric counts it", func() bool {
		return testutil.ToFloat64(h.metrics.dead.WithLabelValues("hook", "retry_window")) == 1
	})
}

func TestIntegrationsSelectDestinations(t *testing.T) {
	tests := []struct {
		name         string
		integrations string
		want         bool
	}{
		{"no integrations object sends", ``, true},
		{"All false skips", `{"All":false}`, false},
		{"the destination's own key beats All", `{"All":false,"Webhook":true}`, true},
		{"the destination's own false skips", `{"All":true,"Webhook":false}`, false},
		{"names are case-sensitive", `{"webhook":false}`, true},
		{"an options object enables", `{"All":false,"Webhook":{"note":"x"}}`, true},
		{"a string enables", `{"Webhook":"no"}`, true},
	}
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	for i, tt := range tests {
		var extra []string
		if tt.integrations != "" {
			extra = append(extra, `"integrations":`+tt.integrations)
		}
		h.publish(t, event("u", fmt.Sprintf("case-%d", i), extra...))
	}
	h.publish(t, event("u", "last"))
	h.start(t, Config{Destination: "hook", DisplayName: "Webhook"}, dest)
	dest.waitUntil(t, "the last event is delivered", func() bool { return dest.count("last", destinations.Delivered) == 1 })
	for i, tt := range tests {
		if got := dest.count(fmt.Sprintf("case-%d", i), destinations.Delivered) == 1; got != tt.want {
			t.Errorf("%s: delivered %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestADeliveredMessageIDIsNotSentAgain(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	h.publish(t, event("u", "once"))
	h.start(t, Config{Destination: "hook"}, dest)
	dest.waitUntil(t, "delivered", func() bool { return dest.count("once", destinations.Delivered) == 1 })
	h.publish(t, event("u", "once"), event("u", "marker"))
	dest.waitUntil(t, "the marker is delivered", func() bool { return dest.count("marker", destinations.Delivered) == 1 })
	if n := dest.count("once", destinations.Delivered); n != 1 {
		t.Fatalf("the duplicate was sent: %d deliveries", n)
	}
}

func TestAFailingDestinationDoesNotDelayAnother(t *testing.T) {
	h := newHarness(t, 4)
	failing := newScripted(smallBatches)
	healthy := newScripted(smallBatches)
	var msgs []queue.Message
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("m%d", i)
		failing.always[id] = status500
		msgs = append(msgs, event(fmt.Sprintf("user-%d", i%13), id))
	}
	h.start(t, Config{Destination: "down"}, failing)
	h.start(t, Config{Destination: "up"}, healthy)
	start := time.Now()
	h.publish(t, msgs...)
	healthy.waitUntil(t, "the healthy destination has everything", func() bool { return len(healthy.delivered()) == 300 })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the healthy destination took %s", took)
	}
	failing.waitUntil(t, "the failing destination retries m0", func() bool { return failing.count("m0", destinations.Retry) > 0 })
	if len(failing.delivered()) != 0 {
		t.Fatal("the failing destination was not really failing")
	}
}

// countingInput counts fetched messages.
type countingInput struct {
	queue.Subscription
	mu      sync.Mutex
	fetched int
}

func (c *countingInput) Fetch(ctx context.Context) (queue.Message, error) {
	m, err := c.Subscription.Fetch(ctx)
	if err == nil {
		c.mu.Lock()
		c.fetched++
		c.mu.Unlock()
	}
	return m, err
}

func TestABlockedDestinationStopsFetchingAtMaxPending(t *testing.T) {
	h := newHarness(t, 2)
	for i := 0; i < 500; i++ {
		h.publish(t, event(fmt.Sprintf("u%d", i), fmt.Sprintf("m%d", i)))
	}
	dest := newScripted(destinations.Policy{MaxItems: 5, MaxWait: time.Millisecond, MaxInFlight: 1})
	dest.block = make(chan struct{})
	r, err := New(Config{Destination: "slow", MaxPending: 50}, dest, h.log, zap.NewNop(), h.metrics)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := h.log.Subscribe(context.Background(), queue.SubscribeConfig{Group: r.Group(), Topic: "events"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	src := &countingInput{Subscription: sub}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src) }()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(h.metrics.pending.WithLabelValues("slow")) < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Read twice, 100 ms apart, so a router that overshoots a moment after
	// reaching the cap is seen.
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		time.Sleep(wait)
		src.mu.Lock()
		fetched := src.fetched
		src.mu.Unlock()
		if fetched != 50 {
			t.Fatalf("fetched %d while the destination was blocked (%v after reaching the cap), want exactly MaxPending (50)", fetched, wait)
		}
	}
	close(dest.block)
	dest.waitUntil(t, "everything is delivered once unblocked", func() bool { return len(dest.delivered()) == 500 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestShutdownFinishesInFlightBatchesAndCommits(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(destinations.Policy{MaxItems: 100, MaxWait: time.Millisecond, MaxInFlight: 1})
	dest.block, dest.sending = make(chan struct{}), make(chan struct{}, 1)
	for i := 0; i < 10; i++ {
		h.publish(t, event("u", fmt.Sprintf("m%d", i)))
	}
	stop := h.start(t, Config{Destination: "hook", CommitInterval: config.Duration(time.Hour), ShutdownTimeout: config.Duration(5 * time.Second)}, dest)
	<-dest.sending // the batch is in flight
	time.AfterFunc(50*time.Millisecond, func() { close(dest.block) })
	stop()
	if n := len(dest.delivered()); n != 10 {
		t.Fatalf("delivered %d before stopping, want the whole in-flight batch of 10", n)
	}
	again := newScripted(smallBatches)
	h.publish(t, event("u", "next"))
	h.start(t, Config{Destination: "hook"}, again)
	again.waitUntil(t, "the next event is delivered", func() bool { return len(again.delivered()) >= 1 })
	if d := again.delivered(); len(d) != 1 || d[0].messageID != "next" {
		t.Fatalf("after a graceful stop the next run delivered %v: the stop did not commit", d)
	}
}

// paused is a destination out of quota until a given time.
type paused struct {
	*scripted
	mu        sync.Mutex
	until     time.Time
	firstSend time.Time
}

func (p *paused) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	p.mu.Lock()
	if p.firstSend.IsZero() {
		p.firstSend = time.Now()
	}
	p.mu.Unlock()
	return p.scripted.Send(ctx, batch)
}

func (p *paused) PausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.until
}

var _ destinations.Pauser = (*paused)(nil)

func TestAPausedDestinationGetsNothingAndStopsFetching(t *testing.T) {
	h := newHarness(t, 1)
	for i := 0; i < 100; i++ {
		h.publish(t, event(fmt.Sprintf("u%d", i), fmt.Sprintf("m%d", i)))
	}
	dest := &paused{scripted: newScripted(smallBatches), until: time.Now().Add(time.Second)}
	h.start(t, Config{Destination: "quota", MaxPending: 20}, dest)
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(h.metrics.pending.WithLabelValues("quota")) < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Pending stays at the cap, not just reaches it: sampled for 100 ms
	// while the pause lasts.
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end) && time.Now().Before(dest.until); time.Sleep(10 * time.Millisecond) {
		if got := testutil.ToFloat64(h.metrics.pending.WithLabelValues("quota")); got != 20 {
			t.Fatalf("pending %v while paused, want MaxPending (20)", got)
		}
	}
	dest.waitUntil(t, "everything is delivered after the pause", func() bool { return len(dest.delivered()) == 100 })
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.firstSend.Before(dest.until) {
		t.Fatalf("the first batch went out %s before the pause ended", dest.until.Sub(dest.firstSend))
	}
}

func TestConsumerLagIsExported(t *testing.T) {
	h := newHarness(t, 2)
	dest := newScripted(smallBatches)
	dest.always["stuck"] = status500
	h.publish(t, event("u", "stuck"), event("u", "behind-1"), event("u", "behind-2"))
	h.start(t, Config{Destination: "hook"}, dest)
	// The three wait on the stuck one: none is committed, so the lag is 3.
	eventually(t, "the lag metric reads 3", func() bool {
		return testutil.ToFloat64(h.metrics.lag.WithLabelValues("hook")) == 3
	})
}

// sharing records the shares the router gives it.
type sharing struct {
	*scripted
	mu     sync.Mutex
	shares [][2]int
}

func (s *sharing) SetShare(owned, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares = append(s.shares, [2]int{owned, total})
}

var _ destinations.Sharer = (*sharing)(nil)

func TestASharerIsToldThePartitionsItsMemberOwns(t *testing.T) {
	h := newHarness(t, 6)
	dest := &sharing{scripted: newScripted(smallBatches)}
	h.start(t, Config{Destination: "shared"}, dest)
	eventually(t, "the share is set", func() bool {
		dest.mu.Lock()
		defer dest.mu.Unlock()
		return len(dest.shares) > 0
	})
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.shares[0] != [2]int{6, 6} {
		t.Fatalf("shares %v, want the embedded log's lone member to own 6 of 6", dest.shares)
	}
}

// batchRecorder records the users of each batch it is sent.
type batchRecorder struct {
	*scripted
	mu      sync.Mutex
	batches [][]string
}

func (b *batchRecorder) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	var users []string
	for _, ev := range batch {
		users = append(users, ev.Key())
	}
	b.mu.Lock()
	b.batches = append(b.batches, users)
	b.mu.Unlock()
	return b.scripted.Send(ctx, batch)
}

func TestABatchClosesAtMaxKeysUsers(t *testing.T) {
	h := newHarness(t, 1)
	for i := 0; i < 30; i++ {
		h.publish(t, event(fmt.Sprintf("user-%d", i%3), fmt.Sprintf("m%d", i)))
	}
	dest := &batchRecorder{scripted: newScripted(destinations.Policy{MaxItems: 100, MaxKeys: 2, MaxWait: 100 * time.Millisecond, MaxInFlight: 1})}
	h.start(t, Config{Destination: "keys"}, dest)
	dest.waitUntil(t, "every event is delivered", func() bool { return len(dest.delivered()) == 30 })
	dest.mu.Lock()
	defer dest.mu.Unlock()
	full := 0
	for i, b := range dest.batches {
		users := map[string]bool{}
		for _, u := range b {
			users[u] = true
		}
		if len(users) > 2 {
			t.Fatalf("batch %d held events of %d users %v, want at most MaxKeys (2)", i, len(users), users)
		}
		if len(users) == 2 {
			full++
		}
	}
	// Every event was waiting before the router started, so batches fill
	// up to MaxKeys users instead of closing early.
	if full == 0 {
		t.Fatalf("no batch of %d held MaxKeys (2) users: %v", len(dest.batches), dest.batches)
	}
}
