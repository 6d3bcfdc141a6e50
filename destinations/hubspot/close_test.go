package hubspot_test

import (
	"testing"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

func TestSendAfterCloseRetriesInsteadOfPanicking(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{StateDir: t.TempDir()})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	out := send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}`),
		ev(`{"type":"track","userId":"u1","event":"Signed Up"}`))
	for i, o := range out {
		if o.Result != destinations.Retry || o.Class != "closed" {
			t.Errorf("event %d after Close: %+v, want Retry with class closed", i, o)
		}
	}
	if n := len(p.sandbox.Contacts()); n != 0 {
		t.Errorf("a closed destination wrote %d contacts", n)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
