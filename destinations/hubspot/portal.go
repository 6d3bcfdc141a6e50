package hubspot

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations"
)

// hubSpotField is where a HubSpot source puts what it read from HubSpot:
// hubId, objectType, objectId and properties (HubSpot property name ->
// {value, timestamp}).
const hubSpotField = "_switchyard.hubspot"

// fromThisPortal tells whether ev was read from this destination's portal
// by a HubSpot source: it carries _switchyard.hubspot and its hubId is
// Config.HubID. An event that carries it is taken as from this portal
// unless both hub ids are known and differ, since writing an event back to
// the portal it came from is what must never happen.
func (h *HubSpot) fromThisPortal(ev destinations.Event) bool {
	hs := ev.Get(hubSpotField)
	if !hs.IsObject() {
		return false
	}
	hubID := hs.Get("hubId")
	return h.cfg.HubID == 0 || !hubID.Exists() || hubID.Int() == h.cfg.HubID
}

// learn takes in an event from this portal: nothing is written to HubSpot;
// the times of its contact's or company's properties are stored under the
// record's HubSpot id, so an app event older than an edit made in HubSpot
// does not overwrite it, and the record's id is remembered under the keys
// the destination addresses it by. The outcome is Delivered, class
// from_this_portal, unless the state cannot be read or written (Retry).
func (s *sending) learn(ctx context.Context, ev destinations.Event) destinations.Outcome {
	h := s.h
	h.skip("from_this_portal")
	hs := ev.Get(hubSpotField)
	object, id := hs.Get("objectType").String(), hs.Get("objectId").String()
	said := fmt.Sprintf("from this HubSpot portal (hubId %s): nothing written back", hs.Get("hubId").Raw)
	done := func(format string, args ...any) destinations.Outcome {
		return destinations.Outcome{Result: destinations.Delivered, Class: "from_this_portal", Reason: said + "; " + fmt.Sprintf(format, args...)}
	}
	if object != "contacts" && object != "companies" {
		return done("nothing learned: %q records are not written by this destination", object)
	}
	if id == "" {
		return done("nothing learned: no objectId")
	}
	props := map[string]hubSpotValue{}
	var unreadable []string
	hs.Get("properties").ForEach(func(name, p gjson.Result) bool {
		at, ok := hubSpotTime(p.Get("timestamp"))
		if !ok {
			unreadable = append(unreadable, name.String())
			return true
		}
		props[name.String()] = hubSpotValue{value: p.Get("value").String(), at: at}
		return true
	})
	var also string
	if len(unreadable) > 0 {
		sort.Strings(unreadable)
		also = "; no time to learn for " + strings.Join(unreadable, ", ")
	}

	unlock, err := h.state.records.lock(ctx, []string{object + "\x00id:" + id})
	if err != nil {
		return destinations.RetryLater("canceled", "not learned: "+err.Error(), 0)
	}
	learned, err := h.state.learnTimes(object, id, props)
	unlock()
	if err != nil {
		return destinations.RetryLater("property_times", "storing the times of HubSpot's values: "+err.Error(), 0)
	}
	if object == "contacts" {
		ids := map[string]string{}
		if ev.UserID() != "" {
			ids["u:"+ev.UserID()] = id
		}
		email := hs.Get("properties.email.value").String()
		if email == "" {
			email = ev.Get("traits.email").String()
		}
		if email = strings.ToLower(strings.TrimSpace(email)); email != "" {
			ids["e:"+email] = id
		}
		h.rememberIDs(ids)
	}
	if len(learned) == 0 {
		return done("no newer HubSpot values to learn%s", also)
	}
	sort.Strings(learned)
	return done("learned HubSpot's times of %s%s", strings.Join(learned, ", "), also)
}

// hubSpotTime reads a property time as a HubSpot source gives it: RFC 3339
// text, or Unix milliseconds.
func hubSpotTime(r gjson.Result) (time.Time, bool) {
	switch r.Type {
	case gjson.String:
		t, err := time.Parse(time.RFC3339Nano, r.Str)
		return t, err == nil
	case gjson.Number:
		return time.UnixMilli(r.Int()), true
	}
	return time.Time{}, false
}
