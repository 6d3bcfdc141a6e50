package sandbox

import "net/http"

// handleArchive is DELETE /crm/v3/objects/{objectType}/{objectId}: the
// record goes to the recycling bin ([O-contacts], [O-kb-restore], §5 of
// hubspot-source.md). Reads, search and associations no longer see it, list
// with archived=true does, and its modified dates stay as they were
// ([C-19838]: archiving does not bump hs_lastmodifieddate). 204, and 404 for
// an unknown record.
func (s *Server) handleArchive(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.findRecord(typ, "", r.PathValue("objectId"))
	if rec == nil {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	now := s.cfg.Now()
	objs := s.objects[typ]
	objs.remove(rec)
	rec.archivedAt = now
	objs.archived[rec.id] = rec
	s.record(s.apiOrigin(r), Change{Kind: ChangeDeletion, ObjectType: typ, ObjectID: rec.id, OccurredAt: now})
	w.WriteHeader(http.StatusNoContent)
}

// handleGDPRDelete is POST /crm/v3/objects/contacts/gdpr-delete with
// {"objectId":"…","idProperty":"email"?}: the contact is deleted for good,
// with its associations, at once and without a stay in the recycling bin
// ([S-crm], [O-kb-permdelete]). It is journaled as a privacyDeletion and a
// deletion, as HubSpot sends both notifications ([O24-wh]). 204; an email
// that matches no contact is also 204 ("the email address will be added to
// a blocklist", [S-crm]); an unknown id is 404.
func (s *Server) handleGDPRDelete(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ObjectID   string `json:"objectId"`
		IDProperty string `json:"idProperty"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.ObjectID == "" {
		fail(w, newError("VALIDATION_ERROR", "objectId is required"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if body.IDProperty != "" && body.IDProperty != "hs_object_id" && !s.props["contacts"].isUnique("contacts", body.IDProperty) {
		fail(w, s.nonUniqueError("contacts", body.IDProperty))
		return
	}
	rec := s.findRecord("contacts", body.IDProperty, body.ObjectID)
	if rec == nil {
		if body.IDProperty == "email" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	now := s.cfg.Now()
	s.purge("contacts", rec)
	o := s.apiOrigin(r)
	s.record(o, Change{Kind: ChangePrivacyDeletion, ObjectType: "contacts", ObjectID: rec.id, OccurredAt: now})
	s.record(o, Change{Kind: ChangeDeletion, ObjectType: "contacts", ObjectID: rec.id, OccurredAt: now})
	w.WriteHeader(http.StatusNoContent)
}

// remove takes a live record out of byID and frees its unique values.
func (o *objects) remove(rec *record) {
	for prop, idx := range o.unique {
		if v, ok := rec.props[prop]; ok && idx[uniqueKey(prop, v)] == rec.id {
			delete(idx, uniqueKey(prop, v))
		}
	}
	delete(o.byID, rec.id)
}

// purge deletes a record for good: the record, its associations, its list
// memberships and the ids merged into it. Callers hold s.mu.
func (s *Server) purge(typ string, rec *record) {
	objs := s.objects[typ]
	objs.remove(rec)
	for old, into := range objs.mergedInto {
		if into == rec.id {
			delete(objs.mergedInto, old)
		}
	}
	for k := range s.assocs {
		if k.from == typ && k.fromID == rec.id || k.to == typ && k.toID == rec.id {
			delete(s.assocs, k)
		}
	}
	for _, l := range s.lists {
		if l.objectTypeID == objectTypeIDs[typ] {
			delete(l.members, rec.id)
		}
	}
}
