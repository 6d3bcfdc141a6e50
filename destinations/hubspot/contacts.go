package hubspot

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
)

// contacts writes the contact updates of the batch: identify traits, and a
// track's context.traits and properties.email.
func (s *sending) contacts(ctx context.Context) {
	h := s.h
	byKey := map[string]*input{}
	var order []*input
	users := map[*input][]int{}
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
				traits = withEmail(traits, email.Str)
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
			if cid, ok := h.knownContact(ev.UserID(), ev.AnonymousID()); ok {
				key, id = "id:"+cid, cid
			} else if ev.Type() == "identify" {
				s.finish(i, deadNoIdentifier(h.cfg.IDProperty))
				continue
			} else {
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
		users[in] = append(users[in], i)
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
		for _, i := range users[in] {
			ev := s.batch[i]
			if ev.UserID() != "" {
				learned["u:"+ev.UserID()] = contactID
			}
			if ev.AnonymousID() != "" {
				learned["a:"+ev.AnonymousID()] = contactID
			}
			s.associatePending(ev.UserID(), ev.AnonymousID(), contactID, i)
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

// withEmail returns traits with email set, as JSON.
func withEmail(traits gjson.Result, email string) gjson.Result {
	m := map[string]any{}
	if traits.IsObject() {
		for k, v := range traits.Map() {
			m[k] = v.Value()
		}
	}
	if _, ok := m["email"]; !ok {
		m["email"] = email
	}
	raw, _ := json.Marshal(m) // values came from JSON
	return gjson.ParseBytes(raw)
}

// knownContact returns the contact id written for a user, by userId, else
// by anonymousId.
func (h *HubSpot) knownContact(userID, anonymousID string) (string, bool) {
	if userID != "" {
		if id, ok := h.knownID("u:" + userID); ok {
			return id, true
		}
	}
	if anonymousID != "" {
		return h.knownID("a:" + anonymousID)
	}
	return "", false
}
