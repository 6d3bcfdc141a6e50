package hubspot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
	"github.com/switchyard/switchyard/schemas"
)

const hubID = 4242

type portal struct {
	sandbox *sandbox.Server
	srv     *httptest.Server
}

func newPortal(t *testing.T) *portal {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: hubID})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &portal{sandbox: sb, srv: srv}
}

func (p *portal) destination(t *testing.T, cfg hubspot.Config) *hubspot.HubSpot {
	t.Helper()
	cfg.Token, cfg.BaseURL, cfg.HubID, cfg.Tier = "pat-test", p.srv.URL, hubID, "professional"
	h, err := hubspot.NewWithOwnClient("crm", cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ev(raw string) destinations.Event {
	return destinations.Event{Event: schemas.NewEvent([]byte(raw)), Attempt: 1}
}

func send(t *testing.T, h *hubspot.HubSpot, events ...destinations.Event) []destinations.Outcome {
	t.Helper()
	out := h.Send(context.Background(), events)
	if len(out) != len(events) {
		t.Fatalf("%d outcomes for %d events", len(out), len(events))
	}
	return out
}

func contactByEmail(p *portal, email string) (sandbox.Record, bool) {
	for _, c := range p.sandbox.Contacts() {
		if c.Properties["email"] == email {
			return c, true
		}
	}
	return sandbox.Record{}, false
}

func TestIdentifyUpsertsAContactWithCleanProperties(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	out := send(t, h, ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:00.000Z","traits":{
		"email":"Ada@Example.com","firstName":"Ada","last_name":"Lovelace","title":"Countess","phone":"+44 020 7946 0000",
		"address":{"city":"London","postalCode":"W1"},"date_of_birth":"1815-12-10T23:30:00-05:00","Plan Type":"pro"}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("%+v", out[0])
	}
	c, ok := contactByEmail(p, "ada@example.com")
	if !ok {
		t.Fatalf("no contact: %+v", p.sandbox.Contacts())
	}
	want := map[string]string{"firstname": "Ada", "lastname": "Lovelace", "jobtitle": "Countess", "phone": "+44 020 7946 0000",
		"city": "London", "zip": "W1", "date_of_birth": "1815-12-10"}
	for k, v := range want {
		if c.Properties[k] != v {
			t.Errorf("%s = %q, want %q", k, c.Properties[k], v)
		}
	}
	// plan_type is not in a new portal's catalogue: skipped, and said so.
	if _, ok := c.Properties["plan_type"]; ok || !strings.Contains(out[0].Reason, "plan_type") {
		t.Fatalf("unknown trait: property set %v, outcome reason %q", ok, out[0].Reason)
	}
}

func TestUnknownPropertiesAreCreatedWhenAsked(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{AutoCreateProperties: true})
	out := send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"a@example.com","Plan Type":"pro","high_value_users":true,"lifetime_value":1234.5}}`))
	if out[0].Result != destinations.Delivered || out[0].Reason != "" {
		t.Fatalf("%+v", out[0])
	}
	c, _ := contactByEmail(p, "a@example.com")
	if c.Properties["plan_type"] != "pro" || c.Properties["high_value_users"] != "true" || c.Properties["lifetime_value"] != "1234.5" {
		t.Fatalf("created properties not set: %v", c.Properties)
	}
}

func TestEventsOfOneContactBecomeOneInputWithTheNewestValues(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:02Z","traits":{"email":"c@example.com","firstname":"Newest"}}`),
		ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:00Z","traits":{"email":"c@example.com","firstname":"Oldest","lastname":"Kept"}}`),
		ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:01Z","traits":{"email":"C@example.com","jobtitle":"CTO"}}`),
	)
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
	c, _ := contactByEmail(p, "c@example.com")
	if c.Properties["firstname"] != "Newest" || c.Properties["lastname"] != "Kept" || c.Properties["jobtitle"] != "CTO" {
		t.Fatalf("coalesced contact %v", c.Properties)
	}
	if n := countCalls(p, "POST /crm/v3/objects/{objectType}/batch/upsert"); n != 1 {
		t.Fatalf("%d upsert calls for one contact, want 1", n)
	}
}

func countCalls(p *portal, route string) int {
	n := 0
	for r, byStatus := range p.sandbox.Stats() {
		if strings.Contains(r, route) || r == route {
			for _, c := range byStatus {
				n += c
			}
		}
	}
	return n
}

func TestOneBadRecordIsDeadLetteredAndTheOthersDelivered(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	out := send(t, h,
		ev(`{"type":"identify","userId":"good1","traits":{"email":"good1@example.com"}}`),
		ev(`{"type":"identify","userId":"bad","traits":{"email":"bad@@example..com"}}`),
		ev(`{"type":"identify","userId":"good2","traits":{"email":"good2@example.com"}}`),
	)
	if out[0].Result != destinations.Delivered || out[2].Result != destinations.Delivered {
		t.Fatalf("good records: %+v %+v", out[0], out[2])
	}
	if out[1].Result != destinations.DeadLetter || !strings.Contains(out[1].Reason, "bad@@example..com") {
		t.Fatalf("bad record: %+v", out[1])
	}
	// The dead letter keeps HubSpot's error for the record, as it wrote it.
	if out[1].Status != http.StatusMultiStatus || !strings.Contains(out[1].Response, `"category":"VALIDATION_ERROR"`) ||
		!strings.Contains(out[1].Response, `"code":"INVALID_EMAIL"`) {
		t.Fatalf("bad record's status %d and response %q, want the 207's error for it", out[1].Status, out[1].Response)
	}
	if _, ok := contactByEmail(p, "good2@example.com"); !ok {
		t.Fatal("the good records were not written")
	}
}

func TestCompaniesAreFoundByDomainAndAssociatedWhicheverCameFirst(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	// A company that already exists in the portal is reused, not duplicated.
	existing := p.createCompany(t, "acme.com")

	// group before identify: the association waits for the contact.
	out := send(t, h, ev(`{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme Inc","website":"https://www.ACME.com/pricing?x=1","employees":250}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("group: %+v", out[0])
	}
	if n := len(p.sandbox.Companies()); n != 1 {
		t.Fatalf("%d companies, want the existing one only", n)
	}
	co := p.sandbox.Companies()[0]
	if co.ID != existing || co.Properties["name"] != "Acme Inc" || co.Properties["numberofemployees"] != "250" {
		t.Fatalf("company %+v", co)
	}
	out = send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@acme.com"}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("identify: %+v", out[0])
	}
	c, _ := contactByEmail(p, "ada@acme.com")
	if !p.associated(c.ID, existing) {
		t.Fatalf("contact %s not associated with company %s: %+v", c.ID, existing, p.sandbox.Associations())
	}

	// identify before group: associated at once.
	send(t, h, ev(`{"type":"identify","userId":"u2","traits":{"email":"bob@globex.example"}}`))
	send(t, h, ev(`{"type":"group","userId":"u2","groupId":"g2","traits":{"name":"Globex","website":"globex.example"}}`))
	bob, _ := contactByEmail(p, "bob@globex.example")
	var globex string
	for _, co := range p.sandbox.Companies() {
		if co.Properties["domain"] == "globex.example" {
			globex = co.ID
		}
	}
	if globex == "" || !p.associated(bob.ID, globex) {
		t.Fatalf("globex %q not created or not associated: %+v", globex, p.sandbox.Associations())
	}
}

func (p *portal) createCompany(t *testing.T, domain string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.srv.URL+"/crm/v3/objects/companies/batch/create",
		strings.NewReader(fmt.Sprintf(`{"inputs":[{"properties":{"domain":%q,"name":"old name"}}]}`, domain)))
	req.Header.Set("Authorization", "Bearer setup")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("creating a company: %v %v", resp, err)
	}
	resp.Body.Close()
	return p.sandbox.Companies()[0].ID
}

func (p *portal) associated(contactID, companyID string) bool {
	for _, a := range p.sandbox.Associations() {
		if a.FromID == contactID && a.ToID == companyID && strings.HasPrefix(a.FromType, "contact") {
			return true
		}
	}
	return false
}

func TestTrackPageAndScreenBecomeCustomEvents(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"ev@example.com"}}`),
		ev(`{"type":"track","userId":"u1","event":"Order Completed","timestamp":"2026-11-22T09:59:58.123Z","properties":{"revenue":42.5,"Plan Type":"pro"}}`),
		ev(`{"type":"page","userId":"u1","name":"Pricing","properties":{"url":"https://x.example/pricing"}}`),
		ev(`{"type":"track","anonymousId":"a9","event":"Signed Up","properties":{"email":"new@example.com"}}`),
		ev(`{"type":"alias","userId":"u1","previousId":"a1"}`),
	)
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
	events := p.sandbox.Events()
	if len(events) != 3 {
		t.Fatalf("%d events recorded: %+v", len(events), events)
	}
	c, _ := contactByEmail(p, "ev@example.com")
	order := events[0]
	if order.EventName != fmt.Sprintf("pe%d_order_completed", hubID) || order.ObjectID != c.ID ||
		order.Properties["revenue"] != "42.5" || order.Properties["plan_type"] != "pro" ||
		!order.OccurredAt.Equal(time.Date(2026, 11, 22, 9, 59, 58, 123e6, time.UTC)) {
		t.Fatalf("track event %+v", order)
	}
	if events[1].EventName != fmt.Sprintf("pe%d_page_viewed", hubID) || events[1].Properties["name"] != "Pricing" {
		t.Fatalf("page event %+v", events[1])
	}
	if events[2].Email != "new@example.com" {
		t.Fatalf("track by properties.email %+v", events[2])
	}
	// properties.email also updates the contact.
	if _, ok := contactByEmail(p, "new@example.com"); !ok {
		t.Fatal("a track with properties.email did not update the contact")
	}
	if !strings.Contains(out[4].Reason, "alias") {
		t.Fatalf("alias outcome %+v", out[4])
	}
}

func TestRateLimitsAndOutagesAreRetriedNotDeadLettered(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	send(t, h, ev(`{"type":"identify","userId":"u0","traits":{"email":"warm@example.com"}}`)) // load the catalogues
	p.sandbox.RateLimitBurst(1)
	out := send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"r@example.com"}}`))
	if out[0].Result != destinations.Retry || out[0].Class != "http_429" || out[0].RetryAfter <= 0 {
		t.Fatalf("after a 429: %+v", out[0])
	}

	// A fresh portal, since the 429 rightly holds this token's window for
	// 10 s.
	p = newPortal(t)
	h = p.destination(t, hubspot.Config{})
	send(t, h, ev(`{"type":"identify","userId":"u0","traits":{"email":"warm@example.com"}}`))
	p.sandbox.FailNext(1, 503)
	out = send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"r@example.com"}}`))
	if out[0].Result != destinations.Retry || out[0].Status != 503 {
		t.Fatalf("after a 503: %+v", out[0])
	}
}

func TestADailyLimitPausesTheDestination(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	send(t, h, ev(`{"type":"identify","userId":"u0","traits":{"email":"warm@example.com"}}`))
	p.sandbox.ExhaustDaily()
	out := send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"d@example.com"}}`))
	if out[0].Result != destinations.Retry || out[0].RetryAfter < time.Minute {
		t.Fatalf("after a DAILY 429: %+v", out[0])
	}
	if h.PausedUntil().Before(time.Now().Add(time.Minute)) {
		t.Fatalf("paused until %s", h.PausedUntil())
	}
}

func TestIdentifyWithoutAnIdentifierIsDeadLettered(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	out := send(t, h, ev(`{"type":"identify","userId":"nobody","traits":{"plan":"pro"}}`))
	if out[0].Result != destinations.DeadLetter || !strings.Contains(out[0].Reason, "email") {
		t.Fatalf("%+v", out[0])
	}
}

func TestCompanyIDsSurviveARestart(t *testing.T) {
	p := newPortal(t)
	state := t.TempDir()
	first := p.destination(t, hubspot.Config{StateDir: state})
	send(t, first, ev(`{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme","website":"acme.example"}}`))
	first.Close()
	searches := countCalls(p, "/search")
	if searches == 0 {
		t.Fatal("the first run made no search, so a restart that forgets the company's id would search no more than one that keeps it")
	}

	again := p.destination(t, hubspot.Config{StateDir: state})
	defer again.Close()
	out := send(t, again, ev(`{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme Corp","website":"https://acme.example"}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("%+v", out[0])
	}
	if n := countCalls(p, "/search"); n != searches {
		t.Fatalf("the restarted destination searched again (%d searches, was %d)", n, searches)
	}
	if cos := p.sandbox.Companies(); len(cos) != 1 || cos[0].Properties["name"] != "Acme Corp" {
		t.Fatalf("companies %+v", cos)
	}
}

func TestMetricsCountCallsRecordsAndSkips(t *testing.T) {
	p := newPortal(t)
	reg := prometheus.NewRegistry()
	m, err := hubspot.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := p.destination(t, hubspot.Config{Metrics: m})
	send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"m@example.com","Plan Type":"pro"}}`),
		ev(`{"type":"alias","userId":"u1","previousId":"a"}`),
	)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			key := f.GetName()
			for _, l := range metric.GetLabel() {
				if l.GetName() != "destination" {
					key += "," + l.GetValue()
				}
			}
			got[key] = metric.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"switchyard_hubspot_skipped_total,unknown_property": 1,
		"switchyard_hubspot_skipped_total,alias":            1,
		"switchyard_hubspot_records_total,contacts":         1,
		"switchyard_hubspot_calls_total,contacts/upsert,ok": 1,
		"switchyard_hubspot_calls_total,properties/list,ok": 2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
}

func TestAnAssociationWaitingForItsContactSurvivesARestart(t *testing.T) {
	p := newPortal(t)
	state := t.TempDir()
	first := p.destination(t, hubspot.Config{StateDir: state})
	send(t, first, ev(`{"type":"group","userId":"late","groupId":"g1","traits":{"name":"Acme","website":"acme.example"}}`))
	first.Close()

	again := p.destination(t, hubspot.Config{StateDir: state})
	defer again.Close()
	send(t, again, ev(`{"type":"identify","userId":"late","traits":{"email":"late@acme.example"}}`))
	c, _ := contactByEmail(p, "late@acme.example")
	co := p.sandbox.Companies()[0]
	if !p.associated(c.ID, co.ID) {
		t.Fatalf("the association that waited across the restart was not made: %+v", p.sandbox.Associations())
	}
	again.Close()
	// Done associations are not made again after another restart.
	third := p.destination(t, hubspot.Config{StateDir: state})
	defer third.Close()
	calls := associationWrites(p)
	if calls == 0 {
		t.Fatal("the association was made by no call associationWrites counts")
	}
	send(t, third, ev(`{"type":"identify","userId":"late","traits":{"email":"late@acme.example","firstname":"L"}}`))
	if n := associationWrites(p); n != calls {
		t.Fatalf("a done association was made again after a restart (%d association calls, was %d)", n, calls)
	}
}

// associationWrites counts the calls to every route that makes associations.
func associationWrites(p *portal) int {
	return countCalls(p, "batch/associate/default") + countCalls(p, "{toType}/batch/create") + countCalls(p, "/associations/default/")
}

func TestCallsAreFullAtOneHundredRecordsNotOneHundredEvents(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	if p := h.Policy(); p.MaxItems != 500 || p.MaxKeys != 100 {
		t.Fatalf("policy %+v, want batches of up to 500 events and 100 users", p)
	}
	// 300 events for 200 contacts: the 100 repeats coalesce, leaving 200
	// records, which go out in two full calls.
	var batch []destinations.Event
	for i := 0; i < 300; i++ {
		batch = append(batch, ev(fmt.Sprintf(`{"type":"identify","userId":"u%d","traits":{"email":"c%d@example.com"}}`, i%200, i%200)))
	}
	for i, o := range send(t, h, batch...) {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
	if n := len(p.sandbox.Contacts()); n != 200 {
		t.Fatalf("%d contacts, want 200", n)
	}
	if n := countCalls(p, "POST /crm/v3/objects/{objectType}/batch/upsert"); n != 2 {
		t.Fatalf("%d upsert calls for 200 records, want 2 full ones", n)
	}
}

func TestAnOlderEventNeverOverwritesANewerValue(t *testing.T) {
	p := newPortal(t)
	state := t.TempDir()
	h := p.destination(t, hubspot.Config{StateDir: state})
	newer := ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T12:00:00.000Z","traits":{"email":"ann@example.com","title":"CTO"}}`)
	older := ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T11:00:00.000Z","traits":{"email":"ann@example.com","title":"Intern","firstName":"Ann"}}`)
	if o := send(t, h, newer)[0]; o.Result != destinations.Delivered {
		t.Fatalf("%+v", o)
	}
	// A late or replayed event: its title is older than the one written,
	// its first name is new.
	o := send(t, h, older)[0]
	if o.Result != destinations.Delivered || !strings.Contains(o.Reason, "kept jobtitle as HubSpot has them") {
		t.Fatalf("the older event's outcome does not say jobtitle was kept: %+v", o)
	}
	c, _ := contactByEmail(p, "ann@example.com")
	if c.Properties["jobtitle"] != "CTO" || c.Properties["firstname"] != "Ann" {
		t.Fatalf("jobtitle %q firstname %q, want CTO (newer) and Ann", c.Properties["jobtitle"], c.Properties["firstname"])
	}

	// The times survive a restart, and an event as new as the written value
	// (the same event delivered again) is sent.
	h.Close()
	h = p.destination(t, hubspot.Config{StateDir: state})
	defer h.Close()
	send(t, h, older)
	if c, _ := contactByEmail(p, "ann@example.com"); c.Properties["jobtitle"] != "CTO" {
		t.Fatalf("after a restart the older event rolled jobtitle back to %q", c.Properties["jobtitle"])
	}
	if code := p.call(t, "POST", "/crm/v3/objects/contacts/batch/update", fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"jobtitle":"changed in HubSpot"}}]}`, c.ID), nil); code != http.StatusOK {
		t.Fatalf("updating the contact in HubSpot: %d", code)
	}
	if o := send(t, h, newer)[0]; o.Result != destinations.Delivered || strings.Contains(o.Reason, "kept") {
		t.Fatalf("the newest event again: %+v", o)
	}
	if c, _ := contactByEmail(p, "ann@example.com"); c.Properties["jobtitle"] != "CTO" {
		t.Fatalf("the newest event delivered again did not write jobtitle: %q", c.Properties["jobtitle"])
	}

	// Companies too.
	send(t, h, ev(`{"type":"group","userId":"u1","groupId":"g1","timestamp":"2026-11-22T12:00:00.000Z","traits":{"website":"acme.example","description":"Mining"}}`))
	send(t, h, ev(`{"type":"group","userId":"u1","groupId":"g1","timestamp":"2026-11-22T09:00:00.000Z","traits":{"website":"https://www.acme.example/","description":"Farming","name":"Acme"}}`))
	co := p.sandbox.Companies()
	if len(co) != 1 || co[0].Properties["description"] != "Mining" || co[0].Properties["name"] != "Acme" {
		t.Fatalf("companies %+v, want one with description Mining (newer) and name Acme", co)
	}
}

func TestAnAnonymousGroupIsAssociatedWhenItsContactAppears(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{StateDir: t.TempDir()})
	defer h.Close()
	out := send(t, h, ev(`{"type":"group","anonymousId":"anon-7","groupId":"g7","traits":{"name":"Initech","website":"initech.example"}}`))
	if out[0].Result != destinations.Delivered || !strings.Contains(out[0].Reason, "anonymous user anon-7") {
		t.Fatalf("%+v", out[0])
	}
	// The visitor signs up: an identify with the same anonymousId and an
	// email, in a later batch.
	send(t, h, ev(`{"type":"identify","anonymousId":"anon-7","traits":{"email":"peter@initech.example"}}`))
	c, _ := contactByEmail(p, "peter@initech.example")
	co := p.sandbox.Companies()
	if len(co) != 1 || !p.associated(c.ID, co[0].ID) {
		t.Fatalf("the anonymous visitor's company was not associated with the contact: %+v", p.sandbox.Associations())
	}
}

func TestATrackWithoutEmailFindsItsContactAfterARestart(t *testing.T) {
	p := newPortal(t)
	state := t.TempDir()
	h := p.destination(t, hubspot.Config{StateDir: state})
	send(t, h, ev(`{"type":"identify","userId":"u9","anonymousId":"visitor-9","traits":{"email":"nine@example.com"}}`))
	h.Close()

	h = p.destination(t, hubspot.Config{StateDir: state})
	defer h.Close()
	out := send(t, h,
		ev(`{"type":"track","userId":"u9","event":"Report Exported"}`),
		ev(`{"type":"track","anonymousId":"visitor-9","event":"Pricing Viewed"}`))
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d after a restart: %+v", i, o)
		}
	}
	c, _ := contactByEmail(p, "nine@example.com")
	events := p.sandbox.Events()
	if len(events) != 2 || events[0].ObjectID != c.ID || events[1].ObjectID != c.ID {
		t.Fatalf("events %+v, want both on contact %s", events, c.ID)
	}
}

func TestCustomEventsAreDefinedBeforeTheyAreSent(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{EventNames: map[string]string{"Mapped": "pe4242_their_own_event"}})
	defer h.Close()
	out := send(t, h,
		ev(`{"type":"track","userId":"u1","event":"Order Completed","properties":{"email":"a@example.com","total":42,"currency":"EUR"}}`),
		ev(`{"type":"track","userId":"u1","event":"Mapped","properties":{"email":"a@example.com","x":1}}`))
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
	defs := p.sandbox.EventDefinitions()
	if got := strings.Join(defs["order_completed"], ","); !strings.Contains(got, "currency:string,email:string") || !strings.Contains(got, "total:string") {
		t.Fatalf("order_completed defined with %q", got)
	}
	if _, ok := defs["their_own_event"]; ok || len(defs) != 1 {
		t.Fatalf("definitions %v: an event mapped by event_names is the user's own, not defined by us", defs)
	}

	// A new property is added to the definition; known ones cost no call.
	calls := countCalls(p, "event-definitions")
	send(t, h, ev(`{"type":"track","userId":"u1","event":"Order Completed","properties":{"email":"a@example.com","total":7,"coupon":"X"}}`))
	if got := strings.Join(p.sandbox.EventDefinitions()["order_completed"], ","); !strings.Contains(got, "coupon:string") {
		t.Fatalf("coupon was not added: %q", got)
	}
	if n := countCalls(p, "event-definitions") - calls; n != 1 {
		t.Fatalf("%d definition calls to add one property, want 1", n)
	}
	calls = countCalls(p, "event-definitions")
	send(t, h, ev(`{"type":"track","userId":"u1","event":"Order Completed","properties":{"email":"a@example.com","total":8}}`))
	if n := countCalls(p, "event-definitions") - calls; n != 0 {
		t.Fatalf("%d definition calls for a known event and properties, want 0", n)
	}

	// Another process finds the definition rather than making it again.
	again := p.destination(t, hubspot.Config{})
	defer again.Close()
	calls = countCalls(p, "POST /events/v3/event-definitions")
	send(t, again, ev(`{"type":"track","userId":"u2","event":"Order Completed","properties":{"email":"b@example.com","total":9}}`))
	if n := countCalls(p, "POST /events/v3/event-definitions") - calls; n != 0 {
		t.Fatalf("%d create calls for a defined event, want 0", n)
	}
}

func TestEventsFindContactsMadeElsewhere(t *testing.T) {
	p := newPortal(t)
	// The portal has a unique property holding the app's user id, and a
	// contact made by another process (another router, or the app itself).
	for _, c := range []struct{ path, body string }{
		{"/crm/v3/properties/contacts", `{"name":"app_user_id","label":"App user id","type":"string","fieldType":"text","groupName":"contactinformation","hasUniqueValue":true}`},
		{"/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"app_user_id":"u-elsewhere","email":"else@example.com"}}]}`},
	} {
		if code := p.call(t, "POST", c.path, c.body, nil); code >= 300 {
			t.Fatalf("POST %s: %d", c.path, code)
		}
	}
	var list struct {
		List struct {
			ListID string `json:"listId"`
		} `json:"list"`
	}
	p.call(t, "POST", "/crm/v3/lists", `{"name":"VIP","objectTypeId":"0-1","processingType":"MANUAL"}`, &list)
	listID := list.List.ListID
	h := p.destination(t, hubspot.Config{IDProperty: "app_user_id", Lists: map[string]string{"vip": listID}})
	defer h.Close()
	out := send(t, h,
		ev(`{"type":"track","userId":"u-elsewhere","event":"Report Exported"}`),
		ev(`{"type":"track","userId":"u-elsewhere","event":"Audience Entered","properties":{"audience_key":"vip"}}`),
		ev(`{"type":"track","userId":"u-nobody","event":"Report Exported"}`))
	c, _ := contactByEmail(p, "else@example.com")
	if out[0].Result != destinations.Delivered || out[1].Result != destinations.Delivered {
		t.Fatalf("outcomes %+v", out)
	}
	if events := p.sandbox.Events(); len(events) < 1 || events[0].ObjectID != c.ID {
		t.Fatalf("events %+v, want the first on contact %s", events, c.ID)
	}
	if members, _ := p.sandbox.ListMembers(listID); len(members) != 1 || members[0] != c.ID {
		t.Fatalf("list members %v, want %s", members, c.ID)
	}
	if out[2].Result != destinations.DeadLetter || !strings.Contains(out[2].Reason, "no contact has app_user_id equal to its userId") {
		t.Fatalf("a user with no contact anywhere: %+v", out[2])
	}
	if n := countCalls(p, "batch/read"); n != 1 {
		t.Fatalf("%d lookups, want one call for both users", n)
	}
}

func TestATracksTraitsKeepEveryDigit(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{AutoCreateProperties: true})
	defer h.Close()
	out := send(t, h, ev(`{"type":"track","userId":"u1","event":"Signed Up","properties":{"email":"big@example.com"},
		"context":{"traits":{"account_number":12345678901234567890123}}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("%+v", out[0])
	}
	c, _ := contactByEmail(p, "big@example.com")
	if got := c.Properties["account_number"]; got != "12345678901234567890123" {
		t.Fatalf("account_number = %q, want every digit as sent", got)
	}
}

func TestMetricsCountAConflictAsConflictNotAsAFailure(t *testing.T) {
	p := newPortal(t)
	track := `{"type":"track","userId":"u1","messageId":"m-1","event":"Signed Up","properties":{"email":"c@example.com"}}`
	first := p.destination(t, hubspot.Config{StateDir: t.TempDir()})
	send(t, first, ev(track))
	first.Close()

	// A second destination with state of its own creates the event
	// definition again and sends the same occurrence again: HubSpot answers
	// both with 409, and the destination takes both as done.
	reg := prometheus.NewRegistry()
	m, err := hubspot.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	again := p.destination(t, hubspot.Config{StateDir: t.TempDir(), Metrics: m})
	defer again.Close()
	if out := send(t, again, ev(track)); out[0].Result != destinations.Delivered {
		t.Fatalf("%+v", out[0])
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "switchyard_hubspot_calls_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "outcome" {
					outcomes[l.GetValue()] += metric.GetCounter().GetValue()
				}
			}
		}
	}
	if outcomes["conflict"] == 0 || outcomes["http_4xx"] != 0 {
		t.Fatalf("calls by outcome %v: want the 409s counted as conflict and none as http_4xx", outcomes)
	}
}
