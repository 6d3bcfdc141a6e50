package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
)

// The track events Segment Engage sends when a user enters or leaves an
// audience; properties.audience_key names the audience.
const (
	audienceEntered = "Audience Entered"
	audienceExited  = "Audience Exited"
)

// membership is the last change a batch asks for one contact of one list.
type membership struct {
	add bool
	at  time.Time
}

// listChanges gathers one list's membership changes within a batch.
type listChanges struct {
	byContact map[string]membership
	events    []int
}

// audiences keeps the manual HubSpot lists of Config.Lists in step with
// the batch's Audience Entered and Audience Exited tracks: each list gets
// one add-and-remove call, in which a contact's newest event by timestamp
// wins. It runs after contacts, so a contact an identify wrote earlier in
// the batch is known. Events it does not fail go on to the events phase and
// are sent as behavioral events too. Audience events whose key is not in
// Config.Lists are left to the events phase alone.
func (s *sending) audiences(ctx context.Context) {
	h := s.h
	if len(h.cfg.Lists) == 0 {
		return
	}
	lists := map[string]*listChanges{}
	for i, ev := range s.batch {
		if s.set[i] || !h.listEvent(ev) {
			continue
		}
		name := ev.Get("event").String()
		key := ev.Get("properties.audience_key").String()
		listID := h.cfg.Lists[key]
		contactID, ok, err := s.audienceContact(i)
		if err != nil {
			s.finish(i, stateReadFailed(err))
			continue
		}
		if !ok {
			s.finish(i, destinations.Dead("no_identifier", fmt.Sprintf("%s %q: no contact is known for its userId, anonymousId or email, so list %s cannot be changed; %s, then replay the dead letters", name, key, listID, h.identifyHint())))
			continue
		}
		lc := lists[listID]
		if lc == nil {
			lc = &listChanges{byContact: map[string]membership{}}
			lists[listID] = lc
		}
		at := ev.Timestamp()
		// The newest event wins; of two at the same time, the later in the
		// batch.
		if prev, seen := lc.byContact[contactID]; !seen || !at.Before(prev.at) {
			lc.byContact[contactID] = membership{add: name == audienceEntered, at: at}
		}
		lc.events = append(lc.events, i)
	}
	listIDs := make([]string, 0, len(lists))
	for id := range lists {
		listIDs = append(listIDs, id)
	}
	sort.Strings(listIDs)
	for _, listID := range listIDs {
		s.changeList(ctx, listID, lists[listID])
	}
}

// listEvent tells whether a call changes a configured list: an Audience
// Entered or Audience Exited track whose audience_key is in Config.Lists.
func (h *HubSpot) listEvent(ev destinations.Event) bool {
	if ev.Type() != "track" || len(h.cfg.Lists) == 0 {
		return false
	}
	if name := ev.Get("event").String(); name != audienceEntered && name != audienceExited {
		return false
	}
	_, ok := h.cfg.Lists[ev.Get("properties.audience_key").String()]
	return ok
}

// audienceContact finds the HubSpot contact of audience event i: by its
// userId or anonymousId, else by its email.
func (s *sending) audienceContact(i int) (string, bool, error) {
	h, ev := s.h, s.batch[i]
	if id, ok, err := h.knownContact(ev.UserID(), ev.AnonymousID()); ok || err != nil {
		return id, ok, err
	}
	if email := eventEmail(ev.Get("properties.email"), ev.Get("context.traits.email")); email != "" {
		return h.knownID("e:" + strings.ToLower(email))
	}
	return "", false, nil
}

// changeList sends one list's changes as one add-and-remove call
// ([S], [O-lists]). HubSpot accepts it only for MANUAL and SNAPSHOT lists;
// for others it answers 4xx, and the events are dead-lettered with its
// message.
func (s *sending) changeList(ctx context.Context, listID string, lc *listChanges) {
	add, remove := []string{}, []string{}
	for contactID, m := range lc.byContact {
		if m.add {
			add = append(add, contactID)
		} else {
			remove = append(remove, contactID)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	body := map[string]any{"recordIdsToAdd": add, "recordIdsToRemove": remove}
	resp, err := s.h.call(ctx, "lists/memberships", api.Standard, http.MethodPut, "/crm/v3/lists/"+url.PathEscape(listID)+"/memberships/add-and-remove", body)
	if err != nil {
		o := outcomeOf(err)
		switch {
		case o.Result == destinations.DeadLetter && o.Status == http.StatusNotFound:
			o.Class = "list_refused"
			o.Reason = fmt.Sprintf("list %s does not exist in HubSpot; check the lists configuration: %s", listID, err)
		case o.Result == destinations.DeadLetter:
			o.Class = "list_refused"
			o.Reason = fmt.Sprintf("HubSpot refused the change to list %s (only MANUAL and SNAPSHOT lists accept changes): %s", listID, err)
		}
		for _, i := range lc.events {
			s.finish(i, o)
		}
		return
	}
	// Ids HubSpot does not know as contacts are ignored and reported; the
	// event is delivered, but the note says the list was not changed.
	var res struct {
		RecordIDsMissing []string `json:"recordIdsMissing"`
	}
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		for _, i := range lc.events {
			s.note(i, "list %s changed, but HubSpot's answer could not be read: %v", listID, err)
		}
		return
	}
	if len(res.RecordIDsMissing) == 0 {
		return
	}
	missing := map[string]bool{}
	for _, id := range res.RecordIDsMissing {
		missing[id] = true
	}
	for _, i := range lc.events {
		if id, ok, err := s.audienceContact(i); err == nil && ok && missing[id] {
			s.note(i, "list %s unchanged: HubSpot has no contact %s", listID, id)
		}
	}
}
