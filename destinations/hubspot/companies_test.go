package hubspot_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// Two destination instances, as two router processes have, each with its
// own state and MaxInFlight batches at once, write the companies of four
// domains to one portal whose search lags behind. Search finds the company
// made before switchyard, never the ones switchyard makes during the run.
func TestOneDomainIsOneCompanyWhateverWritesItAtOnce(t *testing.T) {
	const lag = time.Minute
	clock := newLoadClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: hubID, SearchLag: lag, Now: clock.Now})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	p := &portal{sandbox: sb, srv: srv}
	existing := p.createCompany(t, "old.example")
	clock.Advance(2 * lag) // the old company is searchable; nothing made from now on is
	sb.SetLatency(2 * time.Millisecond)

	domains := []string{"dup0.example", "dup1.example", "dup2.example", "old.example"}
	const users = 80
	var batches [][]destinations.Event
	for start := 0; start < users; start += 4 {
		var batch []destinations.Event
		for i := start; i < start+4; i++ {
			d := domains[i%len(domains)]
			batch = append(batch,
				ev(fmt.Sprintf(`{"type":"identify","userId":"u%d","traits":{"email":"user%d@%s"}}`, i, i, d)),
				ev(fmt.Sprintf(`{"type":"group","userId":"u%d","groupId":"g-%s","traits":{"name":"Company %s","website":"https://www.%s/"}}`, i, d, d, d)))
		}
		batches = append(batches, batch)
	}
	work := make(chan []destinations.Event, len(batches))
	for _, b := range batches {
		work <- b
	}
	close(work)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for r := range 2 {
		h, err := hubspot.NewWithOwnClient(fmt.Sprintf("router%d", r), hubspot.Config{
			Token: "pat-test", BaseURL: srv.URL, HubID: hubID, Tier: "professional", StateDir: t.TempDir(), MaxInFlight: 3,
		}, zap.NewNop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		for range h.Policy().MaxInFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for batch := range work {
					if err := sendUntilFinished(h, batch); err != nil {
						mu.Lock()
						failed = append(failed, err.Error())
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d events not delivered, first: %s", len(failed), failed[0])
	}

	byDomain := map[string][]string{}
	for _, co := range sb.Companies() {
		byDomain[co.Properties["domain"]] = append(byDomain[co.Properties["domain"]], co.ID)
	}
	for _, d := range domains {
		if len(byDomain[d]) != 1 {
			t.Errorf("domain %s has %d companies %v, want 1", d, len(byDomain[d]), byDomain[d])
		}
	}
	if ids := byDomain["old.example"]; len(ids) != 1 || ids[0] != existing {
		t.Errorf("old.example companies %v, want the one made before switchyard, %s", ids, existing)
	}
	if len(byDomain) != len(domains) {
		t.Errorf("companies by domain %v, want one for each of %v", byDomain, domains)
	}
	for i := range users {
		d := domains[i%len(domains)]
		c, ok := contactByEmail(p, fmt.Sprintf("user%d@%s", i, d))
		if !ok {
			t.Fatalf("no contact for user %d", i)
		}
		if len(byDomain[d]) == 1 && !p.associated(c.ID, byDomain[d][0]) {
			t.Errorf("user %d's contact %s is not associated with %s's company %s", i, c.ID, d, byDomain[d][0])
		}
	}
	t.Logf("%d users of %d domains in %d batches through 2 instances: companies by domain %v after %d searches",
		users, len(domains), len(batches), byDomain, countCalls(p, "/search"))
}

// sendUntilFinished sends a batch, then its events that got Retry after
// the wait they asked for, as a router does, and reports the first event
// that was not delivered.
func sendUntilFinished(h *hubspot.HubSpot, batch []destinations.Event) error {
	for attempt := 1; len(batch) > 0; attempt++ {
		if attempt > 20 {
			return fmt.Errorf("%d events still retried after 20 attempts", len(batch))
		}
		var retry []destinations.Event
		wait := 10 * time.Millisecond
		for i, o := range h.Send(context.Background(), batch) {
			switch o.Result {
			case destinations.Delivered:
			case destinations.Retry:
				retry = append(retry, batch[i])
				wait = max(wait, o.RetryAfter)
			default:
				return fmt.Errorf("%s: %+v", batch[i].Get("type"), o)
			}
		}
		time.Sleep(min(wait, 2*time.Second))
		batch = retry
	}
	return nil
}

// A portal whose switchyard_domain property lacks unique values cannot
// upsert companies by it: the events say so rather than make duplicates.
func TestADomainPropertyWithoutUniqueValuesIsSaid(t *testing.T) {
	p := newPortal(t)
	if code := p.call(t, "POST", "/crm/v3/properties/companies/groups", `{"name":"switchyard","label":"switchyard"}`, nil); code != 201 {
		t.Fatalf("creating the group: %d", code)
	}
	if code := p.call(t, "POST", "/crm/v3/properties/companies",
		`{"name":"switchyard_domain","label":"Domain","type":"string","fieldType":"text","groupName":"switchyard"}`, nil); code != 201 {
		t.Fatalf("creating the property: %d", code)
	}
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	o := send(t, h, ev(`{"type":"group","userId":"u1","groupId":"g1","traits":{"website":"acme.example"}}`))[0]
	if o.Result != destinations.DeadLetter || !strings.Contains(o.Reason, "hasUniqueValue") {
		t.Fatalf("%+v", o)
	}
	if n := len(p.sandbox.Companies()); n != 0 {
		t.Fatalf("%d companies made", n)
	}
}
