package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/api"
)

// HubSpot takes custom event occurrences only for defined events, each
// with at most 50 custom properties besides its default hs_ ones
// ([O-events-def]; developers.hubspot.com/docs/api-reference/legacy/events/define-events/guide).
// The destination defines the events it names itself (pe{HubID}_{name}),
// with a string property for each property it sends, the first time it
// sends them. Events mapped by event_names are the user's own and are left
// alone.
const maxEventProperties = 50

// wantedEvent is what one batch sends to one event it names itself: the
// events and, for each, the properties of its occurrence.
type wantedEvent struct {
	label      string
	props      map[string]bool
	events     []int
	properties []map[string]string
}

// eventDefinition is what this process knows of a defined event: its
// custom properties.
type eventDefinition struct {
	props map[string]bool
}

// defineEvents makes sure each wanted event and its properties are defined.
// The events of an event whose definition cannot be read or made get the
// failure's outcome: a retry, unless HubSpot refused the definition.
// Properties past HubSpot's 50 are left out of the occurrences, noted.
func (s *sending) defineEvents(ctx context.Context, wanted map[string]*wantedEvent) {
	names := make([]string, 0, len(wanted))
	for name := range wanted {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := wanted[name]
		left, err := s.h.defineEvent(ctx, name, w)
		if err != nil {
			s.h.skip("event_definition")
			o := outcomeOf(err)
			o.Reason = "defining custom event " + name + " in HubSpot failed: " + o.Reason
			for _, i := range w.events {
				s.finish(i, o)
			}
			continue
		}
		if len(left) == 0 {
			continue
		}
		for k, i := range w.events {
			var dropped []string
			for _, p := range left {
				if _, ok := w.properties[k][p]; ok {
					delete(w.properties[k], p)
					dropped = append(dropped, p)
				}
			}
			if len(dropped) > 0 {
				s.h.skip("too_many_properties")
				s.note(i, "skipped event properties %s: custom event %s has %d custom properties, HubSpot's most", strings.Join(dropped, ", "), name, maxEventProperties)
			}
		}
	}
}

// defineEvent reads or creates the definition of event name and adds the
// properties it lacks. It returns the properties it cannot add, the
// definition having HubSpot's most.
func (h *HubSpot) defineEvent(ctx context.Context, name string, w *wantedEvent) (left []string, err error) {
	h.defining.Lock()
	defer h.defining.Unlock()
	def, ok := h.eventDefs[name]
	if !ok {
		if def, err = h.readEventDefinition(ctx, name); err != nil {
			return nil, err
		}
		if def == nil {
			if def, err = h.createEventDefinition(ctx, name, w); err != nil {
				return nil, err
			}
		}
		h.eventDefs[name] = def
	}
	var missing []string
	for p := range w.props {
		if !def.props[p] && !strings.HasPrefix(p, "hs_") {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for k, p := range missing {
		if len(def.props) >= maxEventProperties {
			return missing[k:], nil
		}
		_, err := h.call(ctx, "event-definitions/property", api.Standard, http.MethodPost,
			"/events/v3/event-definitions/"+url.PathEscape(name)+"/property", eventProperty(p))
		if err != nil && !isConflict(err) {
			return nil, fmt.Errorf("adding property %s: %w", p, err)
		}
		def.props[p] = true
	}
	return nil, nil
}

// readEventDefinition returns the definition of event name, or nil when
// HubSpot has none.
func (h *HubSpot) readEventDefinition(ctx context.Context, name string) (*eventDefinition, error) {
	resp, err := h.call(ctx, "event-definitions/get", api.Standard, http.MethodGet,
		"/events/v3/event-definitions/"+url.PathEscape(name)+"?includeProperties=true", nil)
	var re *api.RequestError
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading its definition: %w", err)
	}
	return parseEventDefinition(resp.Body)
}

// createEventDefinition defines event name on contacts with w's properties.
func (h *HubSpot) createEventDefinition(ctx context.Context, name string, w *wantedEvent) (*eventDefinition, error) {
	props := make([]string, 0, len(w.props))
	for p := range w.props {
		if !strings.HasPrefix(p, "hs_") {
			props = append(props, p)
		}
	}
	sort.Strings(props)
	if len(props) > maxEventProperties {
		props = props[:maxEventProperties]
	}
	defs := make([]map[string]any, len(props))
	for i, p := range props {
		defs[i] = eventProperty(p)
	}
	body := map[string]any{
		"name": name, "label": w.label, "primaryObject": "CONTACT",
		"description":              "Sent by switchyard",
		"includeDefaultProperties": true, "propertyDefinitions": defs,
	}
	resp, err := h.call(ctx, "event-definitions/create", api.Standard, http.MethodPost, "/events/v3/event-definitions", body)
	if isConflict(err) {
		// Defined meanwhile by someone else: read what they made.
		def, rerr := h.readEventDefinition(ctx, name)
		if rerr == nil && def != nil {
			return def, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating its definition: %w", err)
	}
	h.log.Info("defined a custom event", zap.String("event", name), zap.Strings("properties", props))
	return parseEventDefinition(resp.Body)
}

// eventProperty is the definition of one custom event property. Values
// go on the wire as strings, so the property is a string.
func eventProperty(name string) map[string]any {
	return map[string]any{"name": name, "label": name, "type": "string"}
}

// parseEventDefinition reads the custom properties of a definition; the
// default hs_ properties do not count against the 50.
func parseEventDefinition(body []byte) (*eventDefinition, error) {
	var res struct {
		Properties []struct {
			Name string `json:"name"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("reading HubSpot's event definition: %w", err)
	}
	def := &eventDefinition{props: map[string]bool{}}
	for _, p := range res.Properties {
		if !strings.HasPrefix(p.Name, "hs_") {
			def.props[p.Name] = true
		}
	}
	return def, nil
}
