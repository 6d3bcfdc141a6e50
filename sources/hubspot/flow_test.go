package hubspot

import (
	"github.com/tidwall/gjson"
	"net/http"
	"testing"
	"time"
)

// TestChangesInHubSpotReachKnownUsers runs the source end to end: signed
// notifications posted to the receiver, the processor reading the sandbox,
// and the calls it appends to events.
func TestChangesInHubSpotReachKnownUsers(t *testing.T) {
	h := newHarness(t)
	h.appIdentify("u-ada", "Ada@Example.com")

	// A person creates Ada in HubSpot, then edits her; an unknown contact
	// is created too.
	ada := h.edit("contacts", `{"properties":{"email":"ada@example.com","firstname":"Ada","lastname":"Lovelace"}}`)
	h.edit("contacts", `{"properties":{"email":"nobody@example.com","firstname":"No"}}`)
	body := h.deliver()
	h.waitCounted("contacts", "emitted", 1)
	h.waitCounted("contacts", "unknown_user", 1)
	calls := h.emitted()
	if len(calls) != 1 {
		t.Fatalf("want one identify, got %d: %v", len(calls), calls)
	}
	c := calls[0]
	if c.Get("type").String() != "identify" || c.Get("userId").String() != "u-ada" || c.Get("traits.first_name").String() != "Ada" {
		t.Fatalf("unexpected call %s", c.Raw)
	}
	if c.Get("traits.lastname").Exists() || c.Get("traits.email").Exists() || c.Get("_switchyard.hubspot.properties.email").Exists() {
		t.Errorf("an unmapped property left: %s", c.Raw)
	}
	if c.Get("context.externalIds.0.id").String() != ada || c.Get("_switchyard.hubspot.objectId").String() != ada ||
		c.Get("_switchyard.hubspot.hubId").Int() != 12345678 || c.Get("_switchyard.hubspot.properties.firstname.value").String() != "Ada" {
		t.Errorf("the call does not say where it came from: %s", c.Raw)
	}

	// The same delivery again, as HubSpot retries: the record is read in
	// the same state and the call has the same messageId.
	if status := h.post(body, testSecret, time.Now()); status != http.StatusOK {
		t.Fatalf("the retry got %d", status)
	}
	h.waitCounted("contacts", "emitted", 2)
	if ids := messageIDs(h.emitted()); len(ids) != 1 {
		t.Fatalf("a retried delivery made a new messageId: %v", ids)
	}

	// A UI edit reaches the user with the new value.
	h.edit("contacts/"+ada, `{"properties":{"firstname":"Augusta","lifecyclestage":"customer"}}`)
	h.deliver()
	h.waitCounted("contacts", "emitted", 3)
	calls = h.emitted()
	last := calls[len(calls)-1]
	if last.Get("traits.first_name").String() != "Augusta" || last.Get("traits.lifecycle_stage").String() != "customer" {
		t.Fatalf("the edit did not arrive: %s", last.Raw)
	}
	if len(messageIDs(calls)) != 2 {
		t.Fatalf("want two distinct identifies, got %v", messageIDs(calls))
	}

	// Our own destination's write (INTEGRATION, our app's id) is an echo.
	h.call(http.MethodPost, "/crm/v3/objects/contacts/batch/update", "our-token", `{"inputs":[{"id":"`+ada+`","properties":{"firstname":"FromTheApp"}}]}`)
	h.deliver()
	h.waitCounted("contacts", "echo", 1)
	if n := len(h.emitted()); n != 3 {
		t.Fatalf("an echo emitted a call: %d calls", n)
	}

	// A company linked to Ada reaches her as a group call.
	h.edit("companies", `{"properties":{"name":"Acme","domain":"acme.example"},"associations":[{"toObjectType":"contacts","toObjectId":"`+ada+`"}]}`)
	h.deliver()
	h.waitCounted("companies", "emitted", 1)
	calls = h.emitted()
	g := calls[len(calls)-1]
	if g.Get("type").String() != "group" || g.Get("userId").String() != "u-ada" || g.Get("groupId").String() != "acme.example" || g.Get("traits.name").String() != "Acme" {
		t.Fatalf("unexpected group call %s", g.Raw)
	}

	// A deal's stage reaches its contact.
	h.edit("deals", `{"properties":{"dealname":"Big","dealstage":"closedwon","amount":"1200.5"},"associations":[{"toObjectType":"contacts","toObjectId":"`+ada+`"}]}`)
	h.deliver()
	h.waitCounted("deals", "emitted", 1)
	calls = h.emitted()
	d := calls[len(calls)-1]
	if d.Get("type").String() != "identify" || d.Get("userId").String() != "u-ada" || d.Get("traits.deal_stage").String() != "closedwon" ||
		d.Get("traits.deal_amount").Float() != 1200.5 || d.Get("traits.first_name").Exists() {
		t.Fatalf("unexpected deal call %s", d.Raw)
	}
}

func messageIDs(calls []gjson.Result) map[string]bool {
	ids := map[string]bool{}
	for _, c := range calls {
		ids[c.Get("messageId").String()] = true
	}
	return ids
}
