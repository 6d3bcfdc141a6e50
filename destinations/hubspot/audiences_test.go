package hubspot_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
)

const listRoute = "PUT /crm/v3/lists/{listId}/memberships/add-and-remove"

// call makes one request to the sandbox's API and decodes its JSON answer
// into out.
func (p *portal) call(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, p.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer setup")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// createList creates a contact list of a processing type and returns its
// ILS id.
func (p *portal) createList(t *testing.T, name, processingType string) string {
	t.Helper()
	var res struct {
		List struct {
			ListID string `json:"listId"`
		} `json:"list"`
	}
	status := p.call(t, http.MethodPost, "/crm/v3/lists", fmt.Sprintf(`{"name":%q,"objectTypeId":"0-1","processingType":%q}`, name, processingType), &res)
	if status != http.StatusOK || res.List.ListID == "" {
		t.Fatalf("creating list %s: %d %+v", name, status, res)
	}
	return res.List.ListID
}

func (p *portal) members(t *testing.T, listID string) []string {
	t.Helper()
	ids, ok := p.sandbox.ListMembers(listID)
	if !ok {
		t.Fatalf("list %s does not exist", listID)
	}
	return ids
}

func audienceEvent(event, userID, key, timestamp string) destinations.Event {
	return ev(fmt.Sprintf(`{"type":"track","userId":%q,"event":%q,"timestamp":%q,"properties":{"audience_key":%q,"audience_name":"High value users",%q:%t}}`,
		userID, event, timestamp, key, key, event == "Audience Entered"))
}

func delivered(t *testing.T, out []destinations.Outcome) {
	t.Helper()
	for i, o := range out {
		if o.Result != destinations.Delivered {
			t.Fatalf("event %d: %+v", i, o)
		}
	}
}

func TestAudienceEventsKeepAManualListInStep(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})

	// The identify earlier in the batch makes the contact known.
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:00Z","traits":{"email":"ada@example.com","high_value_users":true}}`),
		audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	delivered(t, out)
	c, ok := contactByEmail(p, "ada@example.com")
	if !ok {
		t.Fatal("no contact")
	}
	if got := p.members(t, listID); !reflect.DeepEqual(got, []string{c.ID}) {
		t.Fatalf("members %v, want [%s]", got, c.ID)
	}
	// The audience event is still a behavioral event.
	events := p.sandbox.Events()
	if len(events) != 1 || events[0].EventName != fmt.Sprintf("pe%d_audience_entered", hubID) || events[0].ObjectID != c.ID ||
		events[0].Properties["audience_key"] != "high_value_users" {
		t.Fatalf("behavioral events %+v", events)
	}

	out = send(t, h, audienceEvent("Audience Exited", "u1", "high_value_users", "2026-11-22T11:00:00Z"))
	delivered(t, out)
	if got := p.members(t, listID); len(got) != 0 {
		t.Fatalf("members after Audience Exited: %v", got)
	}
	if n := countCalls(p, listRoute); n != 2 {
		t.Fatalf("%d add-and-remove calls, want 2", n)
	}
}

func TestTheNewestAudienceEventOfABatchWins(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	other := p.createList(t, "Churn risk", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID, "churn_risk": other}})
	delivered(t, send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"one@example.com"}}`),
		ev(`{"type":"identify","userId":"u2","traits":{"email":"two@example.com"}}`)))
	one, _ := contactByEmail(p, "one@example.com")
	two, _ := contactByEmail(p, "two@example.com")

	out := send(t, h,
		// u1 entered after it exited, though the exit comes later in the
		// batch: a member.
		audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:02Z"),
		audienceEvent("Audience Exited", "u1", "high_value_users", "2026-11-22T10:00:01Z"),
		// u2 exited after it entered: not a member.
		audienceEvent("Audience Entered", "u2", "high_value_users", "2026-11-22T10:00:01Z"),
		audienceEvent("Audience Exited", "u2", "high_value_users", "2026-11-22T10:00:02Z"),
		// Another list of the same batch gets its own call.
		audienceEvent("Audience Entered", "u2", "churn_risk", "2026-11-22T10:00:03Z"),
	)
	delivered(t, out)
	if got := p.members(t, listID); !reflect.DeepEqual(got, []string{one.ID}) {
		t.Fatalf("members %v, want [%s] only", got, one.ID)
	}
	if got := p.members(t, other); !reflect.DeepEqual(got, []string{two.ID}) {
		t.Fatalf("churn_risk members %v, want [%s]", got, two.ID)
	}
	if n := countCalls(p, listRoute); n != 2 {
		t.Fatalf("%d add-and-remove calls for two lists, want 2", n)
	}
}

func TestAnUnmappedAudienceIsOnlyABehavioralEvent(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`),
		audienceEvent("Audience Entered", "u1", "trial_users", "2026-11-22T10:00:01Z"))
	delivered(t, out)
	if n := countCalls(p, listRoute); n != 0 {
		t.Fatalf("%d list calls for an unmapped audience", n)
	}
	if got := p.members(t, listID); len(got) != 0 {
		t.Fatalf("members %v", got)
	}
	events := p.sandbox.Events()
	if len(events) != 1 || events[0].EventName != fmt.Sprintf("pe%d_audience_entered", hubID) || events[0].Properties["audience_key"] != "trial_users" {
		t.Fatalf("behavioral events %+v", events)
	}
}

func TestAnAudienceEventFindsItsContactByEmail(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	// No userId or anonymousId: the contact written by properties.email is
	// found through the email.
	out := send(t, h, ev(`{"type":"track","event":"Audience Entered","properties":{"audience_key":"high_value_users","email":"Mail@Example.com"}}`))
	delivered(t, out)
	c, ok := contactByEmail(p, "mail@example.com")
	if !ok {
		t.Fatal("no contact")
	}
	if got := p.members(t, listID); !reflect.DeepEqual(got, []string{c.ID}) {
		t.Fatalf("members %v, want [%s]", got, c.ID)
	}
}

func TestAnAudienceEventOfAnUnknownContactIsDeadLettered(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	out := send(t, h, audienceEvent("Audience Entered", "stranger", "high_value_users", "2026-11-22T10:00:01Z"))
	if out[0].Result != destinations.DeadLetter || out[0].Class != "no_identifier" ||
		!strings.Contains(out[0].Reason, "no contact is known") || !strings.Contains(out[0].Reason, listID) {
		t.Fatalf("%+v", out[0])
	}
	if n := countCalls(p, listRoute); n != 0 {
		t.Fatalf("%d list calls", n)
	}
	if n := len(p.sandbox.Events()); n != 0 {
		t.Fatalf("%d behavioral events for a dead letter", n)
	}
}

func TestADynamicListIsDeadLetteredWithHubSpotsMessage(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "Computed in HubSpot", "DYNAMIC")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`),
		audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("identify: %+v", out[0])
	}
	o := out[1]
	if o.Result != destinations.DeadLetter || o.Status != http.StatusBadRequest || o.Class != "list_refused" ||
		!strings.Contains(o.Reason, "processingType DYNAMIC") || !strings.Contains(o.Response, "MANUAL and SNAPSHOT") {
		t.Fatalf("%+v", o)
	}
	if got := p.members(t, listID); len(got) != 0 {
		t.Fatalf("members %v", got)
	}
}

func TestAMissingListIsDeadLettered(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": "987"}})
	out := send(t, h,
		ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`),
		audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	if o := out[1]; o.Result != destinations.DeadLetter || o.Status != http.StatusNotFound || !strings.Contains(o.Reason, "list 987 does not exist") {
		t.Fatalf("%+v", o)
	}
}

func TestAFailedListCallIsRetriedWithoutTheBehavioralEvent(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	delivered(t, send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`)))
	// The audience event carries no traits, so the list call is the
	// batch's first request.
	p.sandbox.FailNext(1, 503)
	out := send(t, h, audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	if out[0].Result != destinations.Retry || out[0].Status != 503 {
		t.Fatalf("%+v", out[0])
	}
	if n := len(p.sandbox.Events()); n != 0 {
		t.Fatalf("%d behavioral events sent for an event to retry", n)
	}
	out = send(t, h, audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	delivered(t, out)
	c, _ := contactByEmail(p, "ada@example.com")
	if got := p.members(t, listID); !reflect.DeepEqual(got, []string{c.ID}) {
		t.Fatalf("members after the retry %v", got)
	}
}

func TestAContactHubSpotNoLongerHasIsNoted(t *testing.T) {
	p := newPortal(t)
	listID := p.createList(t, "High value users", "MANUAL")
	h := p.destination(t, hubspot.Config{Lists: map[string]string{"high_value_users": listID}})
	delivered(t, send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com"}}`)))
	c, _ := contactByEmail(p, "ada@example.com")
	// A fresh portal: the contact the destination remembers is gone, and
	// the list is made again under the same id.
	p.sandbox.Reset()
	if again := p.createList(t, "High value users", "MANUAL"); again != listID {
		t.Fatalf("list id %s after reset, want %s", again, listID)
	}
	out := send(t, h, audienceEvent("Audience Entered", "u1", "high_value_users", "2026-11-22T10:00:01Z"))
	if out[0].Result != destinations.Delivered || out[0].Class != "partial" || !strings.Contains(out[0].Reason, "HubSpot has no contact "+c.ID) {
		t.Fatalf("%+v", out[0])
	}
}

func TestTheAudienceTraitBecomesABooleanCheckbox(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{AutoCreateProperties: true})
	delivered(t, send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com","high_value_users":true}}`)))
	var prop struct {
		Type      string `json:"type"`
		FieldType string `json:"fieldType"`
		GroupName string `json:"groupName"`
		Options   []struct {
			Value string `json:"value"`
		} `json:"options"`
	}
	if status := p.call(t, http.MethodGet, "/crm/v3/properties/contacts/high_value_users", "", &prop); status != http.StatusOK {
		t.Fatalf("reading the property: %d", status)
	}
	if prop.Type != "bool" || prop.FieldType != "booleancheckbox" || prop.GroupName != "switchyard" || len(prop.Options) != 2 {
		t.Fatalf("property %+v", prop)
	}
	c, _ := contactByEmail(p, "ada@example.com")
	if c.Properties["high_value_users"] != "true" {
		t.Fatalf("high_value_users = %q", c.Properties["high_value_users"])
	}
	// Leaving the audience sets it false.
	delivered(t, send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"ada@example.com","high_value_users":false}}`)))
	c, _ = contactByEmail(p, "ada@example.com")
	if c.Properties["high_value_users"] != "false" {
		t.Fatalf("high_value_users = %q after leaving", c.Properties["high_value_users"])
	}
}

func TestListIDsMustBeILSIDs(t *testing.T) {
	for _, lists := range []map[string]string{{"high_value_users": "abc"}, {"high_value_users": ""}, {"": "12"}} {
		_, err := hubspot.NewWithOwnClient("crm", hubspot.Config{Token: "t", Lists: lists}, zap.NewNop(), nil)
		if err == nil || !strings.Contains(err.Error(), "lists") {
			t.Fatalf("lists %v: error %v", lists, err)
		}
	}
}
