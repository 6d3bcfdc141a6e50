package router

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/queue"
)

// rebalancingInput is a consumer group member whose test decides what it
// fetches and which partitions it owns, as a Kafka member sees after
// rebalances.
type rebalancingInput struct {
	t    *testing.T
	feed chan queue.Message

	mu         sync.Mutex
	owned      map[int]int64
	committed  map[int]int64
	rebalanced chan struct{}
	revoking   chan queue.Revocation
}

func newRebalancingInput(t *testing.T, owned map[int]int64) *rebalancingInput {
	return &rebalancingInput{t: t, feed: make(chan queue.Message, 100), owned: owned,
		committed: map[int]int64{}, rebalanced: make(chan struct{}, 1), revoking: make(chan queue.Revocation)}
}

func (in *rebalancingInput) Fetch(ctx context.Context) (queue.Message, error) {
	select {
	case m := <-in.feed:
		return m, nil
	case <-ctx.Done():
		return queue.Message{}, ctx.Err()
	}
}

func (in *rebalancingInput) Commit(ctx context.Context, msgs ...queue.Message) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range msgs {
		if _, ok := in.owned[m.Partition]; !ok {
			in.t.Errorf("committed %d/%d, a partition the member does not own", m.Partition, m.Offset)
		}
		in.committed[m.Partition] = m.Offset
	}
	return nil
}

func (in *rebalancingInput) Assignment() map[int]int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.owned)
}

func (in *rebalancingInput) Rebalanced() <-chan struct{} { return in.rebalanced }

func (in *rebalancingInput) Revoking() <-chan queue.Revocation { return in.revoking }

// endGeneration announces the end of the generation with the given time
// to answer and returns a channel closed when the router answers.
func (in *rebalancingInput) endGeneration(timeout time.Duration) <-chan struct{} {
	answered := make(chan struct{})
	var once sync.Once
	select {
	case in.revoking <- queue.Revocation{Deadline: time.Now().Add(timeout), Done: func() { once.Do(func() { close(answered) }) }}:
	case <-time.After(time.Second):
		in.t.Fatal("the router did not take the end of the generation")
	}
	return answered
}

func (in *rebalancingInput) committedOffsets() map[int]int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.committed)
}

func (in *rebalancingInput) assign(owned map[int]int64) {
	in.mu.Lock()
	in.owned = owned
	in.mu.Unlock()
	select {
	case in.rebalanced <- struct{}{}:
	default:
	}
}

// send feeds offsets from..to of a partition, one user per offset.
func (in *rebalancingInput) send(partition int, from, to int64) {
	for o := from; o <= to; o++ {
		m := event(fmt.Sprintf("u%d-%d", partition, o), fmt.Sprintf("m%d-%d", partition, o))
		m.Partition, m.Offset = partition, o
		in.feed <- m
	}
}

func runOn(t *testing.T, h *harness, cfg Config, dest destinations.Destination, in Input) (stop func()) {
	t.Helper()
	r, err := New(cfg, dest, h.log, zap.NewNop(), h.metrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, in) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("router: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestRebalancesDropRevokedPartitionsAndRedeliveredOffsets(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(smallBatches)
	in := newRebalancingInput(t, map[int]int64{0: 1, 1: 1})
	// Nothing is committed until the router stops.
	stop := runOn(t, h, Config{Destination: "hook", CommitInterval: config.Duration(time.Hour)}, dest, in)

	in.send(0, 0, 9)
	in.send(1, 0, 9)
	// Finished by the router, not only sent: a copy of an event whose batch
	// is still being answered is not yet known to be delivered.
	eventually(t, "the first 20 are delivered", func() bool {
		return testutil.ToFloat64(h.metrics.events.WithLabelValues("hook", "delivered")) == 20
	})

	// A rebalance keeps partition 0 and gives 1 back after another member
	// held it; both are delivered again from the group's offset.
	in.assign(map[int]int64{0: 1, 1: 2})
	in.send(0, 0, 9)
	in.send(1, 0, 9)
	held := h.metrics.redelivered.WithLabelValues("hook", "held")
	skipped := h.metrics.redelivered.WithLabelValues("hook", "already_delivered")
	eventually(t, "the copies are recognized", func() bool {
		return testutil.ToFloat64(held) == 10 && testutil.ToFloat64(skipped) == 10
	})

	// Partition 1 moves away; a message read before that is not delivered.
	in.assign(map[int]int64{0: 1})
	in.send(1, 10, 14)
	in.send(0, 10, 19)
	dest.waitUntil(t, "partition 0's next 10 are delivered", func() bool { return len(dest.delivered()) == 30 })
	stop()

	seen := map[string]int{}
	for _, a := range dest.delivered() {
		seen[a.messageID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for o := 10; o <= 14; o++ {
		if seen[fmt.Sprintf("m1-%d", o)] != 0 {
			t.Errorf("m1-%d of the revoked partition was delivered", o)
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if want := map[int]int64{0: 19}; !maps.Equal(in.committed, want) {
		t.Fatalf("committed %v, want %v", in.committed, want)
	}
}

func TestARevokedPartitionsPendingEventsAreDroppedAndInFlightOnesFinish(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(destinations.Policy{MaxItems: 1, MaxWait: time.Millisecond, MaxInFlight: 1})
	dest.block, dest.sending = make(chan struct{}), make(chan struct{}, 1)
	in := newRebalancingInput(t, map[int]int64{0: 1, 1: 1})
	stop := runOn(t, h, Config{Destination: "hook", CommitInterval: config.Duration(10 * time.Millisecond)}, dest, in)

	// One user's five events: the first is sent, the rest wait behind it.
	for o := int64(0); o < 5; o++ {
		m := event("a", fmt.Sprintf("a%d", o))
		m.Partition, m.Offset = 1, o
		in.feed <- m
	}
	<-dest.sending
	pending := h.metrics.pending.WithLabelValues("hook")
	eventually(t, "all five are pending", func() bool { return testutil.ToFloat64(pending) == 5 })
	in.assign(map[int]int64{0: 1})
	eventually(t, "the four waiting are dropped", func() bool { return testutil.ToFloat64(pending) == 1 })
	close(dest.block)
	eventually(t, "the one in flight finishes", func() bool { return testutil.ToFloat64(pending) == 0 })
	// The router still works on the partition it owns.
	in.send(0, 0, 2)
	dest.waitUntil(t, "partition 0 is delivered", func() bool { return len(dest.delivered()) == 4 })
	stop()

	if got := dest.delivered(); got[0].messageID != "a0" {
		t.Fatalf("delivered %v, want a0 then partition 0", got)
	}
	if n := testutil.ToFloat64(h.metrics.redelivered.WithLabelValues("hook", "revoked_in_flight")); n != 1 {
		t.Fatalf("revoked_in_flight %v, want 1", n)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.committed[1]; ok {
		t.Fatalf("committed %v: partition 1 was revoked before anything of it could be committed", in.committed)
	}
	if in.committed[0] != 2 {
		t.Fatalf("committed %v, want partition 0 at 2", in.committed)
	}
}

func TestAtTheEndOfAGenerationTheRouterFinishesWhatIsInFlightAndCommits(t *testing.T) {
	h := newHarness(t, 1)
	// The first batch fills up with three events before it is sent.
	dest := newScripted(destinations.Policy{MaxItems: 3, MaxWait: 100 * time.Millisecond, MaxInFlight: 1})
	dest.block, dest.sending = make(chan struct{}), make(chan struct{}, 1)
	in := newRebalancingInput(t, map[int]int64{0: 1})
	// Nothing is committed on the ticker: only at the end of the generation.
	runOn(t, h, Config{Destination: "hook", CommitInterval: config.Duration(time.Hour)}, dest, in)

	in.send(0, 0, 9)
	<-dest.sending
	pending := h.metrics.pending.WithLabelValues("hook")
	eventually(t, "all ten are pending", func() bool { return testutil.ToFloat64(pending) == 10 })
	answered := in.endGeneration(2 * time.Second)
	// The batch in flight returns while the router waits for it.
	time.Sleep(100 * time.Millisecond)
	close(dest.block)
	select {
	case <-answered:
	case <-time.After(3 * time.Second):
		t.Fatal("the router did not answer the end of the generation")
	}
	if got, want := in.committedOffsets(), map[int]int64{0: 2}; !maps.Equal(got, want) {
		t.Fatalf("committed %v when it answered, want %v: the batch in flight, offsets 0 to 2", got, want)
	}

	// Nothing more is sent until the next assignment: what the router
	// sent now, its partitions' next owners would send again.
	time.Sleep(200 * time.Millisecond)
	if n := len(dest.delivered()); n != 3 {
		t.Fatalf("%d delivered before the next assignment, want the 3 of the batch that was in flight", n)
	}
	in.assign(map[int]int64{0: 1})
	dest.waitUntil(t, "the rest are delivered under the next assignment", func() bool { return len(dest.delivered()) == 10 })

}

func TestAtTheEndOfAGenerationTheRouterAnswersInTimeWithABatchStillOut(t *testing.T) {
	h := newHarness(t, 1)
	dest := newScripted(destinations.Policy{MaxItems: 3, MaxWait: time.Millisecond, MaxInFlight: 1})
	dest.block, dest.sending = make(chan struct{}), make(chan struct{}, 1)
	in := newRebalancingInput(t, map[int]int64{0: 1})
	runOn(t, h, Config{Destination: "hook", CommitInterval: config.Duration(time.Hour), ShutdownTimeout: config.Duration(50 * time.Millisecond)}, dest, in)

	in.send(0, 0, 2)
	<-dest.sending
	began := time.Now()
	answered := in.endGeneration(400 * time.Millisecond)
	select {
	case <-answered:
	case <-time.After(time.Second):
		t.Fatal("the router did not answer the end of the generation")
	}
	if waited := time.Since(began); waited > 400*time.Millisecond {
		t.Errorf("answered after %v, past the 400ms deadline", waited)
	}
	// The batch still out is left to the partition's next owner.
	if got := in.committedOffsets(); len(got) != 0 {
		t.Fatalf("committed %v with nothing finished", got)
	}
}
