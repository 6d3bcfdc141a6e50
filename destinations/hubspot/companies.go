package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/transforms"
)

// companies writes the companies of the batch's group calls and associates
// each group's user with its company.
func (s *sending) companies(ctx context.Context) {
	h := s.h
	byKey := map[string]*input{}
	var order []*input
	for i, ev := range s.batch {
		if s.set[i] || ev.Type() != "group" {
			continue
		}
		props, err := s.mapProperties(ctx, "companies", ev.Get("traits"), []int{i})
		if err != nil {
			s.finish(i, outcomeOf(err))
			continue
		}
		var key string
		var in *input
		switch domain := props["domain"]; {
		case domain != "":
			key = "d:" + domain
		case h.cfg.CompanyIDProperty != "":
			key = "g:" + ev.Get("groupId").String()
		default:
			s.finish(i, destinations.Dead("no_identifier", "group has no website or domain trait to find the company by, and no company_id_property is configured to match companies by groupId"))
			continue
		}
		if in = byKey[key]; in == nil {
			in = &input{key: key, keyProperty: "domain", props: map[string]string{}, newest: map[string]time.Time{}}
			if key[0] == 'g' {
				in.keyProperty, in.idProperty, in.id = h.cfg.CompanyIDProperty, h.cfg.CompanyIDProperty, key[2:]
			}
			byKey[key] = in
			order = append(order, in)
		}
		in.merge(props, ev.Timestamp())
		in.events = append(in.events, i)
	}

	// Companies found by domain: the cache, else one search each, which
	// finds a company made before switchyard wrote the domain. A domain no
	// company has yet, or that search does not see yet, is upserted by
	// switchyard_domain: HubSpot makes that company once, however many
	// batches or processes write the domain at the same time.
	var updates, upserts []*input
	var propertyReady *destinations.Outcome
	for _, in := range order {
		if in.idProperty != "" {
			upserts = append(upserts, in)
			continue
		}
		domain := in.props["domain"]
		id, ok, err := h.knownID("d:" + domain)
		if err != nil {
			for _, i := range in.events {
				s.finish(i, stateReadFailed(err))
			}
			continue
		}
		if !ok {
			found, err := h.findCompany(ctx, domain)
			if err != nil {
				for _, i := range in.events {
					s.finish(i, outcomeOf(err))
				}
				continue
			}
			id = found
		}
		if id != "" {
			h.rememberIDs(map[string]string{"d:" + domain: id})
			in.id = id
			updates = append(updates, in)
			continue
		}
		if propertyReady == nil {
			o := h.ensureDomainProperty(ctx)
			propertyReady = &o
		}
		if propertyReady.Result != destinations.Delivered {
			for _, i := range in.events {
				s.finish(i, *propertyReady)
			}
			continue
		}
		in.idProperty, in.id = domainProperty, domain
		upserts = append(upserts, in)
	}
	done := func(in *input, companyID string) {
		learned := map[string]string{}
		if d := in.props["domain"]; d != "" {
			learned["d:"+d] = companyID
		}
		if in.key[0] == 'g' {
			learned[in.key] = companyID
		}
		h.rememberIDs(learned)
		for _, i := range in.events {
			s.associate(ctx, s.batch[i].UserID(), s.batch[i].AnonymousID(), companyID, i)
		}
	}
	s.write(ctx, "companies", "update", updates, done)
	s.write(ctx, "companies", "upsert", upserts, done)
}

// domainProperty is the company property switchyard upserts companies by,
// holding their domain. HubSpot's own domain property is not unique, so it
// cannot be an upsert's idProperty ([C-nonunique]); a property created with
// hasUniqueValue can ([O-props]).
const domainProperty = "switchyard_domain"

// ensureDomainProperty makes sure the portal has domainProperty with unique
// values, creating it in the switchyard group. It returns Ok when it does,
// else the outcome of the events that need it.
func (h *HubSpot) ensureDomainProperty(ctx context.Context) destinations.Outcome {
	h.mu.Lock()
	ready := h.domainPropertyReady
	h.mu.Unlock()
	if ready {
		return destinations.Ok()
	}
	resp, err := h.call(ctx, "properties/read", api.Standard, http.MethodGet, "/crm/v3/properties/companies/"+domainProperty, nil)
	var re *api.RequestError
	switch {
	case err == nil:
		if !gjson.GetBytes(resp.Body, "hasUniqueValue").Bool() {
			return destinations.Dead("domain_property", "the company property "+domainProperty+" exists without unique values (hasUniqueValue), "+
				"so companies cannot be upserted by it: delete it in HubSpot and switchyard creates it again with unique values")
		}
	case errors.As(err, &re) && re.Status == http.StatusNotFound:
		if err := h.ensureGroup(ctx, "companies"); err != nil {
			return outcomeOf(err)
		}
		body := map[string]any{"name": domainProperty, "label": "Domain (switchyard)", "type": transforms.TypeString, "fieldType": transforms.FieldText,
			"groupName": "switchyard", "hasUniqueValue": true,
			"description": "The company's domain, unique: switchyard finds the company by it, so one domain is one company."}
		if _, err := h.call(ctx, "properties/create", api.Standard, http.MethodPost, "/crm/v3/properties/companies", body); err != nil && !isConflict(err) {
			return outcomeOf(fmt.Errorf("creating the company property %s: %w", domainProperty, err))
		}
	default:
		return outcomeOf(err)
	}
	h.mu.Lock()
	h.domainPropertyReady = true
	h.mu.Unlock()
	return destinations.Ok()
}

// findCompany searches a company by its domain; "" when there is none.
func (h *HubSpot) findCompany(ctx context.Context, domain string) (string, error) {
	body := map[string]any{
		"filterGroups": []any{map[string]any{"filters": []any{map[string]any{"propertyName": "domain", "operator": "EQ", "value": domain}}}},
		"sorts":        []any{map[string]any{"propertyName": "createdate", "direction": "ASCENDING"}},
		"properties":   []string{"domain"},
		"limit":        1,
	}
	resp, err := h.call(ctx, "companies/search", api.Search, http.MethodPost, "/crm/v3/objects/companies/search", body)
	if err != nil {
		return "", err
	}
	var res struct {
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		return "", err
	}
	if len(res.Results) == 0 {
		return "", nil
	}
	return res.Results[0].ID, nil
}

// associate links a group's user with the company now, when the user's
// contact is known, or as soon as it is.
func (s *sending) associate(ctx context.Context, userID, anonymousID, companyID string, event int) {
	h := s.h
	contactID, ok, err := h.knownContact(userID, anonymousID)
	if err != nil {
		s.finish(event, stateReadFailed(err))
		return
	}
	if !ok {
		// The user is known by userId, else by anonymousId, as in the log.
		user, who := "u:"+userID, "user "+userID
		if userID == "" {
			user, who = "a:"+anonymousID, "anonymous user "+anonymousID
		}
		if err := h.state.addPending(user, companyID); err != nil {
			s.finish(event, destinations.RetryLater("state", "storing the association waiting for the contact: "+err.Error(), 0))
			return
		}
		s.note(event, "the company will be associated with %s's contact once HubSpot knows it", who)
		return
	}
	s.links = append(s.links, link{contactID: contactID, companyID: companyID, events: []int{event}})
}

// associatePending queues the associations that waited for a user's
// contact ("u:"+userId or "a:"+anonymousId), made for that user's events.
// They stay stored until made, so a crash before the call loses none.
func (s *sending) associatePending(user, contactID string, events []int) {
	companies, err := s.h.state.pending(user)
	if err != nil {
		for _, i := range events {
			s.finish(i, destinations.RetryLater("state", "reading the associations waiting for the contact: "+err.Error(), 0))
		}
		return
	}
	for _, companyID := range companies {
		s.links = append(s.links, link{contactID: contactID, companyID: companyID, events: events, waiting: user})
	}
}

// link is one contact-to-company association to make, and the events it
// is made for.
type link struct {
	contactID, companyID string
	events               []int
	// waiting is the user ("u:"+userId or "a:"+anonymousId) when the
	// association waited for the contact: it is forgotten once made or
	// given up.
	waiting string
}

// flushLinks makes the batch's associations, up to 100 per call.
func (s *sending) flushLinks(ctx context.Context) {
	h := s.h
	for start := 0; start < len(s.links); start += maxInputs {
		chunk := s.links[start:min(len(s.links), start+maxInputs)]
		inputs := make([]any, len(chunk))
		for k, l := range chunk {
			inputs[k] = map[string]any{"from": map[string]string{"id": l.contactID}, "to": map[string]string{"id": l.companyID}}
		}
		_, err := h.call(ctx, "associations/default", api.Standard, http.MethodPost,
			"/crm/v4/associations/contacts/companies/batch/associate/default", map[string]any{"inputs": inputs})
		var done [][2]string
		var o destinations.Outcome
		if err != nil {
			o = outcomeOf(err)
		}
		for _, l := range chunk {
			switch {
			case err == nil:
			case l.waiting != "" && o.Result != destinations.Retry:
				// The identify that resolved it is delivered; the association
				// is given up with a note rather than failing the contact.
				for _, i := range l.events {
					s.note(i, "associating contact %s with company %s failed: %s", l.contactID, l.companyID, o.Reason)
				}
			default:
				for _, i := range l.events {
					s.finish(i, o) // a waiting association stays stored for the retry
				}
				continue
			}
			if l.waiting != "" {
				done = append(done, [2]string{l.waiting, l.companyID})
			}
		}
		if err := h.state.removePending(done); err != nil {
			h.log.Warn("forgetting associations made", zap.Error(err))
		}
	}
}
