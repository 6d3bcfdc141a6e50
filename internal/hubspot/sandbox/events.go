package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Custom event limits ([O-events]).
const (
	maxEventBatch      = 500
	maxEventProperties = 50
	maxEventName       = 50
	maxEventValue      = 256
	maxEventURLValue   = 1024
)

// eventNameRe is the rule for event and event property names: lowercase
// letters, digits and underscores, starting with a letter ([O-events-def]).
var eventNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Event is one custom behavioral event occurrence the sandbox received.
// UUID is the one sent, else one the sandbox made up, as HubSpot does.
type Event struct {
	EventName  string            `json:"eventName"`
	UUID       string            `json:"uuid"`
	Email      string            `json:"email,omitempty"`
	ObjectID   string            `json:"objectId,omitempty"`
	UTK        string            `json:"utk,omitempty"`
	OccurredAt time.Time         `json:"occurredAt"`
	Properties map[string]string `json:"properties"`
	ReceivedAt time.Time         `json:"receivedAt"`
}

// Events returns a copy of every event received, in arrival order.
func (s *Server) Events() []Event {
	events, _ := s.EventsFrom(0)
	return events
}

// EventsFrom returns a copy of the events received after the first from, in
// arrival order, and next, the from that returns only the events received
// later: a reader that passes next back gets each event once. A from past
// the end (after a Reset) gives none and the count of events held.
func (s *Server) EventsFrom(from int) (events []Event, next int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from = min(max(from, 0), len(s.events))
	out := make([]Event, len(s.events)-from)
	for i, e := range s.events[from:] {
		e.Properties = make(map[string]string, len(e.Properties))
		for k, v := range s.events[from+i].Properties {
			e.Properties[k] = v
		}
		out[i] = e
	}
	return out, len(s.events)
}

type eventInput struct {
	EventName  string                     `json:"eventName"`
	Email      string                     `json:"email"`
	ObjectID   json.RawMessage            `json:"objectId"`
	UTK        string                     `json:"utk"`
	OccurredAt json.RawMessage            `json:"occurredAt"`
	UUID       string                     `json:"uuid"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// handleEventSend is POST /events/v3/send: one occurrence, 204 ([O-events], [S]).
func (s *Server) handleEventSend(w http.ResponseWriter, r *http.Request) {
	var in eventInput
	if !decode(w, r, &in) {
		return
	}
	s.recordEvents(w, []eventInput{in}, false)
}

// handleEventSendBatch is POST /events/v3/send/batch: up to 500, 204 ([O-events], [S]).
func (s *Server) handleEventSendBatch(w http.ResponseWriter, r *http.Request) {
	inputs, ok := decodeInputs[eventInput](w, r, maxEventBatch)
	if !ok {
		return
	}
	s.recordEvents(w, inputs, true)
}

// recordEvents checks every occurrence; any problem fails the request and
// nothing is recorded ([O-events]: "Exceeding any of these fails the request").
//
// An occurrence whose uuid its event already has is a problem too. HubSpot
// documents the rule ("When multiple events have the same ID within a
// year, the first will be accepted and all others will be rejected"), not
// its answer; the sandbox answers 409 CONFLICT, as HubSpot answers a record
// whose unique value exists, naming the uuid in the message and in
// context.uuid, and a batch holding a repeat fails as a whole like any
// other bad input. A repeat within one request is refused the same way.
func (s *Server) recordEvents(w http.ResponseWriter, inputs []eventInput, batch bool) {
	now := s.cfg.Now()
	events := make([]Event, 0, len(inputs))
	failAt := func(i int, e *errorBody) {
		if batch {
			e.Message = fmt.Sprintf("inputs[%d]: %s", i, e.Message)
		}
		fail(w, e)
	}
	for i, in := range inputs {
		ev, err := s.checkEvent(in, now)
		if err != nil {
			failAt(i, newError("VALIDATION_ERROR", err.Error()))
			return
		}
		events = append(events, ev)
	}
	if i, e := s.keepEvents(events); e != nil {
		failAt(i, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// keepEvents records events unless one repeats a uuid of its event, whose
// index and error it then returns.
func (s *Server) keepEvents(events []Event) (int, *errorBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for i, ev := range events {
		key := ev.EventName + "\x00" + ev.UUID
		if s.eventUUIDs[ev.EventName][ev.UUID] || seen[key] {
			e := newError("CONFLICT", fmt.Sprintf("an occurrence of %s with uuid %s was already accepted; the first occurrence of a uuid is kept and the others are rejected", ev.EventName, ev.UUID))
			e.Context = map[string][]string{"uuid": {ev.UUID}}
			return i, e
		}
		seen[key] = true
	}
	for _, ev := range events {
		if s.eventUUIDs[ev.EventName] == nil {
			s.eventUUIDs[ev.EventName] = map[string]bool{}
		}
		s.eventUUIDs[ev.EventName][ev.UUID] = true
	}
	s.events = append(s.events, events...)
	return 0, nil
}

func (s *Server) checkEvent(in eventInput, now time.Time) (Event, error) {
	ev := Event{EventName: in.EventName, UUID: in.UUID, Email: in.Email, UTK: in.UTK, ReceivedAt: now, OccurredAt: now, Properties: map[string]string{}}
	if ev.UUID == "" {
		ev.UUID = uuid.NewString()
	}
	prefix := "pe" + strconv.FormatInt(s.cfg.HubID, 10) + "_"
	if in.EventName == "" {
		return ev, fmt.Errorf("eventName is required")
	}
	name, ok := strings.CutPrefix(in.EventName, prefix)
	if !ok {
		return ev, fmt.Errorf("event %s is not defined in portal %d: names look like %s{name}", in.EventName, s.cfg.HubID, prefix)
	}
	if !eventNameRe.MatchString(name) || len(name) > maxEventName {
		return ev, fmt.Errorf("event name %q must be at most %d characters, start with a letter and hold only lowercase letters, numbers and underscores", name, maxEventName)
	}
	if in.Properties == nil {
		return ev, fmt.Errorf("properties is required")
	}
	ev.ObjectID = scalar(in.ObjectID)
	if ev.ObjectID != "" {
		if _, err := strconv.ParseInt(ev.ObjectID, 10, 64); err != nil {
			return ev, fmt.Errorf("objectId %q is not a record id", ev.ObjectID)
		}
	}
	if ev.ObjectID == "" && ev.Email == "" && ev.UTK == "" && len(in.Properties["customMatchingId"]) == 0 {
		return ev, fmt.Errorf("an event needs objectId, email, utk or a customMatchingId property to find its record")
	}
	if occ := scalar(in.OccurredAt); occ != "" {
		ms, ok := instant(occ)
		if !ok || dateRe.MatchString(occ) {
			return ev, fmt.Errorf("occurredAt %q is neither ISO 8601 nor epoch milliseconds", occ)
		}
		ev.OccurredAt = time.UnixMilli(ms).UTC()
	}
	if len(in.Properties) > maxEventProperties {
		return ev, fmt.Errorf("%d properties; an occurrence takes at most %d", len(in.Properties), maxEventProperties)
	}
	for _, k := range sortedKeys(in.Properties) {
		raw := in.Properties[k]
		if k != "customMatchingId" && (!eventNameRe.MatchString(k) || len(k) > maxEventName) {
			return ev, fmt.Errorf("property name %q must be at most %d characters, start with a letter and hold only lowercase letters, numbers and underscores", k, maxEventName)
		}
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return ev, fmt.Errorf("the value of property %q is %s; property values must be strings", k, jsonKind(raw))
		}
		limit := maxEventValue
		if strings.Contains(k, "url") || strings.Contains(k, "referrer") {
			limit = maxEventURLValue
		}
		if len(v) > limit {
			return ev, fmt.Errorf("the value of property %q is %d characters long; at most %d", k, len(v), limit)
		}
		ev.Properties[k] = v
	}
	return ev, nil
}
