// Package destinationtest is the conformance suite every destination passes.
// A destination's own test calls Run with a harness that builds it against
// its service, and says how that service can be made to fail:
//
//	func TestConformance(t *testing.T) {
//		destinationtest.Run(t, func(t *testing.T) destinationtest.Target {
//			srv := webhooktest.NewServer(t)
//			w, err := webhook.New("hook", webhook.Config{URL: srv.URL}, nil, nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return destinationtest.Target{
//				Destination:    w,
//				FailEvent:      func(ev destinations.Event) { srv.Script(ev.MessageID(), 503) },
//				SeparatesUsers: true,
//			}
//		})
//	}
//
// The suite checks the destinations.Destination contract: one outcome per
// event in the batch's order, a user's later events held back behind one
// that gets Retry, Retry for a cancelled context, and a valid Policy.
package destinationtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/schemas"
)

// Timeout bounds each test of the suite.
const Timeout = 60 * time.Second

// Target is one destination under test, with switches on its service.
type Target struct {
	// Destination is built against a service of its own, healthy until a
	// switch below is used.
	Destination destinations.Destination

	// FailEvent makes the service fail transiently (for example answer
	// 503) the next request that carries ev, and no other. Nil when the
	// service cannot single out one event's requests.
	FailEvent func(ev destinations.Event)

	// FailRequests makes the service fail transiently its next n requests,
	// whatever they carry, in place of any failures left from an earlier
	// call. Nil when it cannot.
	FailRequests func(n int)

	// SeparatesUsers says the destination sends each user's events apart
	// from other users' (as the webhook does one request per event): an
	// event failed with FailEvent then holds back only its own user's later
	// events, and every other event is delivered.
	SeparatesUsers bool
}

// Run runs the suite. open is called once per test, and once more to see
// which switches the target has, and returns a target whose service is
// fresh and healthy; the destination is closed when the test ends if it is
// a destinations.Closer. A target with neither FailEvent nor FailRequests
// has no service that can fail: instead of the hold-back tests the suite
// then checks that it never answers Retry, which is what makes the
// hold-back rule hold for it.
func Run(t *testing.T, open func(t *testing.T) Target) {
	type test struct {
		name string
		fn   func(t *testing.T, ctx context.Context, target Target)
	}
	tests := []test{
		{"the policy validates", testPolicy},
		{"a healthy service delivers every event, one outcome each, for mixed batches of every size", testOneOutcomeEach},
		{"a cancelled context gives retry for every event, never a dead letter", testCancelled},
		{"nothing of a batch's bytes is kept once Send returns", testKeepsNoBytes},
	}
	probe := opened(t, open)
	if probe.FailEvent != nil {
		tests = append(tests, test{"a failed event is retried with its user's later events, in batch order", testFailedEventHoldsBackItsUser})
	}
	if probe.FailRequests != nil {
		tests = append(tests, test{"failing the first requests of a batch holds back each user's later events", testFailedRequestsHoldBack})
	}
	if probe.FailEvent == nil && probe.FailRequests == nil {
		tests = append(tests, test{"a destination without a service that can fail never answers retry", testNeverRetries})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := opened(t, open)
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			tt.fn(t, ctx, target)
		})
	}
}

// opened opens a target and closes its destination when t ends.
func opened(t *testing.T, open func(t *testing.T) Target) Target {
	t.Helper()
	target := open(t)
	if target.Destination == nil {
		t.Fatal("the harness returned no destination")
	}
	if c, ok := target.Destination.(destinations.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("closing the destination: %v", err)
			}
		})
	}
	return target
}

func testPolicy(t *testing.T, _ context.Context, target Target) {
	if err := target.Destination.Policy().Validate(); err != nil {
		t.Fatalf("Policy() = %+v: %v", target.Destination.Policy(), err)
	}
}

func testOneOutcomeEach(t *testing.T, ctx context.Context, target Target) {
	if out := target.Destination.Send(ctx, nil); len(out) != 0 {
		t.Fatalf("an empty batch got %d outcomes, want none", len(out))
	}
	g := newGenerator()
	for _, size := range batchSizes(target.Destination.Policy()) {
		batch := g.batch(usersFor(target.Destination.Policy(), size), size)
		out := send(t, ctx, target.Destination, batch)
		for i, o := range out {
			if o.Result != destinations.Delivered {
				t.Errorf("batch of %d: event %d (%s) got %s (%s: %s), want delivered", size, i, describe(batch[i]), o.Result, o.Class, o.Reason)
			}
		}
	}
}

// testFailedEventHoldsBackItsUser fails one event of each of two users and
// checks every outcome: the failed events and their users' later ones get
// Retry; with SeparatesUsers, every other event is delivered.
func testFailedEventHoldsBackItsUser(t *testing.T, ctx context.Context, target Target) {
	d := target.Destination
	g := newGenerator()
	send(t, ctx, d, g.batch(3, 6)) // a healthy first batch, so set-up work is done
	size := min(24, d.Policy().MaxItems)
	users := min(4, usersFor(d.Policy(), size))
	batch := g.batch(users, size)
	// Fail the first event of the first user and a later event of the
	// last one.
	failed := map[int]bool{0: true}
	if last := lastOfUser(batch, batch[len(batch)-1].Key()); last > 0 {
		failed[firstOfUserFrom(batch, batch[last].Key(), len(batch)/2)] = true
	}
	for i := range failed {
		target.FailEvent(batch[i])
	}
	out := send(t, ctx, d, batch)
	heldFrom := map[string]bool{}
	for i, ev := range batch {
		if failed[i] {
			heldFrom[ev.Key()] = true
		}
		switch o := out[i]; {
		case heldFrom[ev.Key()] && o.Result != destinations.Retry:
			what := "an earlier event of its user failed transiently"
			if failed[i] {
				what = "its request failed transiently"
			}
			t.Errorf("event %d (%s) got %s (%s: %s), want retry: %s", i, describe(ev), o.Result, o.Class, o.Reason, what)
		case !heldFrom[ev.Key()] && target.SeparatesUsers && o.Result != destinations.Delivered:
			t.Errorf("event %d (%s) got %s (%s: %s), want delivered: no earlier event of its user failed", i, describe(ev), o.Result, o.Class, o.Reason)
		case !heldFrom[ev.Key()] && o.Result == destinations.DeadLetter:
			t.Errorf("event %d (%s) was dead-lettered (%s: %s): only transient failures were made", i, describe(ev), o.Class, o.Reason)
		}
	}
}

// failedRequests is how many first requests of a batch
// testFailedRequestsHoldBack fails at most: 1, 2, ... up to it.
const failedRequests = 8

// testFailedRequestsHoldBack fails the first n requests of a batch, for
// each n up to failedRequests, and checks that no user has an event that is
// not retried after one that is. At least one n must leave some events
// delivered, so that a failure lands in the middle of a batch's work.
func testFailedRequestsHoldBack(t *testing.T, ctx context.Context, target Target) {
	d := target.Destination
	g := newGenerator()
	send(t, ctx, d, g.batch(3, 6)) // a healthy first batch, so set-up work is done
	size := min(30, d.Policy().MaxItems)
	users := min(5, usersFor(d.Policy(), size))
	partial := false
	for n := 1; n <= failedRequests; n++ {
		batch := g.batch(users, size)
		target.FailRequests(n)
		out := send(t, ctx, d, batch)
		retried := 0
		for _, o := range out {
			if o.Result == destinations.Retry {
				retried++
			}
		}
		if retried == 0 {
			t.Fatalf("failing the first %d requests: no event was retried, so the failure did not reach the destination", n)
		}
		partial = partial || retried < len(batch)
		checkHeldBack(t, fmt.Sprintf("failing the first %d requests", n), batch, out)
	}
	if !partial {
		t.Fatalf("failing the first 1 to %d requests of a batch retried every event each time: no failure landed in the middle of a batch", failedRequests)
	}
}

// checkHeldBack reports events that are not retried after an event of their
// user that is, and dead letters: only transient failures were made.
func checkHeldBack(t *testing.T, trial string, batch []destinations.Event, out []destinations.Outcome) {
	t.Helper()
	retried := map[string]int{}
	for i, ev := range batch {
		o := out[i]
		if first, ok := retried[ev.Key()]; ok && o.Result != destinations.Retry {
			t.Errorf("%s: event %d (%s) got %s (%s: %s) after event %d of its user got retry; want retry", trial, i, describe(ev), o.Result, o.Class, o.Reason, first)
		} else if o.Result == destinations.DeadLetter {
			t.Errorf("%s: event %d (%s) was dead-lettered (%s: %s): only transient failures were made", trial, i, describe(ev), o.Class, o.Reason)
		}
		if _, ok := retried[ev.Key()]; !ok && o.Result == destinations.Retry {
			retried[ev.Key()] = i
		}
	}
}

// testKeepsNoBytes overwrites each batch's bytes once Send has returned,
// as the router does when it reads the next events into them: the outcomes
// already given stay as they were, and the same users' next events are
// delivered.
func testKeepsNoBytes(t *testing.T, ctx context.Context, target Target) {
	g := newGenerator()
	p := target.Destination.Policy()
	size := min(p.MaxItems, 24)
	users := usersFor(p, size)
	first := g.batch(users, size)
	out := send(t, ctx, target.Destination, first)
	kept := make([]destinations.Outcome, len(out))
	for i, o := range out {
		o.Reason, o.Class, o.Response = strings.Clone(o.Reason), strings.Clone(o.Class), strings.Clone(o.Response)
		kept[i] = o
	}
	for _, ev := range first {
		raw := ev.Raw()
		for i := range raw {
			raw[i] = 'x'
		}
	}
	for i := range out {
		if out[i] != kept[i] {
			t.Errorf("event %d's outcome changed with its bytes: %+v, was %+v", i, out[i], kept[i])
		}
	}
	// The same users again.
	g.users -= users
	again := g.batch(users, size)
	for i, o := range send(t, ctx, target.Destination, again) {
		if o.Result != destinations.Delivered {
			t.Errorf("after the first batch's bytes changed, event %d (%s) got %s (%s: %s), want delivered", i, describe(again[i]), o.Result, o.Class, o.Reason)
		}
	}
}

func testNeverRetries(t *testing.T, ctx context.Context, target Target) {
	g := newGenerator()
	for _, size := range batchSizes(target.Destination.Policy()) {
		batch := g.batch(usersFor(target.Destination.Policy(), size), size)
		for i, o := range send(t, ctx, target.Destination, batch) {
			if o.Result == destinations.Retry {
				t.Errorf("batch of %d: event %d (%s) got retry (%s: %s)", size, i, describe(batch[i]), o.Class, o.Reason)
			}
		}
	}
}

func testCancelled(t *testing.T, ctx context.Context, target Target) {
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	g := newGenerator()
	size := min(12, target.Destination.Policy().MaxItems)
	batch := g.batch(usersFor(target.Destination.Policy(), size), size)
	for i, o := range send(t, cancelled, target.Destination, batch) {
		if o.Result != destinations.Retry {
			t.Errorf("event %d (%s) got %s (%s: %s) with a cancelled context, want retry", i, describe(batch[i]), o.Result, o.Class, o.Reason)
		}
	}
}

// send sends a batch and fails the test unless there is one outcome per
// event.
func send(t *testing.T, ctx context.Context, d destinations.Destination, batch []destinations.Event) []destinations.Outcome {
	t.Helper()
	out := d.Send(ctx, batch)
	if len(out) != len(batch) {
		t.Fatalf("a batch of %d events got %d outcomes", len(batch), len(out))
	}
	return out
}

// batchSizes are the batch sizes tried: a few small ones and the policy's
// largest.
func batchSizes(p destinations.Policy) []int {
	var sizes []int
	for _, n := range []int{1, 2, 6, 13, p.MaxItems} {
		if n <= p.MaxItems && (len(sizes) == 0 || n > sizes[len(sizes)-1]) {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// usersFor is how many users a batch of size events has: about one for
// every three events, within the policy's MaxKeys.
func usersFor(p destinations.Policy, size int) int {
	users := max(1, (size+2)/3)
	if p.MaxKeys > 0 {
		users = min(users, p.MaxKeys)
	}
	return users
}

func lastOfUser(batch []destinations.Event, key string) int {
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].Key() == key {
			return i
		}
	}
	return -1
}

// firstOfUserFrom returns the first event of the user at or after from.
func firstOfUserFrom(batch []destinations.Event, key string, from int) int {
	for i := from; i < len(batch); i++ {
		if batch[i].Key() == key {
			return i
		}
	}
	return lastOfUser(batch, key)
}

func describe(ev destinations.Event) string {
	return fmt.Sprintf("%s %s of %s", ev.Type(), ev.MessageID(), ev.Key())
}

// generator makes valid Segment calls of every type, each with a new
// messageId and a later timestamp. Its users are new to the service each
// batch, and each has an email, so a destination that matches contacts by
// email can deliver any of their calls.
type generator struct {
	seq   int
	users int
	start time.Time
}

func newGenerator() *generator {
	return &generator{start: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

// callTypes are the Segment call types, in the order a batch cycles
// through them.
var callTypes = []string{"identify", "track", "group", "page", "screen", "alias", "track", "identify"}

// batch returns size calls of users new users, the users interleaved and
// the call types mixed.
func (g *generator) batch(users, size int) []destinations.Event {
	first := g.users
	g.users += users
	batch := make([]destinations.Event, size)
	for i := range batch {
		user := first + i%users
		batch[i] = g.call(callTypes[(i+i/users)%len(callTypes)], user)
	}
	return batch
}

func (g *generator) call(callType string, user int) destinations.Event {
	g.seq++
	userID := fmt.Sprintf("user-%d", user)
	email := fmt.Sprintf("user-%d@example.com", user)
	fields := []string{
		`"type":"` + callType + `"`,
		fmt.Sprintf(`"messageId":"message-%d"`, g.seq),
		`"userId":"` + userID + `"`,
		fmt.Sprintf(`"anonymousId":"anonymous-%d"`, user),
		`"timestamp":"` + g.start.Add(time.Duration(g.seq)*time.Millisecond).Format(time.RFC3339Nano) + `"`,
		`"context":{"traits":{"email":"` + email + `"},"library":{"name":"destinationtest"}}`,
	}
	switch callType {
	case "identify":
		fields = append(fields, fmt.Sprintf(`"traits":{"email":%q,"firstName":"User","lastName":"Number %d"}`, email, user))
	case "track":
		fields = append(fields, `"event":"Order Completed"`, fmt.Sprintf(`"properties":{"email":%q,"order_id":"order-%d","total":"12.50"}`, email, g.seq))
	case "group":
		company := user % 3
		fields = append(fields, fmt.Sprintf(`"groupId":"group-%d"`, company), fmt.Sprintf(`"traits":{"name":"Company %d","website":"https://company-%d.example.com"}`, company, company))
	case "page":
		fields = append(fields, `"name":"Pricing"`, `"properties":{"url":"https://www.example.com/pricing","title":"Pricing"}`)
	case "screen":
		fields = append(fields, `"name":"Settings"`, `"properties":{"section":"account"}`)
	case "alias":
		fields = append(fields, fmt.Sprintf(`"previousId":"anonymous-%d"`, user))
	}
	return destinations.Event{Event: schemas.NewEvent([]byte("{" + strings.Join(fields, ",") + "}")), Attempt: 1}
}
