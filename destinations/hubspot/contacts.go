package hubspot

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
)

// contacts writes the contact updates of the batch: identify traits, and a
// track's context.traits and properties.email.
func (s *sending) contacts(ctx context.Context) {
	h := s.h
	byKey := map[string]*input{}
	var order []*input
	for i, ev := range s.batch {
		if s.set[i] {
			continue
		}
		var traits gjson.Result
		switch ev.Type() {
		case "identify":
			traits = ev.Get("traits")
		case "track":
			traits = ev.Get("context.traits")
			if email := ev.Get("properties.email"); email.Type == gjson.String && email.Str != "" {
				traits = withField(traits, "email", email.Raw)
			}
			if !traits.IsObject() || len(traits.Map()) == 0 {
				continue
			}
		default:
			continue
		}
		idProperty, id, key := "", "", ""
		switch {
		case h.cfg.IDProperty == "email":
			if email := strings.ToLower(strings.TrimSpace(traits.Get("email").String())); email != "" {
				idProperty, id, key = "email", email, "e:"+email
			}
		case ev.UserID() != "":
			idProperty, id, key = h.cfg.IDProperty, ev.UserID(), "u:"+ev.UserID()
		}
		if key == "" {
			// No identifier on the call: a contact this process already
			// knows for the user is updated by its HubSpot id.
			cid, ok, err := h.knownContact(ev.UserID(), ev.AnonymousID())
			switch {
			case err != nil:
				s.finish(i, stateReadFailed(err))
				continue
			case ok:
				key, id = "id:"+cid, cid
			case ev.Type() == "identify":
				s.finish(i, deadNoIdentifier(h.cfg.IDProperty))
				continue
			default:
				continue
			}
		}
		props, err := s.mapProperties(ctx, "contacts", traits, []int{i})
		if err != nil {
			s.finish(i, outcomeOf(err))
			continue
		}
		in := byKey[key]
		if in == nil {
			in = &input{key: key, keyProperty: idProperty, idProperty: idProperty, id: id, props: map[string]string{}, newest: map[string]time.Time{}}
			byKey[key] = in
			order = append(order, in)
		}
		in.merge(props, ev.Timestamp())
		in.events = append(in.events, i)
	}
	var upserts, updates []*input
	for _, in := range order {
		if in.idProperty == "" {
			updates = append(updates, in)
		} else {
			upserts = append(upserts, in)
		}
	}
	learned := map[string]string{}
	done := func(in *input, contactID string) {
		// The users of the input's events, each with its events.
		users := map[string][]int{}
		var order []string
		for _, i := range in.events {
			ev := s.batch[i]
			for _, user := range []string{"u:" + ev.UserID(), "a:" + ev.AnonymousID()} {
				if len(user) == 2 {
					continue
				}
				if users[user] == nil {
					order = append(order, user)
				}
				users[user] = append(users[user], i)
				learned[user] = contactID
			}
		}
		for _, user := range order {
			s.associatePending(user, contactID, users[user])
		}
		if in.idProperty == "email" {
			learned["e:"+in.id] = contactID
		}
	}
	s.write(ctx, "contacts", "upsert", upserts, done)
	s.write(ctx, "contacts", "update", updates, done)
	h.rememberIDs(learned)
}

func deadNoIdentifier(idProperty string) destinations.Outcome {
	if idProperty == "email" {
		return destinations.Dead("no_identifier", "identify has no traits.email, and no contact is known for its userId; contacts are matched by email (set id_property to match them by userId)")
	}
	return destinations.Dead("no_identifier", "identify has no userId to match the contact by "+idProperty)
}

// withField returns obj with key set to the JSON value raw, unless obj
// already has key. obj's own text is kept byte for byte, so numbers keep
// every digit and keys their order.
func withField(obj gjson.Result, key, raw string) gjson.Result {
	if obj.Get(gjson.Escape(key)).Exists() {
		return obj
	}
	field := strconv.Quote(key) + ":" + raw
	if obj.IsObject() {
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(obj.Raw), "{"))
		if rest != "}" {
			return gjson.Parse("{" + field + "," + rest)
		}
	}
	return gjson.Parse("{" + field + "}")
}

// knownContact returns the contact id written for a user, by userId, else
// by anonymousId.
func (h *HubSpot) knownContact(userID, anonymousID string) (string, bool, error) {
	if userID != "" {
		if id, ok, err := h.knownID("u:" + userID); ok || err != nil {
			return id, ok, err
		}
	}
	if anonymousID != "" {
		return h.knownID("a:" + anonymousID)
	}
	return "", false, nil
}

// findContacts looks up the contacts the batch's events need and this
// process does not know: a user identified through another router process,
// or whose contact was made outside switchyard. Custom events without an
// email are looked up by userId in id_property (with id_property email
// there is nothing to look them up by); list changes need the contact id,
// so theirs are also looked up by email. Events whose lookup fails get its
// outcome: a retry, unless HubSpot refused the lookup.
func (s *sending) findContacts(ctx context.Context) {
	h := s.h
	byUserID := h.cfg.IDProperty != "email"
	if !byUserID && len(h.cfg.Lists) == 0 {
		return // nothing could be looked up
	}
	var byUser, byEmail []string
	// waiting holds the events of each key looked up.
	waiting := map[string][]int{}
	for i, ev := range s.batch {
		if s.set[i] || !s.needsContact(ev) {
			continue
		}
		email := strings.ToLower(eventEmail(ev.Get("properties.email"), ev.Get("context.traits.email")))
		var key string
		switch {
		case email != "" && h.listEvent(ev):
			key = "e:" + email
		case email == "" && ev.UserID() != "" && byUserID:
			key = "u:" + ev.UserID()
		default:
			continue
		}
		_, ok, err := h.knownContact(ev.UserID(), ev.AnonymousID())
		if err != nil {
			s.finish(i, stateReadFailed(err))
			continue
		}
		if ok {
			continue
		}
		if events, seen := waiting[key]; seen {
			waiting[key] = append(events, i)
			continue
		}
		if key[0] == 'e' {
			_, ok, err := h.knownID(key)
			if err != nil {
				s.finish(i, stateReadFailed(err))
				continue
			}
			if ok {
				continue
			}
			byEmail = append(byEmail, email)
		} else {
			byUser = append(byUser, ev.UserID())
		}
		waiting[key] = []int{i}
	}
	s.lookUpContacts(ctx, h.cfg.IDProperty, "u:", byUser, waiting)
	s.lookUpContacts(ctx, "email", "e:", byEmail, waiting)
}

// lookUpContacts reads contacts by a unique property, 100 per call, and
// remembers their ids under prefix+value. The events waiting for the values
// of a failed call get its outcome.
func (s *sending) lookUpContacts(ctx context.Context, idProperty, prefix string, values []string, waiting map[string][]int) {
	h := s.h
	for start := 0; start < len(values); start += maxInputs {
		chunk := values[start:min(len(values), start+maxInputs)]
		fail := func(o destinations.Outcome) {
			o.Reason = "looking up contacts by " + idProperty + ": " + o.Reason
			for _, v := range chunk {
				for _, i := range waiting[prefix+v] {
					s.finish(i, o)
				}
			}
		}
		inputs := make([]map[string]string, len(chunk))
		for k, v := range chunk {
			inputs[k] = map[string]string{"id": v}
		}
		resp, err := h.call(ctx, "contacts/read", api.Standard, http.MethodPost, "/crm/v3/objects/contacts/batch/read",
			map[string]any{"idProperty": idProperty, "properties": []string{idProperty}, "inputs": inputs})
		if err != nil {
			fail(outcomeOf(err))
			continue
		}
		var res batchResult
		if err := json.Unmarshal(resp.Body, &res); err != nil {
			fail(destinations.RetryLater("response", "reading HubSpot's answer: "+err.Error(), 0))
			continue
		}
		found := map[string]string{}
		for _, r := range res.Results {
			if v := r.Properties[idProperty]; v != "" {
				if idProperty == "email" {
					v = strings.ToLower(v)
				}
				found[prefix+v] = r.ID
			}
		}
		h.rememberIDs(found)
	}
}

// needsContact tells whether a call goes to a contact it does not itself
// write: a custom event, or a list change.
func (s *sending) needsContact(ev destinations.Event) bool {
	switch ev.Type() {
	case "track":
		return true
	case "page":
		return !s.h.cfg.SkipPages
	case "screen":
		return !s.h.cfg.SkipScreens
	}
	return false
}
