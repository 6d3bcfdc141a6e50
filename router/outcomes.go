package router

import (
	"slices"
	"sync"
	"time"

	"github.com/switchyard/switchyard/destinations"
)

// Outcome is what a router did with one event of its input: one attempt's
// result, or the decision to skip it.
type Outcome struct {
	Destination string
	// Topic, Partition and Offset place the event in the log.
	Topic     string
	Partition int
	Offset    int64
	MessageID string
	// Result is "delivered", "retried", "dead_lettered" or "skipped"
	// (the event's integrations object leaves the destination out).
	Result string
	// Attempt counts delivery attempts so far; 0 for a skipped event.
	Attempt int
	// Reason, Class, Status and Response are the destination's, as a dead
	// letter carries them.
	Reason   string
	Class    string
	Status   int
	Response string
	At       time.Time
}

// Result names, as Outcome.Result and the router's metrics spell them.
const (
	ResultDelivered    = "delivered"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
	ResultSkipped      = "skipped"
)

// Observer learns every outcome a router gives an event. Observe is called
// on the router's run loop, once for the outcomes of many events, so it
// must return at once and must not keep the slice.
type Observer interface {
	Observe(outcomes ...Outcome)
}

func resultName(r destinations.Result) string {
	switch r {
	case destinations.Delivered:
		return ResultDelivered
	case destinations.DeadLetter:
		return ResultDeadLettered
	default:
		return ResultRetried
	}
}

// Outcomes is an Observer that keeps the latest outcomes of each
// destination in a ring of fixed size, so that a page can say what became
// of a recent event. It is safe for concurrent use.
type Outcomes struct {
	size  int
	mu    sync.Mutex
	names []string
	rings map[string]*outcomeRing
}

type outcomeRing struct {
	items []Outcome
	next  int // where the next outcome goes once items is full
}

// NewOutcomes keeps the latest perDestination outcomes of each of
// destinations (and of any other destination that reports one).
func NewOutcomes(perDestination int, destinations ...string) *Outcomes {
	o := &Outcomes{size: max(perDestination, 1), rings: map[string]*outcomeRing{}}
	for _, d := range destinations {
		o.ring(d)
	}
	return o
}

// ring returns the destination's ring, making it; o.mu is held.
func (o *Outcomes) ring(dest string) *outcomeRing {
	r := o.rings[dest]
	if r == nil {
		r = &outcomeRing{items: make([]Outcome, 0, o.size)}
		o.rings[dest] = r
		o.names = append(o.names, dest)
		slices.Sort(o.names)
	}
	return r
}

// Observe keeps the outcomes, forgetting the destination's oldest outcome
// for each new one once its ring is full.
func (o *Outcomes) Observe(outcomes ...Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var r *outcomeRing
	for i, oc := range outcomes {
		if i == 0 || oc.Destination != outcomes[i-1].Destination {
			r = o.ring(oc.Destination)
		}
		if len(r.items) < o.size {
			r.items = append(r.items, oc)
			continue
		}
		r.items[r.next] = oc
		r.next = (r.next + 1) % o.size
	}
}

// Destinations returns the destinations known, sorted.
func (o *Outcomes) Destinations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.names)
}

// Of returns the outcomes still kept for the event at topic, partition and
// offset, oldest first, every destination's together.
func (o *Outcomes) Of(topic string, partition int, offset int64) []Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	var found []Outcome
	for _, name := range o.names {
		r := o.rings[name]
		for i := range r.items {
			oc := r.items[(r.next+i)%len(r.items)]
			if oc.Offset == offset && oc.Partition == partition && oc.Topic == topic {
				found = append(found, oc)
			}
		}
	}
	return found
}
