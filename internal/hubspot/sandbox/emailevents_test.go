package sandbox_test

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// The facts these tests check are in shared/reference/hubspot-source.md §4
// "Marketing email events" and "Facts for the simulator", with their
// sources: [O-email-ref] (parameters, limit, response shape, scope),
// [O-email-method] (ordering, offset), [O-email-guide] (EventId and common
// fields) and [C-fivetran-src] / [C-airbyte-email] (fields of each type).

// emailEventsOfEachType holds one event of each type with its own fields
// (§4 "Type-specific fields" [C-fivetran-src], [O-email-ref]).
var emailEventsOfEachType = map[string]string{
	"SENT":         `"subject":"Spring sale","from":"news@example.com","replyTo":["reply@example.com"],"cc":[],"bcc":[]`,
	"DROPPED":      `"subject":"Spring sale","from":"news@example.com","dropReason":"PREVIOUSLY_BOUNCED","dropMessage":"bounced before"`,
	"PROCESSED":    ``,
	"DELIVERED":    `"response":"250 OK","smtpId":"<abc@example.com>"`,
	"DEFERRED":     `"response":"421 try later","attempt":2`,
	"BOUNCE":       `"category":"MAILBOX_FULL","status":"5.2.2","response":"552 mailbox full"`,
	"OPEN":         `"browser":{"name":"Firefox","family":"Firefox"},"location":{"city":"Lyon","state":"ARA","country":"France"},"ipAddress":"192.0.2.1","userAgent":"Mozilla/5.0","duration":1500`,
	"CLICK":        `"url":"https://example.com/sale","referer":"https://mail.example.com/","linkId":7,"ipAddress":"192.0.2.1","userAgent":"Mozilla/5.0"`,
	"PRINT":        `"ipAddress":"192.0.2.1","userAgent":"Mozilla/5.0"`,
	"FORWARD":      `"browser":{"name":"Chrome"},"userAgent":"Mozilla/5.0"`,
	"SPAMREPORT":   `"ipAddress":"192.0.2.1","userAgent":"Mozilla/5.0"`,
	"STATUSCHANGE": `"subscriptions":[{"id":"4","status":"UNSUBSCRIBED"}],"portalSubscriptionStatus":"SUBSCRIBED","requestedBy":"a@example.com","source":"SOURCE_RECIPIENT","bounced":false`,
}

func emailEvent(typ string, id string, created int64, fields string) string {
	e := fmt.Sprintf(`{"id":%q,"created":%d,"type":%q,"recipient":"a@example.com","appId":113,"appName":"BatchEmail","emailCampaignId":42`, id, created, typ)
	if fields != "" {
		e += "," + fields
	}
	return e + "}"
}

func addEmailEvents(t *testing.T, s *sandbox.Server, events ...string) sandboxResp {
	t.Helper()
	return call(t, s, "POST", "/_sandbox/email-events", `{"events":[`+strings.Join(events, ",")+`]}`)
}

func getEmailEvents(t *testing.T, s *sandbox.Server, query string) sandboxResp {
	t.Helper()
	return call(t, s, "GET", "/email/public/v1/events?"+query, "")
}

func TestEmailEventsCarryEachTypesFields(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	var added []string
	created := int64(1_770_000_000_000)
	for typ, fields := range emailEventsOfEachType {
		created++
		added = append(added, emailEvent(typ, "ev-"+typ, created, fields))
	}
	mustStatus(t, addEmailEvents(t, s, added...), 200)

	for typ, fields := range emailEventsOfEachType {
		r := getEmailEvents(t, s, "eventType="+typ)
		mustStatus(t, r, 200)
		events := r.get("events").Array()
		if len(events) != 1 {
			t.Fatalf("%s: %d events, want 1: %s", typ, len(events), r.body)
		}
		got := events[0]
		// The common fields and the EventId [O-email-guide].
		for path, want := range map[string]string{
			"id": "ev-" + typ, "type": typ, "recipient": "a@example.com", "portalId": "12345678",
			"appId": "113", "appName": "BatchEmail", "emailCampaignId": "42", "filteredEvent": "false",
		} {
			if v := got.Get(path).String(); v != want {
				t.Errorf("%s: %s = %q, want %q", typ, path, v, want)
			}
		}
		if !got.Get("created").Exists() || got.Get("created").Type != gjson.Number {
			t.Errorf("%s: created is not epoch ms: %s", typ, got.Raw)
		}
		// Its own fields, as added.
		own := gjson.Parse("{" + fields + "}")
		own.ForEach(func(k, v gjson.Result) bool {
			if g := got.Get(k.Str); g.Raw != v.Raw {
				t.Errorf("%s: %s = %s, want %s", typ, k.Str, g.Raw, v.Raw)
			}
			return true
		})
	}
}

func TestEmailEventsAreNewestFirstInPagesWithOffsets(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 10000})
	var added []string
	for i := range 25 {
		// Added out of order; two share a millisecond.
		created := int64(1_770_000_000_000 + (i*7%25)*1000)
		if i == 24 {
			created = 1_770_000_000_000 + 3000
		}
		added = append(added, emailEvent("OPEN", fmt.Sprintf("ev-%02d", i), created, ""))
	}
	mustStatus(t, addEmailEvents(t, s, added...), 200)

	var ids []string
	var createds []int64
	var pages []int
	query := "recipient=a%40example.com&limit=10"
	for {
		r := getEmailEvents(t, s, query)
		mustStatus(t, r, 200)
		events := r.get("events").Array()
		pages = append(pages, len(events))
		for _, e := range events {
			ids = append(ids, e.Get("id").String())
			createds = append(createds, e.Get("created").Int())
		}
		// [O-email-ref]: {"events":[…], "hasMore":bool, "offset":"<token>"}.
		if !r.get("hasMore").Bool() {
			break
		}
		if len(pages) > 5 {
			t.Fatalf("hasMore never ends: pages %v", pages)
		}
		query = "recipient=a%40example.com&limit=10&offset=" + url.QueryEscape(r.get("offset").String())
	}
	if !slices.Equal(pages, []int{10, 10, 5}) {
		t.Fatalf("pages of %v, want 10, 10, 5", pages)
	}
	// [O-email-method]: "Events will be returned in reverse-chronological order."
	if !slices.IsSortedFunc(createds, func(a, b int64) int { return int(b - a) }) {
		t.Fatalf("not newest first: %v", createds)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 25 {
		t.Fatalf("paging gave %d distinct events of 25: %v", len(slices.Compact(sorted)), ids)
	}
}

func TestEmailEventsDefaultAndMaximumPageSize(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 10000})
	var added []string
	for i := range 1001 {
		added = append(added, emailEvent("SENT", fmt.Sprintf("ev-%d", i), int64(1_770_000_000_000+i), ""))
	}
	mustStatus(t, addEmailEvents(t, s, added...), 200)
	// [O-email-ref]: "default value of 10 … The maximum allowed value is 1000".
	r := getEmailEvents(t, s, "")
	mustStatus(t, r, 200)
	if n := len(r.get("events").Array()); n != 10 || !r.get("hasMore").Bool() {
		t.Fatalf("default page: %d events, hasMore %v; want 10, true", n, r.get("hasMore").Bool())
	}
	r = getEmailEvents(t, s, "limit=1000")
	mustStatus(t, r, 200)
	if n := len(r.get("events").Array()); n != 1000 || !r.get("hasMore").Bool() {
		t.Fatalf("limit=1000: %d events, hasMore %v; want 1000, true", n, r.get("hasMore").Bool())
	}
	for _, limit := range []string{"0", "1001", "ten"} {
		r := getEmailEvents(t, s, "limit="+limit)
		mustStatus(t, r, 400)
		if !strings.Contains(r.get("message").String(), "limit") {
			t.Errorf("limit=%s: message %q does not name limit", limit, r.get("message").String())
		}
	}
}

func TestEmailEventsFilters(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 10000})
	base := int64(1_770_000_000_000)
	mustStatus(t, addEmailEvents(t, s,
		emailEvent("SENT", "a", base, ""),
		emailEvent("OPEN", "b", base+1000, ""),
		emailEvent("CLICK", "c", base+2000, `"url":"https://example.com/"`),
		`{"id":"d","created":`+fmt.Sprint(base+3000)+`,"type":"OPEN","recipient":"b@example.com","appId":200,"emailCampaignId":43}`,
		`{"id":"e","created":`+fmt.Sprint(base+4000)+`,"type":"OPEN","recipient":"b@example.com","emailCampaignId":43,"filteredEvent":true}`,
	), 200)
	ids := func(query string) string {
		t.Helper()
		r := getEmailEvents(t, s, query)
		mustStatus(t, r, 200)
		var out []string
		for _, e := range r.get("events").Array() {
			out = append(out, e.Get("id").String())
		}
		return strings.Join(out, ",")
	}
	cases := []struct{ query, want string }{
		{"", "e,d,c,b,a"},
		// startTimestamp and endTimestamp are inclusive [O-email-ref].
		{fmt.Sprintf("startTimestamp=%d&endTimestamp=%d", base+1000, base+3000), "d,c,b"},
		{"recipient=b%40example.com", "e,d"},
		{"campaignId=42", "c,b,a"},
		{"appId=200", "d"},
		{"eventType=OPEN", "e,d,b"},
		{"campaignId=43&eventType=OPEN&excludeFilteredEvents=true", "d"},
		{"excludeFilteredEvents=false", "e,d,c,b,a"},
	}
	for _, c := range cases {
		if got := ids(c.query); got != c.want {
			t.Errorf("?%s: %s, want %s", c.query, got, c.want)
		}
	}
	// eventType is case-sensitive [O-email-ref]: the sandbox refuses what is
	// not a type, naming the types.
	for _, q := range []string{"eventType=open", "startTimestamp=yesterday", "excludeFilteredEvents=yes", "campaignId=x"} {
		r := getEmailEvents(t, s, q)
		mustStatus(t, r, 400)
		if r.get("category").String() != "VALIDATION_ERROR" || r.get("message").String() == "" {
			t.Errorf("?%s: %s", q, r.body)
		}
	}
}

func TestEmailEventOffsetIsBoundToItsQueryAndShortLived(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{TenSecondlyLimit: 10000})
	for i := range 5 {
		mustStatus(t, addEmailEvents(t, s, emailEvent("OPEN", fmt.Sprint(i), int64(1_770_000_000_000+i), "")), 200)
	}
	r := getEmailEvents(t, s, "eventType=OPEN&limit=2")
	mustStatus(t, r, 200)
	offset := url.QueryEscape(r.get("offset").String())

	// [O-email-method]: the offset is for "subsequent requests on this
	// endpoint with the same query parameters (excluding offset itself and
	// limit)", and "meant to be short-lived".
	r = getEmailEvents(t, s, "eventType=OPEN&limit=3&offset="+offset)
	mustStatus(t, r, 200)
	if got := len(r.get("events").Array()); got != 3 || r.get("hasMore").Bool() {
		t.Fatalf("the next page with another limit: %d events, hasMore %v", got, r.get("hasMore").Bool())
	}
	r = getEmailEvents(t, s, "eventType=CLICK&limit=2&offset="+offset)
	mustStatus(t, r, 400)
	if !strings.Contains(r.get("message").String(), "other parameters") {
		t.Fatalf("an offset of another query: %s", r.body)
	}
	mustStatus(t, getEmailEvents(t, s, "eventType=OPEN&offset=not-a-token"), 400)
	clock.Advance(11 * time.Minute)
	r = getEmailEvents(t, s, "eventType=OPEN&limit=2&offset="+offset)
	mustStatus(t, r, 400)
	if !strings.Contains(r.get("message").String(), "expired") {
		t.Fatalf("an old offset: %s", r.body)
	}
}

func TestEmailEventsNeedTheContentScope(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	mustStatus(t, callAs(t, s, "", "GET", "/email/public/v1/events", ""), 401)
	// [O-email-ref]: required scope content.
	s.WithholdScope("content")
	r := getEmailEvents(t, s, "")
	mustStatus(t, r, 403)
	if r.get("category").String() != "MISSING_SCOPES" || r.get("errors.0.context.requiredGranularScopes.0").String() != "content" {
		t.Fatalf("403 body: %s", r.body)
	}
	// Other endpoints need other scopes.
	mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
	s.ClearFaults()
	mustStatus(t, getEmailEvents(t, s, ""), 200)
}

func TestAddingEmailEventsChecksThem(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	good := emailEvent("OPEN", "ok", 1_770_000_000_000, "")
	cases := []struct{ name, event, says string }{
		{"unknown type", `{"type":"SUGGESTION","recipient":"a@example.com"}`, `unknown type "SUGGESTION"`},
		{"types are case-sensitive", `{"type":"open","recipient":"a@example.com"}`, `unknown type "open"`},
		{"no type", `{"recipient":"a@example.com"}`, "type is required"},
		{"no recipient", `{"type":"OPEN"}`, "recipient is required"},
		{"another type's field", `{"type":"OPEN","recipient":"a@example.com","url":"https://example.com/"}`, "url is not a field of OPEN events"},
		{"an unknown field", `{"type":"CLICK","recipient":"a@example.com","link":"https://example.com/"}`, "link is not a field of CLICK events"},
		{"created as a date", `{"type":"OPEN","recipient":"a@example.com","created":"2026-03-10"}`, "created must be an integer"},
		{"status as an array", `{"type":"BOUNCE","recipient":"a@example.com","status":[550]}`, "status must be a string"},
		{"subscriptions as an object", `{"type":"STATUSCHANGE","recipient":"a@example.com","subscriptions":{}}`, "subscriptions must be an array of objects"},
		{"a repeated EventId", good, "the portal already holds an event with id \"ok\""},
	}
	mustStatus(t, addEmailEvents(t, s, good), 200)
	for _, c := range cases {
		r := addEmailEvents(t, s, emailEvent("SENT", "first-"+c.name, 1_770_000_000_001, ""), c.event)
		mustStatus(t, r, 400)
		if msg := r.get("message").String(); !strings.Contains(msg, "events[1]: "+c.says) {
			t.Errorf("%s: message %q, want it to say %q", c.name, msg, c.says)
		}
	}
	// All or none: the good event in front of each bad one was not added.
	r := getEmailEvents(t, s, "")
	if n := len(r.get("events").Array()); n != 1 {
		t.Fatalf("%d events held, want only the first good one: %s", n, r.body)
	}
	mustStatus(t, call(t, s, "POST", "/_sandbox/email-events", `[{"type":"OPEN"}]`), 400)
	mustStatus(t, call(t, s, "POST", "/_sandbox/email-events", `{}`), 400)
}

func TestAddEmailEventsFillsTheEventId(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	stored, err := s.AddEmailEvents(sandbox.EmailEvent{"type": "CLICK", "recipient": "a@example.com", "url": "https://example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	ev := stored[0]
	id, _ := ev["id"].(string)
	if id == "" || ev["created"] != float64(clock.Now().UnixMilli()) || ev["portalId"] != float64(12345678) || ev["filteredEvent"] != false {
		t.Fatalf("stored %v: want a random id, created now, the portal's id and filteredEvent false", ev)
	}
	// The EventId {created, id} finds it [O-email-guide].
	r := call(t, s, "GET", fmt.Sprintf("/email/public/v1/events/%d/%s", clock.Now().UnixMilli(), id), "")
	mustStatus(t, r, 200)
	if r.get("url").String() != "https://example.com/" || r.get("type").String() != "CLICK" {
		t.Fatalf("one event: %s", r.body)
	}
	mustStatus(t, call(t, s, "GET", fmt.Sprintf("/email/public/v1/events/%d/other", clock.Now().UnixMilli()), ""), 404)

	if _, err := s.AddEmailEvents(sandbox.EmailEvent{"type": "BOUNCE"}); err == nil || !strings.Contains(err.Error(), "recipient is required") {
		t.Fatalf("an event without recipient: %v", err)
	}
	s.Reset()
	if n := len(getEmailEvents(t, s, "").get("events").Array()); n != 0 {
		t.Fatalf("%d events after Reset", n)
	}
}

// TestEmailEventsTheTransformReadsAreAccepted adds the events the
// hubspotemail transform is tested with: the sandbox and the transform agree
// on HubSpot's field names for every type.
func TestEmailEventsTheTransformReadsAreAccepted(t *testing.T) {
	raw, err := os.ReadFile("../../../transforms/hubspotemail/testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newSandbox(t, sandbox.Config{})
	mustStatus(t, call(t, s, "POST", "/_sandbox/email-events", string(raw)), 200)
	r := getEmailEvents(t, s, "limit=100")
	if n := len(r.get("events").Array()); n != 12 {
		t.Fatalf("%d events, want the 12 types", n)
	}
	// Newest first: the STATUSCHANGE is the last one created.
	if typ := r.get("events.0.type").String(); typ != "STATUSCHANGE" {
		t.Fatalf("first event %s", typ)
	}
}
