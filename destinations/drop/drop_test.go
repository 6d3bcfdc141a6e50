package drop

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/schemas"
)

func TestEveryEventIsDelivered(t *testing.T) {
	d := New()
	if err := d.Policy().Validate(); err != nil {
		t.Fatal(err)
	}
	batch := []destinations.Event{
		{Event: schemas.NewEvent([]byte(`{"type":"track","userId":"a"}`)), Attempt: 1},
		{Event: schemas.NewEvent([]byte(`{"type":"identify","userId":"b"}`)), Attempt: 3},
	}
	out := d.Send(context.Background(), batch)
	if len(out) != len(batch) {
		t.Fatalf("%d outcomes for %d events", len(out), len(batch))
	}
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %v", i, o.Result)
		}
	}
}
