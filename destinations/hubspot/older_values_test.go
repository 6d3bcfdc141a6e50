package hubspot_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

// Two batches in flight at once reach one record through two router keys:
// a company through two of its users, a contact through its anonymousId and
// its userId. The batch with the newer value starts first; the older value
// must never land after it, whichever batch HubSpot answers first.
func TestBatchesInFlightNeverRollARecordBack(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{StateDir: t.TempDir(), MaxInFlight: 2})
	defer h.Close()
	p.sandbox.SetLatency(5 * time.Millisecond)
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	stamp := func(round, minute int) string {
		return base.Add(time.Duration(round)*time.Hour + time.Duration(minute)*time.Minute).Format(time.RFC3339Nano)
	}

	const rounds = 10
	for round := range rounds {
		domain := fmt.Sprintf("race%d.example", round)
		email := fmt.Sprintf("race%d@example.com", round)
		// The record exists and its times are stored, as after any earlier batch.
		for _, o := range send(t, h,
			ev(fmt.Sprintf(`{"type":"identify","userId":"u%d","timestamp":%q,"traits":{"email":%q,"jobtitle":"First"}}`, round, stamp(round, 0), email)),
			ev(fmt.Sprintf(`{"type":"group","userId":"u%d","groupId":"g","timestamp":%q,"traits":{"website":%q,"description":"First"}}`, round, stamp(round, 0), domain)),
		) {
			if o.Result != destinations.Delivered {
				t.Fatalf("round %d, setup: %+v", round, o)
			}
		}
		newer := []destinations.Event{
			ev(fmt.Sprintf(`{"type":"identify","userId":"u%d","timestamp":%q,"traits":{"email":%q,"jobtitle":"Newer"}}`, round, stamp(round, 2), email)),
			ev(fmt.Sprintf(`{"type":"group","userId":"u%d","groupId":"g","timestamp":%q,"traits":{"website":%q,"description":"Newer"}}`, round, stamp(round, 2), domain)),
		}
		older := []destinations.Event{
			ev(fmt.Sprintf(`{"type":"identify","anonymousId":"a%d","timestamp":%q,"traits":{"email":%q,"jobtitle":"Older"}}`, round, stamp(round, 1), email)),
			ev(fmt.Sprintf(`{"type":"group","userId":"v%d","groupId":"g","timestamp":%q,"traits":{"website":%q,"description":"Older"}}`, round, stamp(round, 1), domain)),
		}
		var wg sync.WaitGroup
		outs := make([][]destinations.Outcome, 2)
		for k, batch := range [][]destinations.Event{newer, older} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[k] = h.Send(context.Background(), batch)
			}()
			time.Sleep(time.Millisecond) // the newer batch's calls go first
		}
		wg.Wait()
		for k, out := range outs {
			for _, o := range out {
				if o.Result != destinations.Delivered {
					t.Fatalf("round %d, batch %d: %+v", round, k, o)
				}
			}
		}
		c, _ := contactByEmail(p, email)
		if got := c.Properties["jobtitle"]; got != "Newer" {
			t.Errorf("round %d: the contact's jobtitle is %q, want Newer: the older batch rolled it back", round, got)
		}
		for _, co := range p.sandbox.Companies() {
			if co.Properties["domain"] == domain && co.Properties["description"] != "Newer" {
				t.Errorf("round %d: the company's description is %q, want Newer: the older batch rolled it back", round, co.Properties["description"])
			}
		}
	}
}
