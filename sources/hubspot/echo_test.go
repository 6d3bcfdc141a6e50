package hubspot

import (
	"net/http"
	"testing"
)

// TestMergesAndPrivacyDeletionsAreNeverEchoes: our HubSpot destination
// never merges or deletes for privacy, so a merge or a privacy deletion made
// with our own app's token is acted on: the merged record is emitted, and
// the deleted contact is forgotten.
func TestMergesAndPrivacyDeletionsAreNeverEchoes(t *testing.T) {
	h := newHarness(t)
	h.appIdentify("u-ada", "ada@example.com")
	ada := h.edit("contacts", `{"properties":{"email":"ada@example.com","firstname":"Ada"}}`)
	other := h.edit("contacts", `{"properties":{"email":"augusta@example.com","firstname":"Augusta"}}`)
	h.deliver()
	h.waitCounted("contacts", "emitted", 1)

	merged := h.call(http.MethodPost, "/crm/v3/objects/contacts/merge", "our-token",
		`{"primaryObjectId":"`+ada+`","objectIdToMerge":"`+other+`"}`).Get("id").String()
	h.deliver()
	h.waitCounted("contacts", "emitted", 2)
	calls := h.emitted()
	if c := calls[len(calls)-1]; c.Get("userId").String() != "u-ada" || c.Get("_switchyard.hubspot.objectId").String() != merged {
		t.Fatalf("the merge emitted %s, want the identify of u-ada with record %s", c.Raw, merged)
	}

	h.call(http.MethodPost, "/crm/v3/objects/contacts/gdpr-delete", "our-token", `{"objectId":"`+merged+`"}`)
	h.deliver()
	h.waitCounted("contacts", "forgotten", 1)
	if n := h.counted("contacts", "echo"); n != 3 {
		t.Errorf("%v changes counted as echoes, want the deletions that accompany them: two for the merge, one for the privacy deletion", n)
	}
}
