package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/transforms"
)

// maxEvents is the events batch endpoint's limit ([O-events]).
const maxEvents = 500

// occurrenceNamespace is the UUID namespace of the occurrence uuids
// switchyard makes.
var occurrenceNamespace = uuid.MustParse("3b6f1c52-8e0a-4d7e-a1c9-5f2d7e8b4a60")

// occurrenceID is the uuid sent with an event's occurrence, a name-based
// UUID of its source and messageId: every delivery of one message (a retry,
// a re-delivery after a crash or rebalance, a replay) carries the same
// uuid, and HubSpot keeps the first occurrence of a uuid. A message without
// a messageId gets "", and HubSpot makes up a uuid.
func occurrenceID(ev destinations.Event) string {
	if ev.MessageID() == "" {
		return ""
	}
	return uuid.NewSHA1(occurrenceNamespace, []byte(ev.Source()+":"+ev.MessageID())).String()
}

// alreadySent tells whether HubSpot refused an occurrence because it has
// one with the same uuid. HubSpot documents that it rejects a repeated
// uuid, not its answer: a 409, or a 4xx whose message names the uuid as
// already there, counts.
func alreadySent(err error, id string) bool {
	var re *api.RequestError
	if id == "" || !errors.As(err, &re) {
		return false
	}
	if re.Status == http.StatusConflict {
		return true
	}
	msg := strings.ToLower(re.Reason + " " + re.Body)
	return strings.Contains(msg, id) && (strings.Contains(msg, "already") || strings.Contains(msg, "duplicate") || strings.Contains(msg, "exists"))
}

// events sends the batch's track, page and screen calls as custom
// behavioral events, each with its occurrence uuid. An occurrence HubSpot
// already has is delivered: silently accepted, or refused as a repeat.
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
		if id := occurrenceID(ev); id != "" {
			in["uuid"] = id
		}
		if email := eventEmail(ev.Get("properties.email"), ev.Get("context.traits.email")); email != "" {
			in["email"] = email
		} else if id, ok, err := h.knownContact(ev.UserID(), ev.AnonymousID()); err != nil {
			s.finish(i, stateReadFailed(err))
			continue
		} else if ok {
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
		s.mapped([]int{i}, mappingOf("events", res))
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
			w.properties = append(w.properties, res.Properties)
		}
	}
	s.defineEvents(ctx, wanted)
	// Events whose definition failed have their outcome.
	kept := 0
	for k, i := range idx {
		if !s.set[i] {
			inputs[kept], idx[kept] = inputs[k], i
			kept++
		}
	}
	inputs, idx = inputs[:kept], idx[:kept]
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
		// One bad or repeated event fails the whole request: send them one
		// by one so only the bad ones are dead-lettered.
		for k := start; k < end; k++ {
			_, err := h.call(ctx, "events/single", api.Events, http.MethodPost, "/events/v3/send", inputs[k])
			id, _ := inputs[k]["uuid"].(string)
			switch {
			case err == nil:
			case alreadySent(err, id):
				s.finish(idx[k], destinations.Outcome{Result: destinations.Delivered, Class: "already_sent", Reason: "HubSpot already has this occurrence (uuid " + id + ")"})
			default:
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
