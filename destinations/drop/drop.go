// Package drop is a destination that accepts every event and sends it
// nowhere, like /dev/null. It measures the pipeline without a remote
// service and lets a deployment run the router before its real
// destinations are configured.
package drop

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/destinations"
)

// Drop delivers every event to nowhere.
type Drop struct {
	policy destinations.Policy
}

// New returns a drop destination that takes batches of up to 500 events.
func New() *Drop {
	return &Drop{policy: destinations.Policy{MaxItems: 500, MaxWait: 10 * time.Millisecond, MaxInFlight: 4}}
}

// Policy implements destinations.Destination.
func (d *Drop) Policy() destinations.Policy { return d.policy }

// Send implements destinations.Destination: every event is delivered.
func (d *Drop) Send(_ context.Context, batch []destinations.Event) []destinations.Outcome {
	out := make([]destinations.Outcome, len(batch))
	for i := range out {
		out[i] = destinations.Ok()
	}
	return out
}

var _ destinations.Destination = (*Drop)(nil)
