// Package destinations defines what the router delivers to: a Destination
// sends batches of events and classifies each one's outcome. The router owns
// everything else: fetching, per-user order, retries, dead letters and
// commits. Implementations live in sub-packages (webhook, hubspot).
package destinations

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/switchyard/switchyard/schemas"
)

// Destination delivers events to one configured instance of a service.
type Destination interface {
	// Policy says how the router should batch for this destination.
	Policy() Policy

	// Send delivers a batch and returns exactly one Outcome per event, in the
	// batch's order. It classifies and never retries: the router retries.
	//
	// A batch may hold several events of one user (one ordering key), in log
	// order. Send must not let a later one take effect before an earlier one:
	// when an event of a user gets Retry, every later event of that user in
	// the batch must get Retry too unless it was certainly not affected.
	// Dead-lettering an event does not hold back the user's later events.
	//
	// When ctx has ended before Send is called, it sends nothing and every
	// event gets Retry, never DeadLetter.
	//
	// Send keeps nothing of the batch once it returns, neither the slice
	// nor the events' bytes (Raw, or strings and slices taken from it
	// without copying): the router reuses both for the events it reads
	// next. gjson results are copies.
	//
	// Every implementation passes the conformance suite in
	// destinations/destinationtest.
	Send(ctx context.Context, batch []Event) []Outcome
}

// The optional capabilities below are found by the router (and cmd) with a
// type assertion on a Destination. Each implementation states the ones it
// has with a guard, for example var _ destinations.Pauser = (*HubSpot)(nil).

// Pauser is implemented by destinations whose service can refuse calls for a
// while (a used-up rate budget): until PausedUntil the router sends them
// nothing and fetches no more than it may hold.
type Pauser interface {
	// PausedUntil returns when calls are allowed again; a time not after now
	// (the zero time) means they are allowed now.
	PausedUntil() time.Time
}

// Sharer is implemented by destinations whose budget several router
// processes share (a HubSpot token): the router tells each the partitions
// its consumer-group member owns, and the destination takes that share.
type Sharer interface {
	// SetShare says this member owns owned of the topic's total partitions.
	SetShare(owned, total int)
}

// HealthReporter is implemented by destinations that can tell when their
// service refuses them as a whole (a HubSpot token that is invalid or lacks
// a scope), so no event can be delivered until someone acts. cmd reports it
// in /readyz and the switchyard_destination_healthy gauge.
type HealthReporter interface {
	// Health returns false with a reason, for a person, while the service
	// refuses the destination; true (and "") once a call succeeds again.
	Health() (ok bool, reason string)
}

// Closer is implemented by destinations that hold resources (open files,
// a lock on a state directory): whoever built one closes it once no router
// sends to it any more.
type Closer interface {
	io.Closer
}

// Event is one message from the log, on its way to a destination.
type Event struct {
	schemas.Event
	// Attempt counts deliveries of this event to this destination, from 1.
	Attempt int
}

// Policy is a destination's batching and concurrency.
type Policy struct {
	// MaxItems caps the events in one batch. Must be at least 1.
	MaxItems int
	// MaxBytes caps the summed raw size of a batch's events; a single event
	// larger than it still goes alone. 0 means no byte limit.
	MaxBytes int
	// MaxWait is how long the first event of a batch waits for more before
	// the batch is sent anyway.
	MaxWait time.Duration
	// MaxKeys, when set, also closes a batch once it holds events of that
	// many users (ordering keys): a destination that merges a user's events
	// into one record fills its calls with records, not events. 0 means no
	// such limit.
	MaxKeys int
	// MaxInFlight caps the batches being sent at once. Must be at least 1.
	MaxInFlight int
}

// Validate reports a policy the router cannot follow.
func (p Policy) Validate() error {
	switch {
	case p.MaxItems < 1:
		return fmt.Errorf("batch max items must be at least 1, got %d", p.MaxItems)
	case p.MaxBytes < 0:
		return fmt.Errorf("batch max bytes must not be negative, got %d", p.MaxBytes)
	case p.MaxKeys < 0:
		return fmt.Errorf("batch max keys must not be negative, got %d", p.MaxKeys)
	case p.MaxWait < 0:
		return fmt.Errorf("batch max wait must not be negative, got %s", p.MaxWait)
	case p.MaxInFlight < 1:
		return fmt.Errorf("max in flight must be at least 1, got %d", p.MaxInFlight)
	}
	return nil
}

// Result classifies one event's delivery.
type Result int

const (
	// Delivered: the destination accepted the event.
	Delivered Result = iota
	// Retry: a transient failure; send the event again later.
	Retry
	// DeadLetter: a permanent failure; retrying cannot help.
	DeadLetter
)

func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Outcome is what happened to one event of a batch.
type Outcome struct {
	Result Result
	// RetryAfter, with Retry, is the earliest time to try again that the
	// service asked for (for example its Retry-After header); 0 lets the
	// router choose by its backoff.
	RetryAfter time.Duration
	// Reason says, for a person, why the event was retried or dead-lettered.
	Reason string
	// Class groups reasons for metrics, for example "http_4xx" or "transform".
	Class string
	// Status is the HTTP status the service answered, if any.
	Status int
	// Response is a short excerpt of the service's response body, if any.
	Response string
}

// Convenience constructors.

// Ok is a Delivered outcome.
func Ok() Outcome { return Outcome{Result: Delivered} }

// RetryLater is a Retry outcome.
func RetryLater(class, reason string, after time.Duration) Outcome {
	return Outcome{Result: Retry, Class: class, Reason: reason, RetryAfter: after}
}

// Dead is a DeadLetter outcome.
func Dead(class, reason string) Outcome {
	return Outcome{Result: DeadLetter, Class: class, Reason: reason}
}
