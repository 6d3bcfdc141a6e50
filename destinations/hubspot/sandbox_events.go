package hubspot

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Custom event limits ([O-events]).
const (
	sbMaxEventBatch      = 500
	sbMaxEventProperties = 50
	sbMaxEventName       = 50
	sbMaxEventValue      = 256
	sbMaxEventURLValue   = 1024
)

// sbEventNameRe is the rule for event and event property names: lowercase
// letters, digits and underscores, starting with a letter ([O-events-def]).
var sbEventNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// SandboxEvent is one custom behavioral event occurrence the sandbox received.
type SandboxEvent struct {
	EventName  string            `json:"eventName"`
	Email      string            `json:"email,omitempty"`
	ObjectID   string            `json:"objectId,omitempty"`
	UTK        string            `json:"utk,omitempty"`
	OccurredAt time.Time         `json:"occurredAt"`
	Properties map[string]string `json:"properties"`
	ReceivedAt time.Time         `json:"receivedAt"`
}

// Events returns a copy of every event received, in arrival order.
func (s *Sandbox) Events() []SandboxEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SandboxEvent, len(s.events))
	for i, e := range s.events {
		e.Properties = make(map[string]string, len(s.events[i].Properties))
		for k, v := range s.events[i].Properties {
			e.Properties[k] = v
		}
		out[i] = e
	}
	return out
}

type sbEventInput struct {
	EventName  string                     `json:"eventName"`
	Email      string                     `json:"email"`
	ObjectID   json.RawMessage            `json:"objectId"`
	UTK        string                     `json:"utk"`
	OccurredAt json.RawMessage            `json:"occurredAt"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// handleEventSend is POST /events/v3/send: one occurrence, 204 ([O-events], [S]).
func (s *Sandbox) handleEventSend(w http.ResponseWriter, r *http.Request) {
	var in sbEventInput
	if !sbDecode(w, r, &in) {
		return
	}
	s.recordEvents(w, []sbEventInput{in}, false)
}

// handleEventSendBatch is POST /events/v3/send/batch: up to 500, 204 ([O-events], [S]).
func (s *Sandbox) handleEventSendBatch(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, sbMaxBody))
	if err != nil {
		sbFail(w, sbNewError("VALIDATION_ERROR", "Invalid input JSON: "+err.Error()))
		return
	}
	var body struct {
		Inputs []sbEventInput `json:"inputs"`
	}
	if !sbDecodeBytes(w, data, &body) {
		return
	}
	if len(body.Inputs) > sbMaxEventBatch {
		sbFail(w, sbBatchTooLarge(len(body.Inputs), sbMaxEventBatch))
		return
	}
	s.recordEvents(w, body.Inputs, true)
}

// recordEvents checks every occurrence; any problem fails the request and
// nothing is recorded ([O-events]: "Exceeding any of these fails the request").
func (s *Sandbox) recordEvents(w http.ResponseWriter, inputs []sbEventInput, batch bool) {
	now := s.cfg.Now()
	events := make([]SandboxEvent, 0, len(inputs))
	for i, in := range inputs {
		ev, err := s.checkEvent(in, now)
		if err != nil {
			msg := err.Error()
			if batch {
				msg = fmt.Sprintf("inputs[%d]: %s", i, msg)
			}
			sbFail(w, sbNewError("VALIDATION_ERROR", msg))
			return
		}
		events = append(events, ev)
	}
	s.mu.Lock()
	s.events = append(s.events, events...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) checkEvent(in sbEventInput, now time.Time) (SandboxEvent, error) {
	ev := SandboxEvent{EventName: in.EventName, Email: in.Email, UTK: in.UTK, ReceivedAt: now, OccurredAt: now, Properties: map[string]string{}}
	prefix := "pe" + strconv.FormatInt(s.cfg.HubID, 10) + "_"
	if in.EventName == "" {
		return ev, fmt.Errorf("eventName is required")
	}
	name, ok := strings.CutPrefix(in.EventName, prefix)
	if !ok {
		return ev, fmt.Errorf("event %s is not defined in portal %d: names look like %s{name}", in.EventName, s.cfg.HubID, prefix)
	}
	if !sbEventNameRe.MatchString(name) || len(name) > sbMaxEventName {
		return ev, fmt.Errorf("event name %q must be at most %d characters, start with a letter and hold only lowercase letters, numbers and underscores", name, sbMaxEventName)
	}
	if in.Properties == nil {
		return ev, fmt.Errorf("properties is required")
	}
	ev.ObjectID = sbScalar(in.ObjectID)
	if ev.ObjectID != "" {
		if _, err := strconv.ParseInt(ev.ObjectID, 10, 64); err != nil {
			return ev, fmt.Errorf("objectId %q is not a record id", ev.ObjectID)
		}
	}
	if ev.ObjectID == "" && ev.Email == "" && ev.UTK == "" && len(in.Properties["customMatchingId"]) == 0 {
		return ev, fmt.Errorf("an event needs objectId, email, utk or a customMatchingId property to find its record")
	}
	if occ := sbScalar(in.OccurredAt); occ != "" {
		ms, ok := sbInstant(occ)
		if !ok || sbDateRe.MatchString(occ) {
			return ev, fmt.Errorf("occurredAt %q is neither ISO 8601 nor epoch milliseconds", occ)
		}
		ev.OccurredAt = time.UnixMilli(ms).UTC()
	}
	if len(in.Properties) > sbMaxEventProperties {
		return ev, fmt.Errorf("%d properties; an occurrence takes at most %d", len(in.Properties), sbMaxEventProperties)
	}
	for _, k := range sbSortedKeys(in.Properties) {
		raw := in.Properties[k]
		if k != "customMatchingId" && (!sbEventNameRe.MatchString(k) || len(k) > sbMaxEventName) {
			return ev, fmt.Errorf("property name %q must be at most %d characters, start with a letter and hold only lowercase letters, numbers and underscores", k, sbMaxEventName)
		}
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return ev, fmt.Errorf("the value of property %q is %s; property values must be strings", k, sbJSONKind(raw))
		}
		limit := sbMaxEventValue
		if strings.Contains(k, "url") || strings.Contains(k, "referrer") {
			limit = sbMaxEventURLValue
		}
		if len(v) > limit {
			return ev, fmt.Errorf("the value of property %q is %d characters long; at most %d", k, len(v), limit)
		}
		ev.Properties[k] = v
	}
	return ev, nil
}
