package hubspot_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/destinations/hubspot"
	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// newRewritingPortal is a portal whose answers pass through rewrite, given
// the request's method and path, before the destination sees them.
func newRewritingPortal(t *testing.T, rewrite func(route string, status int, body []byte) (int, []byte)) *portal {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Tier: "professional", HubID: hubID})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, r)
		status, body := rewrite(r.Method+" "+r.URL.Path, rec.Code, rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return &portal{sandbox: sb, srv: srv}
}

// sourceTrack is a track as the gateway stores it: with a messageId and
// the source that sent it.
func sourceTrack(source, messageID, event string) destinations.Event {
	return ev(fmt.Sprintf(`{"type":"track","messageId":%q,"userId":"u1","event":%q,"properties":{"email":"once@example.com"},"_switchyard":{"source":%q}}`,
		messageID, event, source))
}

func TestAnOccurrenceIsSentOnceHoweverOftenItIsDelivered(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	first := []destinations.Event{sourceTrack("app", "m1", "Signed Up"), sourceTrack("app", "m2", "Signed Up"), sourceTrack("web", "m1", "Signed Up")}
	delivered(t, send(t, h, first...))
	events := p.sandbox.Events()
	if len(events) != 3 {
		t.Fatalf("%d occurrences, want 3", len(events))
	}
	ids := map[string]bool{}
	for _, e := range events {
		if _, err := uuid.Parse(e.UUID); err != nil || ids[e.UUID] {
			t.Fatalf("occurrence uuids %+v: each must be a uuid of its own", events)
		}
		ids[e.UUID] = true
	}

	// Delivered again (a retry, a re-delivery after a crash, a replay), in
	// one batch and then with a new event among them.
	out := send(t, h, first...)
	for i, o := range out {
		if o.Result != destinations.Delivered || o.Class != "already_sent" || !strings.Contains(o.Reason, events[i].UUID) {
			t.Fatalf("re-delivered event %d: %+v", i, o)
		}
	}
	delivered(t, send(t, h, sourceTrack("app", "m3", "Signed Up"), sourceTrack("app", "m2", "Signed Up")))
	again := p.sandbox.Events()
	if len(again) != 4 {
		t.Fatalf("%d occurrences after re-deliveries, want 4: %+v", len(again), again)
	}
	// Another process derives the same uuids.
	other := p.destination(t, hubspot.Config{})
	defer other.Close()
	delivered(t, send(t, other, first...))
	if n := len(p.sandbox.Events()); n != 4 {
		t.Fatalf("%d occurrences after another process re-delivered, want 4", n)
	}
}

// HubSpot documents that it rejects a repeated uuid, not how it answers:
// a refusal that names the uuid, or a silent accept, both mean delivered.
func TestARepeatIsDeliveredHoweverHubSpotAnswersIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(conflict []byte) (int, []byte)
		// mixed is whether the rewrite keeps a batch of a repeat and a new
		// event faithful: a 204 for a refused batch would lose the new one.
		mixed bool
	}{
		{"a 400 naming the uuid", func(conflict []byte) (int, []byte) {
			id := gjson.GetBytes(conflict, "context.uuid.0").String()
			return http.StatusBadRequest, fmt.Appendf(nil, `{"status":"error","message":"Event with uuid %s already exists","correlationId":"%s","category":"VALIDATION_ERROR"}`, id, uuid.NewString())
		}, true},
		{"a silent accept", func([]byte) (int, []byte) { return http.StatusNoContent, nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRewritingPortal(t, func(route string, status int, body []byte) (int, []byte) {
				if strings.HasPrefix(route, "POST /events/v3/send") && status == http.StatusConflict {
					return tc.rewrite(body)
				}
				return status, body
			})
			h := p.destination(t, hubspot.Config{})
			defer h.Close()
			delivered(t, send(t, h, sourceTrack("app", "m1", "Signed Up")))
			delivered(t, send(t, h, sourceTrack("app", "m1", "Signed Up")))
			if n := len(p.sandbox.Events()); n != 1 {
				t.Fatalf("%d occurrences, want 1", n)
			}
			if !tc.mixed {
				return
			}
			delivered(t, send(t, h, sourceTrack("app", "m1", "Signed Up"), sourceTrack("app", "m2", "Signed Up")))
			if n := len(p.sandbox.Events()); n != 2 {
				t.Fatalf("%d occurrences, want 2", n)
			}
		})
	}
}

func TestAnEventWhoseDefinitionFailsIsRetried(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	send(t, h, ev(`{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}`)) // reads the property lists
	// The next call, reading the event's definition, fails.
	p.sandbox.FailNext(1, http.StatusServiceUnavailable)
	out := send(t, h, ev(`{"type":"track","userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}`))
	if out[0].Result != destinations.Retry || out[0].Status != http.StatusServiceUnavailable || !strings.Contains(out[0].Reason, "defining custom event signed_up in HubSpot failed") {
		t.Fatalf("%+v", out[0])
	}
	if n := len(p.sandbox.Events()); n != 0 {
		t.Fatalf("%d events sent, want none before the event is defined", n)
	}
	if n := countCalls(p, "POST /events/v3/send"); n != 0 {
		t.Fatalf("%d send calls for an event that could not be defined", n)
	}
	delivered(t, send(t, h, ev(`{"type":"track","userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}`)))
	if defs := p.sandbox.EventDefinitions(); len(defs["signed_up"]) == 0 || len(p.sandbox.Events()) != 1 {
		t.Fatalf("the retry: definitions %v, %d occurrences", defs, len(p.sandbox.Events()))
	}
}

func TestPropertiesPastADefinitionsFiftyAreLeftOut(t *testing.T) {
	p := newPortal(t)
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	props := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `,"p%02d":"x"`, i)
		}
		return b.String()
	}
	delivered(t, send(t, h, ev(`{"type":"track","userId":"u1","event":"Big","properties":{"email":"big@example.com"`+props(0, 49)+`}}`)))
	out := send(t, h, ev(`{"type":"track","userId":"u1","event":"Big","properties":{"email":"big@example.com","p00":"y","p98":"z","p99":"z"}}`))
	if out[0].Result != destinations.Delivered || !strings.Contains(out[0].Reason, "skipped event properties p98, p99") {
		t.Fatalf("%+v", out[0])
	}
	events := p.sandbox.Events()
	if len(events) != 2 || events[1].Properties["p00"] != "y" || events[1].Properties["p98"] != "" || events[1].Properties["p99"] != "" {
		t.Fatalf("occurrences %+v", events)
	}
}

func TestAFailedContactLookupIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*sandbox.Server)
		class string
	}{
		{"503", func(s *sandbox.Server) { s.FailNext(1, http.StatusServiceUnavailable) }, "transient"},
		{"429", func(s *sandbox.Server) { s.RateLimitBurst(1) }, "http_429"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPortal(t)
			for _, c := range []struct{ path, body string }{
				{"/crm/v3/properties/contacts", `{"name":"app_user_id","label":"App user id","type":"string","fieldType":"text","groupName":"contactinformation","hasUniqueValue":true}`},
				{"/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"app_user_id":"u-elsewhere","email":"else@example.com"}}]}`},
			} {
				if code := p.call(t, "POST", c.path, c.body, nil); code >= 300 {
					t.Fatalf("POST %s: %d", c.path, code)
				}
			}
			h := p.destination(t, hubspot.Config{IDProperty: "app_user_id"})
			defer h.Close()
			send(t, h, ev(`{"type":"identify","userId":"u-warm","traits":{"email":"warm@example.com"}}`)) // reads the property lists
			tc.fault(p.sandbox)
			out := send(t, h, ev(`{"type":"track","userId":"u-elsewhere","event":"Report Exported"}`), ev(`{"type":"track","userId":"u-elsewhere","event":"Report Shared"}`))
			for i, o := range out {
				if o.Result != destinations.Retry || o.Class != tc.class || !strings.Contains(o.Reason, "looking up contacts by app_user_id") {
					t.Fatalf("event %d after a failed lookup: %+v", i, o)
				}
			}
			if n := len(p.sandbox.Events()); n != 0 {
				t.Fatalf("%d events sent", n)
			}
		})
	}
}

func TestAnInputHubSpotDoesNotAnswerIsRetried(t *testing.T) {
	// HubSpot answers the upsert with one result fewer than it was sent,
	// and no error for the missing one.
	p := newRewritingPortal(t, func(route string, status int, body []byte) (int, []byte) {
		if route == "POST /crm/v3/objects/contacts/batch/upsert" && status < 300 {
			return status, []byte(strings.Replace(string(body), `"objectWriteTraceId":"1"`, `"objectWriteTraceId":"lost"`, 1))
		}
		return status, body
	})
	h := p.destination(t, hubspot.Config{})
	defer h.Close()
	out := send(t, h,
		ev(`{"type":"identify","userId":"u0","traits":{"email":"zero@example.com"}}`),
		ev(`{"type":"identify","userId":"u1","traits":{"email":"one@example.com"}}`))
	if out[0].Result != destinations.Delivered {
		t.Fatalf("the answered input: %+v", out[0])
	}
	if out[1].Result != destinations.Retry || out[1].Class != "response" {
		t.Fatalf("the input HubSpot did not answer: %+v", out[1])
	}
}
