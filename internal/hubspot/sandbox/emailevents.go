package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The email events API, GET /email/public/v1/events ([O-email-ref],
// [O-email-method], [O-email-guide]).
const (
	// emailEventsScope is the scope the email events API needs.
	emailEventsScope = "content"
	// emailEventsDefaultLimit and emailEventsMaxLimit bound a page:
	// "default value of 10 … The maximum allowed value is 1000".
	emailEventsDefaultLimit = 10
	emailEventsMaxLimit     = 1000
	// emailOffsetLifetime is how long a page's offset can be used. HubSpot
	// says only that the offset is "meant to be short-lived".
	emailOffsetLifetime = 10 * time.Minute
)

// EmailEvent is one marketing email event under HubSpot's field names, as
// the email events API answers it: "id", "created" (epoch ms), "type",
// "recipient", "portalId", "appId", "appName", "emailCampaignId", "hmid",
// "sentBy", "obsoletedBy", "causedBy", "filteredEvent", "sendId", and the
// fields of its type (see emailEventTypeFields), such as "url" on a CLICK or
// "category" and "status" on a BOUNCE.
type EmailEvent map[string]any

// emailEventCommonFields are the fields every email event type may carry
// ([O-email-guide]; sendId from the response sample of [O-email-ref]).
var emailEventCommonFields = []string{
	"id", "created", "type", "recipient", "portalId", "appId", "appName", "emailCampaignId",
	"hmid", "sentBy", "obsoletedBy", "causedBy", "filteredEvent", "sendId",
}

// emailEventTypeFields are the event types and the fields of each beyond the
// common ones (hubspot-source.md §4, from [C-fivetran-src], [O-email-ref] and
// [C-airbyte-email]). UNBOUNCE, which lacks the common fields, is not held.
var emailEventTypeFields = map[string][]string{
	"SENT":         {"subject", "from", "replyTo", "cc", "bcc"},
	"DROPPED":      {"subject", "from", "replyTo", "cc", "bcc", "dropReason", "dropMessage"},
	"PROCESSED":    {},
	"DELIVERED":    {"response", "smtpId"},
	"DEFERRED":     {"response", "attempt"},
	"BOUNCE":       {"category", "response", "status"},
	"OPEN":         {"browser", "location", "ipAddress", "userAgent", "duration"},
	"CLICK":        {"url", "referer", "browser", "location", "ipAddress", "userAgent", "linkId"},
	"PRINT":        {"browser", "location", "ipAddress", "userAgent"},
	"FORWARD":      {"browser", "location", "ipAddress", "userAgent"},
	"SPAMREPORT":   {"ipAddress", "userAgent"},
	"STATUSCHANGE": {"subscriptions", "portalSubscriptionStatus", "requestedBy", "source", "bounced"},
}

// emailEventTypes are the types in a stable order, for messages.
var emailEventTypes = []string{
	"SENT", "DROPPED", "PROCESSED", "DELIVERED", "DEFERRED", "BOUNCE",
	"OPEN", "CLICK", "PRINT", "FORWARD", "SPAMREPORT", "STATUSCHANGE",
}

// jsonShape is the JSON kind a field's value must have.
type jsonShape int

const (
	shapeString jsonShape = iota
	shapeInteger
	shapeBool
	shapeObject
	shapeStrings // an array of strings
	shapeObjects // an array of objects
)

func (k jsonShape) String() string {
	return [...]string{"a string", "an integer", "a boolean", "an object", "an array of strings", "an array of objects"}[k]
}

// emailFieldShapes gives each field's kind; fields not listed are strings.
var emailFieldShapes = map[string]jsonShape{
	"created": shapeInteger, "portalId": shapeInteger, "appId": shapeInteger, "emailCampaignId": shapeInteger,
	"attempt": shapeInteger, "duration": shapeInteger, "linkId": shapeInteger,
	"filteredEvent": shapeBool, "bounced": shapeBool,
	"sentBy": shapeObject, "obsoletedBy": shapeObject, "causedBy": shapeObject,
	"browser": shapeObject, "location": shapeObject,
	"replyTo": shapeStrings, "cc": shapeStrings, "bcc": shapeStrings,
	"subscriptions": shapeObjects,
}

// storedEmailEvent is an email event as the sandbox holds it: its fields as
// JSON, and seq, the order it was added in, which breaks ties of created.
type storedEmailEvent struct {
	fields    map[string]json.RawMessage
	id        string
	created   int64
	typ       string
	recipient string
	seq       int
}

// emailEventState is the email events a portal holds. The zero value is empty.
type emailEventState struct {
	events []storedEmailEvent
	byKey  map[string]bool // id + "\x00" + created
}

// AddEmailEvents adds events to the portal, all or none: each needs a known
// "type" and a "recipient" and may carry only its type's fields, each of its
// kind. The sandbox fills "id" (a random string), "created" (now, epoch ms),
// "portalId" (the HubID) and "filteredEvent" (false) where they are absent.
// It returns the events as stored; an event whose id and created the portal
// already holds is refused.
func (s *Server) AddEmailEvents(events ...EmailEvent) ([]EmailEvent, error) {
	raws := make([]json.RawMessage, len(events))
	for i, e := range events {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		raws[i] = raw
	}
	stored, err := s.addEmailEvents(raws)
	if err != nil {
		return nil, err
	}
	out := make([]EmailEvent, len(stored))
	for i, e := range stored {
		var ev EmailEvent
		_ = json.Unmarshal(e.json(), &ev)
		out[i] = ev
	}
	return out, nil
}

func (s *Server) addEmailEvents(raws []json.RawMessage) ([]storedEmailEvent, error) {
	now := s.cfg.Now()
	parsed := make([]storedEmailEvent, len(raws))
	for i, raw := range raws {
		e, err := s.checkEmailEvent(raw, now)
		if err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		parsed[i] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.email
	seen := map[string]bool{}
	for i, e := range parsed {
		key := e.id + "\x00" + strconv.FormatInt(e.created, 10)
		if st.byKey[key] || seen[key] {
			return nil, fmt.Errorf("events[%d]: the portal already holds an event with id %q and created %d", i, e.id, e.created)
		}
		seen[key] = true
	}
	if st.byKey == nil {
		st.byKey = map[string]bool{}
	}
	for i := range parsed {
		parsed[i].seq = len(st.events)
		st.byKey[parsed[i].id+"\x00"+strconv.FormatInt(parsed[i].created, 10)] = true
		st.events = append(st.events, parsed[i])
	}
	return parsed, nil
}

// checkEmailEvent validates one event and fills its defaults.
func (s *Server) checkEmailEvent(raw json.RawMessage, now time.Time) (storedEmailEvent, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return storedEmailEvent{}, fmt.Errorf("an event must be a JSON object")
	}
	var e storedEmailEvent
	typ, ok := jsonString(fields["type"])
	if !ok || typ == "" {
		return e, fmt.Errorf("type is required: one of %s", strings.Join(emailEventTypes, ", "))
	}
	own, known := emailEventTypeFields[typ]
	if !known {
		return e, fmt.Errorf("unknown type %q: want one of %s (case-sensitive)", typ, strings.Join(emailEventTypes, ", "))
	}
	recipient, ok := jsonString(fields["recipient"])
	if !ok || recipient == "" {
		return e, fmt.Errorf("recipient is required: the email address the %s event is about", typ)
	}
	for _, name := range sortedKeys(fields) {
		if !slices.Contains(emailEventCommonFields, name) && !slices.Contains(own, name) {
			return e, fmt.Errorf("%s is not a field of %s events; they take %s", name, typ,
				strings.Join(append(slices.Clone(emailEventCommonFields), own...), ", "))
		}
		if want := emailFieldShapes[name]; !hasShape(fields[name], want) {
			return e, fmt.Errorf("%s must be %s", name, want)
		}
	}
	if _, ok := fields["id"]; !ok {
		fields["id"] = mustJSON(uuid.NewString())
	}
	if _, ok := fields["created"]; !ok {
		fields["created"] = mustJSON(now.UnixMilli())
	}
	if _, ok := fields["portalId"]; !ok {
		fields["portalId"] = mustJSON(s.cfg.HubID)
	}
	if _, ok := fields["filteredEvent"]; !ok {
		fields["filteredEvent"] = mustJSON(false)
	}
	e.fields, e.typ, e.recipient = fields, typ, recipient
	e.id, _ = jsonString(fields["id"])
	if e.id == "" {
		return e, fmt.Errorf("id must not be empty")
	}
	created, err := strconv.ParseInt(string(fields["created"]), 10, 64)
	if err != nil || created < 0 {
		return e, fmt.Errorf("created must be epoch milliseconds, got %s", fields["created"])
	}
	e.created = created
	return e, nil
}

func jsonString(raw json.RawMessage) (string, bool) {
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

func hasShape(raw json.RawMessage, want jsonShape) bool {
	switch want {
	case shapeString:
		_, ok := jsonString(raw)
		return ok
	case shapeInteger:
		_, err := strconv.ParseInt(string(raw), 10, 64)
		return err == nil
	case shapeBool:
		return string(raw) == "true" || string(raw) == "false"
	case shapeObject:
		var m map[string]json.RawMessage
		return len(raw) > 0 && raw[0] == '{' && json.Unmarshal(raw, &m) == nil
	case shapeStrings:
		var a []string
		return len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &a) == nil
	case shapeObjects:
		var a []map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
			return false
		}
		for _, m := range a {
			if m == nil {
				return false
			}
		}
		return true
	}
	return false
}

func mustJSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// json is the event as the API answers it, keys sorted.
func (e storedEmailEvent) json() json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range sortedKeys(e.fields) {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(mustJSON(k))
		buf.WriteByte(':')
		buf.Write(e.fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// emailQuery is the filter of one GET /email/public/v1/events request.
type emailQuery struct {
	appID, campaignID    *int64
	recipient, eventType string
	start, end           *int64
	excludeFiltered      bool
	limit                int
	// fingerprint binds an offset to the query's parameters other than
	// offset and limit ([O-email-method]).
	fingerprint string
}

// emailCursor is what an offset token holds: the position after the last
// event of a page, the query it belongs to and when it stops working.
type emailCursor struct {
	Query   string `json:"q"`
	Created int64  `json:"c"`
	Seq     int    `json:"s"`
	Expires int64  `json:"e"`
}

func parseEmailQuery(q url.Values) (emailQuery, error) {
	out := emailQuery{limit: emailEventsDefaultLimit}
	integer := func(name string) (*int64, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s must be an integer, got %q", name, v)
		}
		return &n, nil
	}
	var err error
	if out.appID, err = integer("appId"); err != nil {
		return out, err
	}
	if out.campaignID, err = integer("campaignId"); err != nil {
		return out, err
	}
	if out.start, err = integer("startTimestamp"); err != nil {
		return out, err
	}
	if out.end, err = integer("endTimestamp"); err != nil {
		return out, err
	}
	out.recipient = q.Get("recipient")
	out.eventType = q.Get("eventType")
	if out.eventType != "" {
		if _, ok := emailEventTypeFields[out.eventType]; !ok {
			return out, fmt.Errorf("eventType %q is not an email event type: want one of %s (case-sensitive)", out.eventType, strings.Join(emailEventTypes, ", "))
		}
	}
	switch v := q.Get("excludeFilteredEvents"); v {
	case "", "false":
	case "true":
		out.excludeFiltered = true
	default:
		return out, fmt.Errorf("excludeFilteredEvents must be true or false, got %q", v)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > emailEventsMaxLimit {
			return out, fmt.Errorf("limit must be an integer from 1 to %d, got %q", emailEventsMaxLimit, v)
		}
		out.limit = n
	}
	bound := url.Values{}
	for k, vs := range q {
		if k != "offset" && k != "limit" {
			bound[k] = vs
		}
	}
	sum := sha256.Sum256([]byte(bound.Encode()))
	out.fingerprint = hex.EncodeToString(sum[:8])
	return out, nil
}

// matches reports whether e passes the query's filters. Timestamps are
// inclusive ([O-email-ref]); a recipient matches whatever its case, as email
// addresses do (HubSpot does not say).
func (q emailQuery) matches(e storedEmailEvent) bool {
	field := func(name string) (int64, bool) {
		n, err := strconv.ParseInt(string(e.fields[name]), 10, 64)
		return n, err == nil
	}
	if q.appID != nil {
		if n, ok := field("appId"); !ok || n != *q.appID {
			return false
		}
	}
	if q.campaignID != nil {
		if n, ok := field("emailCampaignId"); !ok || n != *q.campaignID {
			return false
		}
	}
	switch {
	case q.recipient != "" && !strings.EqualFold(e.recipient, q.recipient),
		q.eventType != "" && e.typ != q.eventType,
		q.start != nil && e.created < *q.start,
		q.end != nil && e.created > *q.end,
		q.excludeFiltered && string(e.fields["filteredEvent"]) == "true":
		return false
	}
	return true
}

// newerFirst orders events reverse-chronologically ([O-email-method]); of
// events created in the same millisecond the later added comes first.
func newerFirst(a, b storedEmailEvent) bool {
	if a.created != b.created {
		return a.created > b.created
	}
	return a.seq > b.seq
}

// handleEmailEvents is GET /email/public/v1/events: the events matching the
// query, newest first, a page of limit with hasMore and an offset for the
// next page ([O-email-ref], [O-email-method]).
func (s *Server) handleEmailEvents(w http.ResponseWriter, r *http.Request) {
	if !s.scopeGranted(w, emailEventsScope) {
		return
	}
	q, err := parseEmailQuery(r.URL.Query())
	if err != nil {
		fail(w, newError("VALIDATION_ERROR", err.Error()))
		return
	}
	now := s.cfg.Now()
	var after *emailCursor
	if token := r.URL.Query().Get("offset"); token != "" {
		c, err := decodeEmailOffset(token)
		switch {
		case err != nil:
			fail(w, newError("VALIDATION_ERROR", "offset "+strconv.Quote(token)+" is not an offset this endpoint gave"))
			return
		case c.Query != q.fingerprint:
			fail(w, newError("VALIDATION_ERROR", "offset belongs to a query with other parameters; an offset works only with the parameters of the request that returned it (limit aside)"))
			return
		case now.UnixMilli() > c.Expires:
			fail(w, newError("VALIDATION_ERROR", "offset has expired; start again without offset"))
			return
		}
		after = &c
	}

	s.mu.Lock()
	var matched []storedEmailEvent
	for _, e := range s.email.events {
		if !q.matches(e) {
			continue
		}
		if after != nil && !newerFirst(storedEmailEvent{created: after.Created, seq: after.Seq}, e) {
			continue
		}
		matched = append(matched, e)
	}
	s.mu.Unlock()
	sort.Slice(matched, func(i, j int) bool { return newerFirst(matched[i], matched[j]) })

	page := matched[:min(q.limit, len(matched))]
	events := make([]json.RawMessage, len(page))
	for i, e := range page {
		events[i] = e.json()
	}
	offset := r.URL.Query().Get("offset")
	if len(page) > 0 {
		last := page[len(page)-1]
		offset = encodeEmailOffset(emailCursor{Query: q.fingerprint, Created: last.created, Seq: last.seq,
			Expires: now.Add(emailOffsetLifetime).UnixMilli()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "hasMore": len(matched) > len(page), "offset": offset})
}

// handleEmailEvent is GET /email/public/v1/events/{created}/{id}: one event
// by its EventId ([O-email-guide]).
func (s *Server) handleEmailEvent(w http.ResponseWriter, r *http.Request) {
	if !s.scopeGranted(w, emailEventsScope) {
		return
	}
	created, err := strconv.ParseInt(r.PathValue("created"), 10, 64)
	if err != nil {
		fail(w, newError("VALIDATION_ERROR", "created must be epoch milliseconds, got "+strconv.Quote(r.PathValue("created"))))
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.email.events {
		if e.created == created && e.id == id {
			writeJSON(w, http.StatusOK, e.json())
			return
		}
	}
	fail(w, newError("OBJECT_NOT_FOUND", fmt.Sprintf("no email event with id %s created at %d", id, created)))
}

func encodeEmailOffset(c emailCursor) string {
	return base64.RawURLEncoding.EncodeToString(mustJSON(c))
}

func decodeEmailOffset(token string) (emailCursor, error) {
	var c emailCursor
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, err
	}
	if c.Query == "" {
		return c, fmt.Errorf("no query in offset")
	}
	return c, nil
}

// handleCtlEmailEvents is POST /_sandbox/email-events with
// {"events":[{...}]}, events under HubSpot's field names (the shape the
// email events API answers): 200 {"events":[...]} as stored, or 400 saying
// which event is wrong and why; nothing is added then.
func (s *Server) handleCtlEmailEvents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Events []json.RawMessage `json:"events"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Events == nil {
		fail(w, newError("VALIDATION_ERROR", `the body must be {"events":[...]}, events under HubSpot's field names`))
		return
	}
	stored, err := s.addEmailEvents(body.Events)
	if err != nil {
		fail(w, newError("VALIDATION_ERROR", err.Error()))
		return
	}
	events := make([]json.RawMessage, len(stored))
	for i, e := range stored {
		events[i] = e.json()
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}
