package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// editBody is an edit made in HubSpot's UI: property values, and records to
// associate the record with (the default association type).
type editBody struct {
	Properties   map[string]json.RawMessage `json:"properties"`
	Associations []struct {
		ToObjectType string `json:"toObjectType"`
		ToObjectID   string `json:"toObjectId"`
	} `json:"associations"`
}

// handleCtlEdit is POST /_sandbox/edit/{objectType} and
// /_sandbox/edit/{objectType}/{objectId}: a person creates or changes a
// record in HubSpot's UI. The values are checked as an API write's are, the
// modified dates stamped, and each change journaled with changeSource
// CRM_UI and sourceId "userId:N" ([O24-wh], [C-prismatic]). It answers the
// record with every property it has: 201 for a creation, 200 for a change,
// 404 for an unknown record.
func (s *Server) handleCtlEdit(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	var body editBody
	if !decode(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := writeInput{Properties: body.Properties}
	mode := create
	if id := r.PathValue("objectId"); id != "" {
		rec := s.findRecord(typ, "", id)
		if rec == nil {
			writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found. No "+singularLower(typ)+" with id "+id, nil)
			return
		}
		in.ID, mode = strconv.FormatInt(rec.id, 10), update
	}
	type link struct {
		to string
		id int64
	}
	var links []link
	for _, a := range body.Associations {
		to, ok := canonicalType(a.ToObjectType)
		if !ok {
			fail(w, newError("VALIDATION_ERROR", "Unable to infer object type from: "+a.ToObjectType))
			return
		}
		rec := s.findRecord(to, "", a.ToObjectID)
		if rec == nil {
			writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("Object not found. No %s with id %s", singularLower(to), a.ToObjectID), nil)
			return
		}
		links = append(links, link{to, rec.id})
	}
	p, e := s.planWrite(typ, mode, &in, map[string]map[string]int64{})
	if e == nil {
		e = p.err
	}
	if e != nil {
		fail(w, e)
		return
	}
	o := s.uiOrigin()
	rec, created := s.applyPlan(s.objects[typ], &p, s.cfg.Now(), o)
	for _, l := range links {
		s.link(typ, rec.id, l.to, l.id, assocType{"HUBSPOT_DEFINED", defaultType(typ, l.to)}, o)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, recordOut(rec, nil))
}

// handleCtlChanges is GET /_sandbox/changes?from=N: the change journal's
// entries from position N (default 0), and next, the N for later ones.
func (s *Server) handleCtlChanges(w http.ResponseWriter, r *http.Request) {
	from := 0
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "from must be a non-negative integer", nil)
			return
		}
		from = n
	}
	changes, next := s.Changes(from)
	if changes == nil {
		changes = []Change{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": changes, "next": next})
}
