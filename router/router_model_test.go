package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/queue"
)

// randomDest answers each event at random: delivered, retried or
// dead-lettered. Like a real destination it holds back, within a batch, the
// events that follow a retried one of the same user. It records, per
// event, the attempts it saw and the final answer.
type randomDest struct {
	t      *testing.T
	policy destinations.Policy

	mu      sync.Mutex
	rng     *rand.Rand
	bodies  map[string]string // messageId: the body it was published with
	tries   map[string]int    // messageId: attempts answered, held ones left out
	final   map[string]destinations.Result
	order   map[string][]string // user: messageIds in the order they ended
	changed chan struct{}
}

func (d *randomDest) Policy() destinations.Policy { return d.policy }

func (d *randomDest) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]destinations.Outcome, len(batch))
	heldBack := map[string]bool{}
	for i, ev := range batch {
		id, user := ev.MessageID(), ev.Key()
		if want, ok := d.bodies[id]; !ok || string(ev.Raw()) != want {
			d.t.Errorf("event %s arrived as %s, published as %s", id, ev.Raw(), want)
		}
		if r, ok := d.final[id]; ok {
			d.t.Errorf("event %s sent again after it ended as %v", id, r)
		}
		switch {
		case ctx.Err() != nil:
			out[i] = destinations.RetryLater("shutdown", "stopping", 0)
			continue
		case heldBack[user]:
			out[i] = destinations.RetryLater("held", "an earlier event of this user is being retried", 0)
			continue
		}
		d.tries[id]++
		if ev.Attempt < d.tries[id] {
			d.t.Errorf("event %s sent as attempt %d, its attempt %d here", id, ev.Attempt, d.tries[id])
		}
		switch p := d.rng.IntN(100); {
		case p < 30:
			out[i] = status500
			heldBack[user] = true
		case p < 40:
			out[i] = status400
		default:
			out[i] = destinations.Ok()
		}
		if out[i].Result != destinations.Retry {
			d.final[id] = out[i].Result
			d.order[user] = append(d.order[user], id)
		}
	}
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return out
}

func (d *randomDest) ended() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.final)
}

// Under random outcomes every event ends exactly once, delivered or
// dead-lettered, with the body it was published with (however often the
// log reuses the bytes of finished events for its next reads), and each
// user's events end in the order they were written, whatever retries came
// between.
// Seeds are logged so a failure can be replayed.
func TestRandomOutcomesEndEveryEventOnceInEachUsersOrder(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			h := newHarness(t, 1+rng.IntN(4))
			users := 2 + rng.IntN(12)
			events := 100 + rng.IntN(300)
			dest := &randomDest{
				t: t, rng: rand.New(rand.NewPCG(seed, 2*seed)),
				policy: destinations.Policy{MaxItems: 1 + rng.IntN(40), MaxWait: time.Duration(1+rng.IntN(5)) * time.Millisecond,
					MaxInFlight: 1 + rng.IntN(4)},
				bodies: map[string]string{}, tries: map[string]int{}, final: map[string]destinations.Result{},
				order: map[string][]string{}, changed: make(chan struct{}, 1),
			}
			written := map[string][]string{}
			var msgs []queue.Message
			for i := range events {
				user, id := fmt.Sprintf("user-%d", rng.IntN(users)), fmt.Sprintf("m%d", i)
				m := event(user, id, fmt.Sprintf(`"properties":{"n":%d}`, i))
				dest.bodies[id] = string(m.Value)
				written[user] = append(written[user], id)
				msgs = append(msgs, m)
			}
			// Some events are in the log before the router starts, the rest
			// come in small groups while it runs.
			before := rng.IntN(events / 2)
			h.publish(t, msgs[:before]...)
			// A small cap on pending events makes the router read while it
			// still holds earlier reads' events, into the buffers of those it
			// finished: a buffer given back too early changes a held event.
			stop := h.start(t, Config{Destination: "hook", RetryWindow: config.Duration(time.Hour), MaxPending: 5 + rng.IntN(60),
				BackoffMin: config.Duration(time.Millisecond), BackoffMax: config.Duration(3 * time.Millisecond)}, dest)
			for rest := msgs[before:]; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(20))
				h.publish(t, rest[:n]...)
				rest = rest[n:]
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			}
			deadline := time.After(20 * time.Second)
			for dest.ended() < events {
				select {
				case <-dest.changed:
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Fatalf("seed %d: %d of %d events ended within 20s", seed, dest.ended(), events)
				}
			}
			stop()
			dest.mu.Lock()
			defer dest.mu.Unlock()
			for user, ids := range written {
				if got, want := strings.Join(dest.order[user], ","), strings.Join(ids, ","); got != want {
					t.Fatalf("seed %d: %s's events ended as %s, written as %s", seed, user, got, want)
				}
			}
		})
	}
}
