// Package hubspotemail turns HubSpot marketing email events, as HubSpot's
// email events API (GET /email/public/v1/events) returns them, into Segment
// track calls named as Heap names them. It holds pure functions over gjson
// values: no I/O, no package-level state that changes, safe for concurrent
// use.
package hubspotemail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
)

// eventNames maps each HubSpot email event type to the track event Heap
// names it.
var eventNames = map[string]string{
	"SENT":         "Sent Email",
	"PROCESSED":    "Processed Email",
	"DROPPED":      "Dropped Email",
	"DELIVERED":    "Delivered Email",
	"DEFERRED":     "Deferred Email",
	"BOUNCE":       "Bounced Email",
	"OPEN":         "Opened Email",
	"CLICK":        "Clicked Email Link",
	"PRINT":        "Printed Email",
	"FORWARD":      "Forwarded Email",
	"SPAMREPORT":   "Marked as Spam",
	"STATUSCHANGE": "Changed Email Subscription",
}

// Types lists the HubSpot email event types Track maps, in the order of
// an email's life.
var Types = []string{
	"SENT", "PROCESSED", "DROPPED", "DELIVERED", "DEFERRED", "BOUNCE",
	"OPEN", "CLICK", "PRINT", "FORWARD", "SPAMREPORT", "STATUSCHANGE",
}

// field is one HubSpot field (a gjson path) and the track property it
// becomes.
type field struct{ path, property string }

// commonFields are carried by every type.
var commonFields = []field{
	{"id", "hubspot_event_id"},
	{"type", "hubspot_event_type"},
	{"emailCampaignId", "campaign_id"},
	{"portalId", "portal_id"},
	{"appId", "app_id"},
	{"appName", "app_name"},
	{"sentBy.id", "sent_by_event_id"},
	{"causedBy.id", "caused_by_event_id"},
	{"obsoletedBy.id", "obsoleted_by_event_id"},
	{"filteredEvent", "filtered_event"},
}

var (
	messageFields = []field{{"subject", "subject"}, {"from", "from"}, {"replyTo", "reply_to"}, {"cc", "cc"}, {"bcc", "bcc"}}
	clientFields  = []field{
		{"browser.name", "browser"}, {"location.city", "city"}, {"location.state", "state"},
		{"location.country", "country"}, {"ipAddress", "ip_address"}, {"userAgent", "user_agent"},
	}
)

// typeFields are the fields of each type beyond the common ones, as
// HubSpot's email events guide lists them.
var typeFields = map[string][]field{
	"SENT":       messageFields,
	"PROCESSED":  nil,
	"DROPPED":    append(append([]field{}, messageFields...), field{"dropReason", "drop_reason"}, field{"dropMessage", "drop_message"}),
	"DELIVERED":  {{"response", "response"}, {"smtpId", "smtp_id"}},
	"DEFERRED":   {{"response", "response"}, {"attempt", "attempt"}},
	"BOUNCE":     {{"category", "bounce_category"}, {"status", "bounce_status"}, {"response", "response"}},
	"OPEN":       append(append([]field{}, clientFields...), field{"duration", "duration_ms"}),
	"CLICK":      append([]field{{"url", "url"}, {"referer", "referer"}, {"linkId", "link_id"}}, clientFields...),
	"PRINT":      clientFields,
	"FORWARD":    clientFields,
	"SPAMREPORT": {{"ipAddress", "ip_address"}, {"userAgent", "user_agent"}},
	"STATUSCHANGE": {
		{"subscriptions", "subscriptions"}, {"portalSubscriptionStatus", "portal_subscription_status"},
		{"requestedBy", "requested_by"}, {"source", "source"}, {"bounced", "bounced"},
	},
}

// EventName returns the track event name of a HubSpot email event type
// ("CLICK" is "Clicked Email Link"). Types are case-sensitive, as in
// HubSpot's API; an unknown type is an error.
func EventName(hubspotType string) (string, error) {
	name, ok := eventNames[hubspotType]
	if !ok {
		return "", fmt.Errorf("unknown HubSpot email event type %q: want one of %s", hubspotType, strings.Join(Types, ", "))
	}
	return name, nil
}

// MessageID returns the messageId of the email event whose EventId is id and
// created: a UUID (SHA-1, URL namespace) of the event's address in HubSpot's
// API, /email/public/v1/events/{created}/{id}, so polling the same event
// again gives the same messageId.
func MessageID(id string, created int64) string {
	name := "https://api.hubapi.com/email/public/v1/events/" + strconv.FormatInt(created, 10) + "/" + id
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
}

// track is the Segment call Track writes.
type track struct {
	Type       string                     `json:"type"`
	Event      string                     `json:"event"`
	UserID     string                     `json:"userId"`
	MessageID  string                     `json:"messageId"`
	Timestamp  string                     `json:"timestamp"`
	Properties map[string]json.RawMessage `json:"properties"`
	Context    trackContext               `json:"context"`
}

type trackContext struct {
	Traits struct {
		Email string `json:"email"`
	} `json:"traits"`
}

// Track maps one HubSpot email event (an element of the "events" array the
// email events API answers) to a Segment track call for userID, as JSON:
//
//   - event: the name Heap gives its type ([EventName]);
//   - userId: userID, the app's user the caller matched the recipient to;
//   - timestamp: the event's created time (epoch ms) in RFC 3339, UTC;
//   - messageId: [MessageID] of its EventId, the same on every poll;
//   - context.traits.email: the recipient;
//   - properties: hubspot_event_id, hubspot_event_type, campaign_id,
//     portal_id, app_id, app_name, sent_by_event_id, caused_by_event_id,
//     obsoleted_by_event_id and filtered_event, and the fields of its type:
//     subject, from, reply_to, cc, bcc (SENT, DROPPED), drop_reason and
//     drop_message (DROPPED), response (DELIVERED, DEFERRED, BOUNCE),
//     smtp_id (DELIVERED), attempt (DEFERRED), bounce_category and
//     bounce_status (BOUNCE), url, referer and link_id (CLICK), browser,
//     city, state, country, ip_address and user_agent (OPEN, CLICK, PRINT,
//     FORWARD; SPAMREPORT has the last two), duration_ms (OPEN), and
//     subscriptions, portal_subscription_status, requested_by, source and
//     bounced (STATUSCHANGE). Each keeps HubSpot's JSON value; a field the
//     event lacks is left out.
//
// An event that is not a JSON object, has an unknown type, or lacks its
// id, created or recipient is an error, as is an empty userID.
func Track(event gjson.Result, userID string) ([]byte, error) {
	if !event.IsObject() || !gjson.Valid(event.Raw) {
		return nil, fmt.Errorf("a HubSpot email event must be a JSON object, got %.80s", event.Raw)
	}
	typ := event.Get("type")
	if typ.Type != gjson.String {
		return nil, fmt.Errorf("HubSpot email event has no type")
	}
	name, err := EventName(typ.Str)
	if err != nil {
		return nil, err
	}
	id := event.Get("id")
	if id.Type != gjson.String || id.Str == "" {
		return nil, fmt.Errorf("%s event has no id", typ.Str)
	}
	created, err := strconv.ParseInt(event.Get("created").Raw, 10, 64)
	if err != nil || created < 0 {
		return nil, fmt.Errorf("%s event %s: created must be epoch milliseconds, got %s", typ.Str, id.Str, orMissing(event.Get("created").Raw))
	}
	recipient := event.Get("recipient")
	if recipient.Type != gjson.String || recipient.Str == "" {
		return nil, fmt.Errorf("%s event %s has no recipient", typ.Str, id.Str)
	}
	if userID == "" {
		return nil, fmt.Errorf("%s event %s: userID is empty; pass the app's user the recipient matches", typ.Str, id.Str)
	}

	props := map[string]json.RawMessage{}
	for _, fields := range [][]field{commonFields, typeFields[typ.Str]} {
		for _, f := range fields {
			if v := event.Get(f.path); v.Exists() && v.Type != gjson.Null {
				props[f.property] = json.RawMessage(v.Raw)
			}
		}
	}
	out := track{
		Type:       "track",
		Event:      name,
		UserID:     userID,
		MessageID:  MessageID(id.Str, created),
		Timestamp:  time.UnixMilli(created).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Properties: props,
	}
	out.Context.Traits.Email = recipient.Str
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("%s event %s: %w", typ.Str, id.Str, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func orMissing(raw string) string {
	if raw == "" {
		return "nothing"
	}
	return raw
}
