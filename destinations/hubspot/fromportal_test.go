package hubspot_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

// hubSpotValue is a property as a HubSpot source reports it.
type hubSpotValue struct {
	Value     string `json:"value"`
	Timestamp string `json:"timestamp"`
}

// sourceIdentify is an identify as a HubSpot source of portal hub emits it
// for a contact: traits renamed, _switchyard.hubspot with HubSpot's names,
// values and times.
func sourceIdentify(t *testing.T, hub int64, userID, contactID string, at time.Time, traits map[string]string, props map[string]hubSpotValue) destinations.Event {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"type": "identify", "userId": userID, "messageId": fmt.Sprintf("hubspot-%s-%d", contactID, at.UnixMilli()),
		"timestamp": at.Format("2006-01-02T15:04:05.000Z07:00"), "traits": traits,
		"context": map[string]any{"externalIds": []map[string]string{{"id": contactID, "type": "hubspot_contact_id", "collection": "users", "encoding": "none"}}},
		"_switchyard": map[string]any{"source": "crm-in", "hubspot": map[string]any{
			"hubId": hub, "objectType": "contacts", "objectId": contactID, "properties": props}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev(string(raw))
}

func stamp(at time.Time) string { return at.Format("2006-01-02T15:04:05.000Z07:00") }

func appIdentify(userID, email string, at time.Time, traits string) destinations.Event {
	return ev(fmt.Sprintf(`{"type":"identify","userId":%q,"timestamp":%q,"traits":{"email":%q%s}}`, userID, stamp(at), email, traits))
}

// editInHubSpot changes a contact as a person in HubSpot's UI.
func (p *portal) editInHubSpot(t *testing.T, contactID string, props map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"properties": props})
	if code := p.call(t, "POST", "/_sandbox/edit/contacts/"+contactID, string(body), nil); code != http.StatusOK {
		t.Fatalf("editing contact %s in HubSpot: %d", contactID, code)
	}
}

func TestAHubSpotEditIsNeverOverwrittenByAnOlderAppEvent(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{StateDir: t.TempDir()})
	defer h.Close()
	t1 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t2, t3 := t1.Add(time.Hour), t1.Add(2*time.Hour)
	first := appIdentify("u1", "ann@example.com", t1, `,"firstName":"Ann"`)
	delivered(t, send(t, h, first))
	c, _ := contactByEmail(p, "ann@example.com")

	// A sales rep renames her at T2, and the source reports it.
	p.editInHubSpot(t, c.ID, map[string]string{"firstname": "Rep"})
	o := send(t, h, sourceIdentify(t, hubID, "u1", c.ID, t2, map[string]string{"first_name": "Rep"},
		map[string]hubSpotValue{"firstname": {"Rep", stamp(t2)}}))[0]
	if o.Result != destinations.Delivered || o.Class != "from_this_portal" || !strings.Contains(o.Reason, "firstname") {
		t.Fatalf("the source's event: %+v", o)
	}

	// The app's identify of T1 again, as in a replay: the rep's value stays.
	o = send(t, h, first)[0]
	if o.Result != destinations.Delivered || !strings.Contains(o.Reason, "kept firstname") {
		t.Fatalf("the replayed identify: %+v", o)
	}
	if c, _ := contactByEmail(p, "ann@example.com"); c.Properties["firstname"] != "Rep" {
		t.Fatalf("after a replay of T1, firstname is %q, want the rep's Rep of T2", c.Properties["firstname"])
	}
	// An app identify newer than the rep's edit is written.
	delivered(t, send(t, h, appIdentify("u1", "ann@example.com", t3, `,"firstName":"Annie"`)))
	if c, _ := contactByEmail(p, "ann@example.com"); c.Properties["firstname"] != "Annie" {
		t.Fatalf("after an identify of T3, firstname is %q, want Annie", c.Properties["firstname"])
	}
}

func sandboxCalls(p *portal) int {
	n := 0
	for _, byStatus := range p.sandbox.Stats() {
		for _, c := range byStatus {
			n += c
		}
	}
	return n
}

// skippedCount reads switchyard_hubspot_skipped_total for a reason.
func skippedCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "switchyard_hubspot_skipped_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return metric.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestAnEventFromThisPortalMakesNoHubSpotCall(t *testing.T) {
	p := newPortal(t)
	reg := prometheus.NewRegistry()
	m, err := hubspot.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	event := sourceIdentify(t, hubID, "u1", "1001", at, map[string]string{"email": "ann@example.com", "first_name": "Ada"},
		map[string]hubSpotValue{"email": {"ann@example.com", stamp(at)}, "firstname": {"Ada", stamp(at)}})

	h := p.destination(t, hubspot.Config{Metrics: m})
	defer h.Close()
	before := sandboxCalls(p)
	for _, o := range send(t, h, event, event) {
		if o.Result != destinations.Delivered || o.Class != "from_this_portal" {
			t.Fatalf("%+v", o)
		}
	}
	if n := sandboxCalls(p) - before; n != 0 {
		t.Fatalf("%d HubSpot calls for events from this portal, want none: %v", n, p.sandbox.Stats())
	}
	if len(p.sandbox.Contacts()) != 0 {
		t.Fatalf("contacts written: %+v", p.sandbox.Contacts())
	}
	if got := skippedCount(t, reg, "from_this_portal"); got != 2 {
		t.Fatalf("switchyard_hubspot_skipped_total{reason=from_this_portal} = %v, want 2", got)
	}

	// Without a hub_id the destination cannot tell the portals apart, and
	// writes nothing back either.
	cfg := hubspot.Config{Token: "pat-test", BaseURL: p.srv.URL, Tier: "professional"}
	unset, err := hubspot.NewWithOwnClient("crm", cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unset.Close()
	other := sourceIdentify(t, 999, "u1", "1001", at, map[string]string{"email": "ann@example.com", "first_name": "Ada"}, nil)
	if o := send(t, unset, other)[0]; o.Result != destinations.Delivered || o.Class != "from_this_portal" {
		t.Fatalf("without hub_id: %+v", o)
	}
	if n := sandboxCalls(p) - before; n != 0 {
		t.Fatalf("%d HubSpot calls without hub_id, want none", n)
	}
}

// In one batch, the event a source read from another portal is written as
// any event is; the one from this portal is not.
func TestAnEventFromAnotherPortalIsWritten(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out := send(t, h,
		sourceIdentify(t, hubID+1, "u1", "1001", at, map[string]string{"email": "bo@example.com", "firstName": "Bo"},
			map[string]hubSpotValue{"email": {"bo@example.com", stamp(at)}, "firstname": {"Bo", stamp(at)}}),
		sourceIdentify(t, hubID, "u2", "1002", at, map[string]string{"email": "ann@example.com", "firstName": "Ann"},
			map[string]hubSpotValue{"email": {"ann@example.com", stamp(at)}, "firstname": {"Ann", stamp(at)}}))
	if out[0].Result != destinations.Delivered || out[0].Class != "" {
		t.Fatalf("the other portal's event: %+v", out[0])
	}
	if out[1].Result != destinations.Delivered || out[1].Class != "from_this_portal" {
		t.Fatalf("this portal's event: %+v", out[1])
	}
	if c, ok := contactByEmail(p, "bo@example.com"); !ok || c.Properties["firstname"] != "Bo" {
		t.Fatalf("the other portal's contact was not written: %+v", p.sandbox.Contacts())
	}
	if _, ok := contactByEmail(p, "ann@example.com"); ok {
		t.Fatalf("this portal's contact was written back: %+v", p.sandbox.Contacts())
	}
}
