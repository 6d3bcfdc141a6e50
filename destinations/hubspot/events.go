package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/transforms"
)

// maxEvents is the events batch endpoint's limit ([O-events]).
const maxEvents = 500

// events sends the batch's track, page and screen calls as custom
// behavioral events.
func (s *sending) events(ctx context.Context) {
	h := s.h
	var inputs []map[string]any
	var idx []int
	wanted := map[string]*wantedEvent{}
	for i, ev := range s.batch {
		if s.set[i] {
			continue
		}
		var name string
		switch ev.Type() {
		case "track":
			name = ev.Get("event").String()
		case "page":
			if h.cfg.SkipPages {
				h.skip("page")
				s.finish(i, destinations.Outcome{Result: destinations.Delivered, Class: "skipped", Reason: "page calls are not sent (skip_pages)"})
				continue
			}
			name = h.cfg.PageEvent
		case "screen":
			if h.cfg.SkipScreens {
				h.skip("screen")
				s.finish(i, destinations.Outcome{Result: destinations.Delivered, Class: "skipped", Reason: "screen calls are not sent (skip_screens)"})
				continue
			}
			name = h.cfg.ScreenEvent
		default:
			continue
		}
		eventName, own, err := h.eventName(name)
		if err != nil {
			s.finish(i, destinations.Dead("event_name", err.Error()))
			continue
		}
		in := map[string]any{"eventName": eventName}
		if email := eventEmail(ev.Get("properties.email"), ev.Get("context.traits.email")); email != "" {
			in["email"] = email
		} else if id, ok := h.knownContact(ev.UserID(), ev.AnonymousID()); ok {
			in["objectId"] = id
		} else {
			s.finish(i, destinations.Dead("no_identifier", fmt.Sprintf("%s %q has no email and no contact is known for its user yet; %s, then replay the dead letters", ev.Type(), name, h.identifyHint())))
			continue
		}
		if at := ev.Timestamp(); !at.IsZero() {
			in["occurredAt"] = at.UTC().Format(transforms.DateTimeLayout)
		}
		props := ev.Get("properties")
		if ev.Type() != "track" {
			props = pageProperties(ev.Get("name"), props)
		}
		res := transforms.EventProperties(props, h.options())
		for _, p := range res.Problems {
			h.skip(string(p.Kind))
			s.note(i, "skipped event property %s", p.String())
		}
		in["properties"] = res.Properties
		inputs = append(inputs, in)
		idx = append(idx, i)
		if own && !h.cfg.SkipEventDefinitions {
			short := eventName[strings.IndexByte(eventName, '_')+1:] // pe{HubID}_{name}
			w := wanted[short]
			if w == nil {
				w = &wantedEvent{label: name, props: map[string]bool{}}
				wanted[short] = w
			}
			for p := range res.Properties {
				w.props[p] = true
			}
			w.events = append(w.events, i)
		}
	}
	s.defineEvents(ctx, wanted)
	for start := 0; start < len(inputs); start += maxEvents {
		end := min(len(inputs), start+maxEvents)
		h.records("events", end-start)
		_, err := h.call(ctx, "events/batch", api.Events, http.MethodPost, "/events/v3/send/batch", map[string]any{"inputs": inputs[start:end]})
		if err == nil {
			continue
		}
		o := outcomeOf(err)
		if o.Result != destinations.DeadLetter {
			for _, i := range idx[start:end] {
				s.finish(i, o)
			}
			continue
		}
		// One bad event fails the whole request: send them one by one so
		// only the bad ones are dead-lettered.
		for k := start; k < end; k++ {
			if _, err := h.call(ctx, "events/single", api.Events, http.MethodPost, "/events/v3/send", inputs[k]); err != nil {
				s.finish(idx[k], outcomeOf(err))
			}
		}
	}
}

// eventName is the custom event name of a call: the configured mapping,
// else pe{HubID}_{normalized name}, which is the destination's own (own
// is true).
func (h *HubSpot) eventName(name string) (fullName string, own bool, err error) {
	if mapped, ok := h.cfg.EventNames[name]; ok {
		return mapped, false, nil
	}
	if h.cfg.HubID == 0 {
		return "", false, fmt.Errorf("hub_id is not configured, so event %q has no custom event name", name)
	}
	fullName, err = transforms.EventName(h.cfg.HubID, name)
	return fullName, err == nil, err
}

func eventEmail(candidates ...gjson.Result) string {
	for _, c := range candidates {
		if c.Type == gjson.String && strings.Contains(c.Str, "@") {
			return strings.TrimSpace(c.Str)
		}
	}
	return ""
}

// pageProperties adds the page or screen name to its properties.
func pageProperties(name, props gjson.Result) gjson.Result {
	if name.Type != gjson.String || name.Str == "" {
		return props
	}
	return withField(props, "name", name.Raw)
}

// identifyHint says what makes a user's contact known.
func (h *HubSpot) identifyHint() string {
	if h.cfg.IDProperty == "email" {
		return "send an identify with an email first"
	}
	return "no contact has " + h.cfg.IDProperty + " equal to its userId: send an identify first"
}
