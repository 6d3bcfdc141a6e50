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

// Send implements destinations.Destination: every event is delivered,
// unless ctx has ended, when every event gets Retry like any destination's
// unsent events.
func (d *Drop) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	o := destinations.Ok()
	if err := ctx.Err(); err != nil {
		o = destinations.RetryLater("canceled", "not sent: "+err.Error(), 0)
	}
	out := make([]destinations.Outcome, len(batch))
	for i := range out {
		out[i] = o
	}
	return out
}

var _ destinations.Destination = (*Drop)(nil)
