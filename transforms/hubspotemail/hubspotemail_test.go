package hubspotemail_test

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/schemas"
	"github.com/switchyard/switchyard/transforms/hubspotemail"
)

var update = flag.Bool("update", false, "rewrite testdata/tracks.golden.jsonl")

// The HubSpot facts are in shared/reference/hubspot-source.md §4 "Marketing
// email events": the types and the fields of each ([O-email-guide],
// [C-fivetran-src], [O-email-ref]), the EventId {id, created}
// ([O-email-guide]) and Heap's names for the twelve types ([C-heap]).

// eventsByType reads testdata/events.json, one event of each type as the
// email events API answers them.
func eventsByType(t *testing.T) map[string]gjson.Result {
	t.Helper()
	raw, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]gjson.Result{}
	for _, e := range gjson.GetBytes(raw, "events").Array() {
		out[e.Get("type").Str] = e
	}
	if len(out) != len(hubspotemail.Types) {
		t.Fatalf("testdata/events.json has %d types, want %d", len(out), len(hubspotemail.Types))
	}
	return out
}

func TestTrackNamesEachTypeAsHeapAndKeepsItsFields(t *testing.T) {
	events := eventsByType(t)
	cases := []struct {
		typ, event string
		props      map[string]string // property -> its JSON
	}{
		{"SENT", "Sent Email", map[string]string{"subject": `"Spring sale"`, "from": `"News <news@example.com>"`, "reply_to": `["reply@example.com"]`, "cc": `[]`}},
		{"PROCESSED", "Processed Email", map[string]string{"sent_by_event_id": `"e-sent"`}},
		{"DROPPED", "Dropped Email", map[string]string{"drop_reason": `"PREVIOUSLY_BOUNCED"`, "drop_message": `"The recipient bounced before"`}},
		{"DELIVERED", "Delivered Email", map[string]string{"response": `"250 2.0.0 OK"`, "smtp_id": `"<e-sent@example.com>"`}},
		{"DEFERRED", "Deferred Email", map[string]string{"response": `"421 4.7.0 Try again later"`, "attempt": `1`}},
		{"BOUNCE", "Bounced Email", map[string]string{"bounce_category": `"MAILBOX_FULL"`, "bounce_status": `"5.2.2"`, "response": `"552 5.2.2 Mailbox full"`}},
		{"OPEN", "Opened Email", map[string]string{"browser": `"Firefox"`, "city": `"Lyon"`, "country": `"France"`, "ip_address": `"192.0.2.10"`, "duration_ms": `4200`}},
		{"CLICK", "Clicked Email Link", map[string]string{"url": `"https://example.com/sale?utm_source=hs&utm_medium=email"`, "referer": `"https://mail.example.com/"`, "link_id": `7`, "caused_by_event_id": `"e-open"`}},
		{"PRINT", "Printed Email", map[string]string{"browser": `"Chrome"`, "user_agent": `"Mozilla/5.0"`}},
		{"FORWARD", "Forwarded Email", map[string]string{"city": `"Paris"`, "ip_address": `"192.0.2.11"`}},
		{"SPAMREPORT", "Marked as Spam", map[string]string{"ip_address": `"192.0.2.10"`, "user_agent": `"Mozilla/5.0"`}},
		{"STATUSCHANGE", "Changed Email Subscription", map[string]string{"subscriptions": `[{"id":"4","status":"UNSUBSCRIBED","legalBasisChange":{"legalBasisType":"LEGITIMATE_INTEREST_CLIENT","optState":"OPT_OUT"}}]`, "portal_subscription_status": `"SUBSCRIBED"`, "source": `"SOURCE_RECIPIENT"`, "bounced": `false`}},
	}
	if len(cases) != len(hubspotemail.Types) {
		t.Fatalf("%d cases for %d types", len(cases), len(hubspotemail.Types))
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			in := events[c.typ]
			raw, err := hubspotemail.Track(in, "user-7")
			if err != nil {
				t.Fatal(err)
			}
			out := gjson.ParseBytes(raw)
			for path, want := range map[string]string{
				"type": "track", "event": c.event, "userId": "user-7",
				"context.traits.email":          "ada@example.com",
				"properties.hubspot_event_id":   in.Get("id").Str,
				"properties.hubspot_event_type": c.typ,
				"properties.campaign_id":        "4242",
				"properties.portal_id":          "12345678",
				"properties.app_name":           "BatchEmail",
			} {
				if got := out.Get(path).String(); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			ts, err := time.Parse(time.RFC3339Nano, out.Get("timestamp").Str)
			if err != nil || ts.UnixMilli() != in.Get("created").Int() || !strings.HasSuffix(out.Get("timestamp").Str, "Z") {
				t.Errorf("timestamp %s (%v), want created %d in UTC", out.Get("timestamp").Str, err, in.Get("created").Int())
			}
			for prop, want := range c.props {
				if got := out.Get("properties." + gjson.Escape(prop)).Raw; got != want {
					t.Errorf("properties.%s = %s, want %s", prop, got, want)
				}
			}
			// Only its type's fields: a CLICK's url never lands on an OPEN.
			if c.typ != "CLICK" && out.Get("properties.url").Exists() {
				t.Errorf("%s has a url property", c.typ)
			}
			if c.typ != "BOUNCE" && out.Get("properties.bounce_status").Exists() {
				t.Errorf("%s has bounce_status", c.typ)
			}
		})
	}
}

func TestMessageIDIsTheSameOnEveryPoll(t *testing.T) {
	events := eventsByType(t)
	first, _ := hubspotemail.Track(events["CLICK"], "user-7")
	again, _ := hubspotemail.Track(gjson.Parse(events["CLICK"].Raw), "user-7")
	id := gjson.GetBytes(first, "messageId").Str
	if id == "" || id != gjson.GetBytes(again, "messageId").Str {
		t.Fatalf("messageIds %q and %q", id, gjson.GetBytes(again, "messageId").Str)
	}
	if id != hubspotemail.MessageID("e-click", 1773147660000) {
		t.Fatalf("messageId %s is not MessageID of the EventId", id)
	}
	seen := map[string]string{}
	for typ, e := range events {
		raw, _ := hubspotemail.Track(e, "user-7")
		m := gjson.GetBytes(raw, "messageId").Str
		if other, ok := seen[m]; ok {
			t.Fatalf("%s and %s share messageId %s", typ, other, m)
		}
		seen[m] = typ
	}
	// The EventId is id and created together [O-email-guide].
	if hubspotemail.MessageID("e-click", 1) == hubspotemail.MessageID("e-click", 2) {
		t.Fatal("events with one id and different created share a messageId")
	}
}

func TestTrackRefusesWhatIsNotAnEmailEvent(t *testing.T) {
	cases := []struct{ name, event, userID, says string }{
		{"unknown type", `{"id":"x","created":1,"type":"UNBOUNCE","recipient":"a@example.com"}`, "u", `unknown HubSpot email event type "UNBOUNCE"`},
		{"lower-case type", `{"id":"x","created":1,"type":"open","recipient":"a@example.com"}`, "u", `unknown HubSpot email event type "open"`},
		{"no type", `{"id":"x","created":1,"recipient":"a@example.com"}`, "u", "has no type"},
		{"no id", `{"created":1,"type":"OPEN","recipient":"a@example.com"}`, "u", "OPEN event has no id"},
		{"created as a string", `{"id":"x","created":"1","type":"OPEN","recipient":"a@example.com"}`, "u", `created must be epoch milliseconds, got "1"`},
		{"no created", `{"id":"x","type":"OPEN","recipient":"a@example.com"}`, "u", "created must be epoch milliseconds, got nothing"},
		{"no recipient", `{"id":"x","created":1,"type":"OPEN"}`, "u", "OPEN event x has no recipient"},
		{"no user", `{"id":"x","created":1,"type":"OPEN","recipient":"a@example.com"}`, "", "userID is empty"},
		{"not an object", `["OPEN"]`, "u", "must be a JSON object"},
	}
	for _, c := range cases {
		out, err := hubspotemail.Track(gjson.Parse(c.event), c.userID)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: error %v, want one saying %q (output %s)", c.name, err, c.says, out)
		}
	}
	if _, err := hubspotemail.EventName("SUGGESTION"); err == nil {
		t.Error("EventName took SUGGESTION")
	}
}

// TestTracksMatchGoldenAndValidate checks every type's whole call against
// testdata/tracks.golden.jsonl (go test -update rewrites it) and against the
// Segment JSON Schemas the gateway validates with.
func TestTracksMatchGoldenAndValidate(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	events := eventsByType(t)
	var got bytes.Buffer
	for _, typ := range hubspotemail.Types {
		raw, err := hubspotemail.Track(events[typ], "user-7")
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if err := validator.Validate(raw); err != nil {
			t.Errorf("%s: the call does not follow the Segment spec: %v\n%s", typ, err, raw)
		}
		got.Write(raw)
		got.WriteByte('\n')
	}
	const golden = "testdata/tracks.golden.jsonl"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("calls differ from %s:\ngot:\n%s\nwant:\n%s", golden, got.Bytes(), want)
	}
	// The validator is not lenient: a call without userId fails it.
	if err := validator.Validate([]byte(`{"type":"track","event":"Opened Email","messageId":"m"}`)); err == nil {
		t.Fatal("the validator accepted a track without userId or anonymousId")
	}
}
