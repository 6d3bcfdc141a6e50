package hubspot

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestForgedStaleAndUnsignedWebhooksStoreNothing posts webhooks HubSpot did
// not sign: each gets 401, is counted and stores nothing; malformed JSON
// gets 400.
func TestForgedStaleAndUnsignedWebhooksStoreNothing(t *testing.T) {
	h := newHarness(t)
	h.edit("contacts", `{"properties":{"email":"ada@example.com"}}`)
	body := h.pending()
	cases := []struct {
		name, reason string
		status       int
		send         func() int
	}{
		{"forged", "mismatch", http.StatusUnauthorized, func() int { return h.post(body, "not-the-secret", time.Now()) }},
		{"stale", "stale", http.StatusUnauthorized, func() int { return h.post(body, testSecret, time.Now().Add(-6*time.Minute)) }},
		{"unsigned", "unsigned", http.StatusUnauthorized, func() int {
			resp, err := http.Post(h.hook.URL+h.cfg.WebhookPath(), "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}},
		{"malformed", "", http.StatusBadRequest, func() int { return h.post([]byte(`[{"objectId":1`), testSecret, time.Now()) }},
		{"not an array", "", http.StatusBadRequest, func() int { return h.post([]byte(`{"objectId":1}`), testSecret, time.Now()) }},
	}
	for _, c := range cases {
		if got := c.send(); got != c.status {
			t.Errorf("%s: got %d, want %d", c.name, got, c.status)
		}
		if c.reason != "" {
			if n := testutil.ToFloat64(h.metrics.refused.WithLabelValues("crm-in", c.reason)); n != 1 {
				t.Errorf("%s: refused{reason=%s} is %v, want 1", c.name, c.reason, n)
			}
		}
	}
	if n := h.notificationsStored(); n != 0 {
		t.Fatalf("refused requests stored %d notifications", n)
	}
	if status := h.post(body, testSecret, time.Now()); status != http.StatusOK {
		t.Fatalf("a genuine request got %d", status)
	}
	if n := h.notificationsStored(); n == 0 {
		t.Fatal("a genuine request stored nothing")
	}
}

// TestMergesAndPrivacyDeletions merges two contacts (the survivor is
// emitted, the deletions that come with the merge are not deletions) and
// privacy-deletes one (it is forgotten; nothing more is emitted for it).
func TestMergesAndPrivacyDeletions(t *testing.T) {
	h := newHarness(t)
	h.appIdentify("u-carl", "carl@example.com")
	carl := h.edit("contacts", `{"properties":{"email":"carl@example.com","firstname":"Carl"}}`)
	dup := h.edit("contacts", `{"properties":{"email":"carl.dup@example.com","firstname":"Carlos"}}`)
	h.deliver()
	h.waitCounted("contacts", "emitted", 1)

	merged := h.call(http.MethodPost, "/crm/v3/objects/contacts/merge", otherToken, `{"primaryObjectId":"`+carl+`","objectIdToMerge":"`+dup+`"}`)
	survivor := merged.Get("id").String()
	h.deliver()
	h.waitCounted("contacts", "emitted", 2)
	calls := h.emitted()
	last := calls[len(calls)-1]
	if last.Get("userId").String() != "u-carl" || last.Get("_switchyard.hubspot.objectId").String() != survivor {
		t.Fatalf("the survivor %s was not emitted: %s", survivor, last.Raw)
	}

	h.call(http.MethodPost, "/crm/v3/objects/contacts/gdpr-delete", otherToken, `{"objectId":"`+survivor+`"}`)
	h.deliver()
	h.waitCounted("contacts", "forgotten", 1)
	waitFor(t, "the directory forgets carl", func() bool { _, ok := h.dir.UserByEmail("carl@example.com"); return !ok })
	if !h.dir.Forgotten(survivor) || h.dir.Known("u-carl") {
		t.Fatal("the privacy-deleted contact's traces remain")
	}
	if n := len(h.emitted()); n != 2 {
		t.Fatalf("a privacy deletion emitted: %d calls", n)
	}
}
