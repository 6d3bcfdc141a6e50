package hubspot

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
)

// Association limits ([O-assoc], [S]). The default-association batch has no
// documented figure: it is capped at 100 to be safe.
const (
	sbMaxAssocDefault = 100
	sbMaxAssocRead    = 1000
	sbMaxAssocCreate  = 2000
	sbMaxAssocPage    = 500
)

// sbAssocKey is one direction of a link between two records.
type sbAssocKey struct {
	from   string
	fromID int64
	to     string
	toID   int64
}

// sbAssocType is an association type: category and type id ([O-assoc]).
type sbAssocType struct {
	Category string
	ID       int
}

// sbDefaultType is the unlabelled type from one object type to another ([O-assoc]).
func sbDefaultType(from, to string) int {
	switch {
	case from == "contacts" && to == "companies":
		return 279
	case from == "companies" && to == "contacts":
		return 280
	case from == "contacts" && to == "contacts":
		return 449
	default:
		return 450
	}
}

// sbInverseTypes pairs HubSpot-defined types with their other direction ([O-assoc]).
var sbInverseTypes = map[int]int{279: 280, 280: 279, 1: 2, 2: 1, 931: 930, 930: 931, 4: 3, 3: 4, 449: 449, 450: 450}

var sbTypeLabels = map[int]string{1: "Primary", 2: "Primary", 931: "Billing contact", 930: "Billing contact"}

// link records an association in both directions. Callers hold s.mu.
func (s *Sandbox) link(from string, fromID int64, to string, toID int64, t sbAssocType) {
	add := func(k sbAssocKey, t sbAssocType) {
		if s.assocs[k] == nil {
			s.assocs[k] = map[int]bool{}
		}
		s.assocs[k][t.ID] = true
	}
	add(sbAssocKey{from, fromID, to, toID}, t)
	inv := t
	if id, ok := sbInverseTypes[t.ID]; ok && t.Category == "HUBSPOT_DEFINED" {
		inv.ID = id
	}
	add(sbAssocKey{to, toID, from, fromID}, inv)
}

// SandboxAssociation is one direction of an association between two records.
type SandboxAssociation struct {
	FromType string `json:"fromObjectType"`
	FromID   string `json:"fromObjectId"`
	ToType   string `json:"toObjectType"`
	ToID     string `json:"toObjectId"`
	TypeIDs  []int  `json:"associationTypeIds"`
}

// Associations returns every association in both directions, ordered by
// from type, from id, to type and to id.
func (s *Sandbox) Associations() []SandboxAssociation {
	s.mu.Lock()
	keys := make([]sbAssocKey, 0, len(s.assocs))
	types := make(map[sbAssocKey][]int, len(s.assocs))
	for k, m := range s.assocs {
		keys = append(keys, k)
		for id := range m {
			types[k] = append(types[k], id)
		}
		sort.Ints(types[k])
	}
	s.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.from != b.from {
			return a.from < b.from
		}
		if a.fromID != b.fromID {
			return a.fromID < b.fromID
		}
		if a.to != b.to {
			return a.to < b.to
		}
		return a.toID < b.toID
	})
	out := []SandboxAssociation{}
	for _, k := range keys {
		out = append(out, SandboxAssociation{
			FromType: k.from, FromID: strconv.FormatInt(k.fromID, 10),
			ToType: k.to, ToID: strconv.FormatInt(k.toID, 10), TypeIDs: types[k],
		})
	}
	return out
}

func (s *Sandbox) assocTypes(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	from, ok := s.objectTypeOrFail(w, r, "fromType")
	if !ok {
		return "", "", false
	}
	to, ok := s.objectTypeOrFail(w, r, "toType")
	return from, to, ok
}

// recordID parses id and reports whether it names a record of typ. Callers hold s.mu.
func (s *Sandbox) recordID(typ, id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, false
	}
	_, ok := s.objects[typ].byID[n]
	return n, ok
}

type sbIDRef struct {
	ID string `json:"id"`
}

type sbAssocSpec struct {
	AssociationCategory string `json:"associationCategory"`
	AssociationTypeID   int    `json:"associationTypeId"`
}

type sbAssocResult struct {
	From            sbIDRef     `json:"from"`
	To              sbIDRef     `json:"to"`
	AssociationSpec sbAssocSpec `json:"associationSpec"`
}

type sbAssocBatchOut struct {
	Status      string          `json:"status"`
	Results     []sbAssocResult `json:"results"`
	NumErrors   int             `json:"numErrors,omitempty"`
	Errors      []*sbError      `json:"errors,omitempty"`
	StartedAt   string          `json:"startedAt"`
	CompletedAt string          `json:"completedAt"`
}

type sbAssocInput struct {
	From  sbIDRef       `json:"from"`
	To    sbIDRef       `json:"to"`
	Types []sbAssocSpec `json:"types"`
}

// handleAssociateDefault links pairs of records with the unlabelled type
// ([O-assoc]). Pairs naming a missing record are reported in a 207; the
// others are linked.
func (s *Sandbox) handleAssociateDefault(w http.ResponseWriter, r *http.Request) {
	s.associateBatch(w, r, false)
}

// handleAssociateCreate links pairs of records with the given types ([O-assoc]).
func (s *Sandbox) handleAssociateCreate(w http.ResponseWriter, r *http.Request) {
	s.associateBatch(w, r, true)
}

func (s *Sandbox) associateBatch(w http.ResponseWriter, r *http.Request, labelled bool) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	var body struct {
		Inputs []sbAssocInput `json:"inputs"`
	}
	if !sbDecode(w, r, &body) {
		return
	}
	limit := sbMaxAssocDefault
	if labelled {
		limit = sbMaxAssocCreate
	}
	if len(body.Inputs) > limit {
		sbFail(w, sbBatchTooLarge(len(body.Inputs), limit))
		return
	}
	if labelled {
		for _, in := range body.Inputs {
			if len(in.Types) == 0 {
				sbFail(w, sbNewError("VALIDATION_ERROR", "Each input needs at least one association type"))
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := sbAssocBatchOut{Status: "COMPLETE", Results: []sbAssocResult{}, StartedAt: sbTime(s.cfg.Now())}
	for _, in := range body.Inputs {
		fromID, ok1 := s.recordID(from, in.From.ID)
		toID, ok2 := s.recordID(to, in.To.ID)
		if !ok1 || !ok2 {
			e := sbNewError("OBJECT_NOT_FOUND", fmt.Sprintf("Could not associate %s %s with %s %s: a record does not exist", from, in.From.ID, to, in.To.ID))
			e.Context = map[string][]string{"fromObjectId": {in.From.ID}, "toObjectId": {in.To.ID}}
			out.Errors = append(out.Errors, e)
			continue
		}
		types := []sbAssocType{{"HUBSPOT_DEFINED", sbDefaultType(from, to)}}
		if labelled {
			types = types[:0]
			for _, t := range in.Types {
				types = append(types, sbAssocType{t.AssociationCategory, t.AssociationTypeID})
			}
		}
		for _, t := range types {
			s.link(from, fromID, to, toID, t)
			out.Results = append(out.Results, sbAssocResult{From: in.From, To: in.To, AssociationSpec: sbAssocSpec{t.Category, t.ID}})
			inv := t.ID
			if id, ok := sbInverseTypes[t.ID]; ok && t.Category == "HUBSPOT_DEFINED" {
				inv = id
			}
			out.Results = append(out.Results, sbAssocResult{From: in.To, To: in.From, AssociationSpec: sbAssocSpec{t.Category, inv}})
		}
	}
	out.NumErrors = len(out.Errors)
	out.CompletedAt = sbTime(s.cfg.Now())
	status := http.StatusOK
	if labelled {
		status = http.StatusCreated
	}
	if out.NumErrors > 0 {
		status = http.StatusMultiStatus
	}
	sbWriteJSON(w, status, out)
}

// handleAssociateOneDefault is PUT .../associations/default/{toType}/{toId} ([O-assoc]).
func (s *Sandbox) handleAssociateOneDefault(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fromID, ok1 := s.recordID(from, r.PathValue("fromId"))
	toID, ok2 := s.recordID(to, r.PathValue("toId"))
	if !ok1 || !ok2 {
		sbWriteError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	t := sbAssocType{"HUBSPOT_DEFINED", sbDefaultType(from, to)}
	s.link(from, fromID, to, toID, t)
	sbWriteJSON(w, http.StatusOK, sbAssocBatchOut{
		Status:      "COMPLETE",
		Results:     []sbAssocResult{{From: sbIDRef{r.PathValue("fromId")}, To: sbIDRef{r.PathValue("toId")}, AssociationSpec: sbAssocSpec{t.Category, t.ID}}},
		StartedAt:   sbTime(s.cfg.Now()),
		CompletedAt: sbTime(s.cfg.Now()),
	})
}

type sbAssocTypeOut struct {
	Category string  `json:"category"`
	TypeID   int     `json:"typeId"`
	Label    *string `json:"label"`
}

type sbAssocTo struct {
	ToObjectID       int64            `json:"toObjectId"`
	AssociationTypes []sbAssocTypeOut `json:"associationTypes"`
}

// targets lists the records linked from one record to a type, by id. Callers hold s.mu.
func (s *Sandbox) targets(from string, fromID int64, to string) []sbAssocTo {
	var out []sbAssocTo
	for k, types := range s.assocs {
		if k.from != from || k.fromID != fromID || k.to != to {
			continue
		}
		t := sbAssocTo{ToObjectID: k.toID}
		ids := make([]int, 0, len(types))
		for id := range types {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids {
			cat := "HUBSPOT_DEFINED"
			if _, ok := sbInverseTypes[id]; !ok {
				cat = "USER_DEFINED"
			}
			var label *string
			if l, ok := sbTypeLabels[id]; ok {
				label = &l
			}
			t.AssociationTypes = append(t.AssociationTypes, sbAssocTypeOut{cat, id, label})
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ToObjectID < out[j].ToObjectID })
	return out
}

// handleAssociationsBatchRead reads the associations of up to 1,000 records ([O-assoc]).
func (s *Sandbox) handleAssociationsBatchRead(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	var body struct {
		Inputs []sbIDRef `json:"inputs"`
	}
	if !sbDecode(w, r, &body) {
		return
	}
	if len(body.Inputs) > sbMaxAssocRead {
		sbFail(w, sbBatchTooLarge(len(body.Inputs), sbMaxAssocRead))
		return
	}
	type result struct {
		From sbIDRef     `json:"from"`
		To   []sbAssocTo `json:"to"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := struct {
		Status      string     `json:"status"`
		Results     []result   `json:"results"`
		NumErrors   int        `json:"numErrors,omitempty"`
		Errors      []*sbError `json:"errors,omitempty"`
		StartedAt   string     `json:"startedAt"`
		CompletedAt string     `json:"completedAt"`
	}{Status: "COMPLETE", Results: []result{}, StartedAt: sbTime(s.cfg.Now())}
	for _, in := range body.Inputs {
		id, ok := s.recordID(from, in.ID)
		var ts []sbAssocTo
		if ok {
			ts = s.targets(from, id, to)
		}
		if len(ts) == 0 {
			e := sbNewError("OBJECT_NOT_FOUND", fmt.Sprintf("No %s is associated with %s %s.", sbSingularLower(to), sbSingularLower(from), in.ID))
			e.Context = map[string][]string{"fromObjectId": {in.ID}}
			out.Errors = append(out.Errors, e)
			continue
		}
		out.Results = append(out.Results, result{From: in, To: ts})
	}
	out.NumErrors = len(out.Errors)
	out.CompletedAt = sbTime(s.cfg.Now())
	status := http.StatusOK
	if out.NumErrors > 0 {
		status = http.StatusMultiStatus
	}
	sbWriteJSON(w, status, out)
}

func sbSingularLower(typ string) string {
	if typ == "companies" {
		return "company"
	}
	return "contact"
}

// handleAssociationsList pages a record's associations, 500 per page at
// most ([S]); after is the last toObjectId of the previous page.
func (s *Sandbox) handleAssociationsList(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, err := sbIntParam(q.Get("limit"), sbMaxAssocPage)
	if err != nil || limit < 1 {
		sbFail(w, sbNewError("VALIDATION_ERROR", "limit must be a positive integer"))
		return
	}
	limit = min(limit, sbMaxAssocPage)
	after := int64(0)
	if a := q.Get("after"); a != "" {
		if after, err = strconv.ParseInt(a, 10, 64); err != nil {
			sbFail(w, sbNewError("VALIDATION_ERROR", "after must be the paging.next.after of a previous page"))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.recordID(from, r.PathValue("fromId"))
	if !ok {
		sbWriteError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	results := []sbAssocTo{}
	var next *sbPaging
	for _, t := range s.targets(from, id, to) {
		if t.ToObjectID <= after {
			continue
		}
		if len(results) == limit {
			last := strconv.FormatInt(results[len(results)-1].ToObjectID, 10)
			next = &sbPaging{Next: sbNext{After: last, Link: r.URL.Path + "?after=" + last}}
			break
		}
		results = append(results, t)
	}
	sbWriteJSON(w, http.StatusOK, struct {
		Results []sbAssocTo `json:"results"`
		Paging  *sbPaging   `json:"paging,omitempty"`
	}{results, next})
}
