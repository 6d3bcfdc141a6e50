package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Association limits ([O-assoc], [S]). The default-association batch has no
// documented figure: it is capped at 100 to be safe.
const (
	maxAssocDefault = 100
	maxAssocRead    = 1000
	maxAssocCreate  = 2000
	maxAssocPage    = 500
)

// assocKey is one direction of a link between two records.
type assocKey struct {
	from   string
	fromID int64
	to     string
	toID   int64
}

// assocType is an association type: category and type id ([O-assoc]).
type assocType struct {
	Category string
	ID       int
}

// defaultType is the unlabelled type from one object type to another ([O-assoc]).
func defaultType(from, to string) int {
	switch {
	case from == "contacts" && to == "companies":
		return 279
	case from == "companies" && to == "contacts":
		return 280
	case from == "contacts" && to == "contacts":
		return 449
	case from == "deals" && to == "contacts":
		return 3
	case from == "contacts" && to == "deals":
		return 4
	case from == "deals" && to == "companies":
		return 341
	case from == "companies" && to == "deals":
		return 342
	case from == "deals" && to == "deals":
		return 451
	default:
		return 450
	}
}

// inverseTypes pairs HubSpot-defined types with their other direction ([O-assoc]).
var inverseTypes = map[int]int{279: 280, 280: 279, 1: 2, 2: 1, 931: 930, 930: 931, 4: 3, 3: 4, 449: 449, 450: 450,
	341: 342, 342: 341, 5: 6, 6: 5, 451: 451}

var typeLabels = map[int]string{1: "Primary", 2: "Primary", 5: "Primary", 6: "Primary", 931: "Billing contact", 930: "Billing contact"}

// link records an association in both directions and journals each side
// that is new, as HubSpot sends an associationChange for each side
// ([O24-wh]). Callers hold s.mu.
func (s *Server) link(from string, fromID int64, to string, toID int64, t assocType, o origin) {
	add := func(k assocKey, t assocType) {
		if s.assocs[k] == nil {
			s.assocs[k] = map[int]bool{}
		}
		if s.assocs[k][t.ID] {
			return
		}
		s.assocs[k][t.ID] = true
		s.record(o, Change{Kind: ChangeAssociationChange, ObjectType: k.from, ObjectID: k.fromID,
			ToObjectType: k.to, ToObjectID: k.toID, AssociationType: associationTypeName(k.from, k.to),
			AssociationTypeID: t.ID, IsPrimaryAssociation: primaryTypes[t.ID]})
	}
	add(assocKey{from, fromID, to, toID}, t)
	inv := t
	if id, ok := inverseTypes[t.ID]; ok && t.Category == "HUBSPOT_DEFINED" {
		inv.ID = id
	}
	add(assocKey{to, toID, from, fromID}, inv)
}

// Association is one direction of an association between two records.
type Association struct {
	FromType string `json:"fromObjectType"`
	FromID   string `json:"fromObjectId"`
	ToType   string `json:"toObjectType"`
	ToID     string `json:"toObjectId"`
	TypeIDs  []int  `json:"associationTypeIds"`
}

// Associations returns every association in both directions, ordered by
// from type, from id, to type and to id.
func (s *Server) Associations() []Association {
	s.mu.Lock()
	keys := make([]assocKey, 0, len(s.assocs))
	types := make(map[assocKey][]int, len(s.assocs))
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
	out := []Association{}
	for _, k := range keys {
		out = append(out, Association{
			FromType: k.from, FromID: strconv.FormatInt(k.fromID, 10),
			ToType: k.to, ToID: strconv.FormatInt(k.toID, 10), TypeIDs: types[k],
		})
	}
	return out
}

func (s *Server) assocTypes(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	from, ok := s.objectTypeOrFail(w, r, "fromType")
	if !ok {
		return "", "", false
	}
	to, ok := s.objectTypeOrFail(w, r, "toType")
	return from, to, ok
}

// recordID parses id and reports whether it names a record of typ. Callers hold s.mu.
func (s *Server) recordID(typ, id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, false
	}
	_, ok := s.objects[typ].byID[n]
	return n, ok
}

type idRef struct {
	ID string `json:"id"`
}

type assocSpec struct {
	AssociationCategory string `json:"associationCategory"`
	AssociationTypeID   int    `json:"associationTypeId"`
}

type assocResult struct {
	From            idRef     `json:"from"`
	To              idRef     `json:"to"`
	AssociationSpec assocSpec `json:"associationSpec"`
}

// labelsPair is a result of batch/create: hubspot-api-client 12.0.0's
// LabelsBetweenObjectPair requires fromObjectTypeId, fromObjectId,
// toObjectTypeId, toObjectId (all strings) and labels, the labels of the
// types created (an unlabelled type adds none).
type labelsPair struct {
	FromObjectTypeID string   `json:"fromObjectTypeId"`
	FromObjectID     string   `json:"fromObjectId"`
	ToObjectTypeID   string   `json:"toObjectTypeId"`
	ToObjectID       string   `json:"toObjectId"`
	Labels           []string `json:"labels"`
}

// assocBatchOut is a batch associations answer: Results holds assocResults
// (hubspot-api-client 12.0.0 PublicDefaultAssociation) for the default
// associations and labelsPairs for batch/create.
type assocBatchOut struct {
	Status      string          `json:"status"`
	Results     []any           `json:"results"`
	NumErrors   int             `json:"numErrors,omitempty"`
	Errors      []standardError `json:"errors,omitempty"`
	StartedAt   string          `json:"startedAt"`
	CompletedAt string          `json:"completedAt"`
}

type assocInput struct {
	From  idRef       `json:"from"`
	To    idRef       `json:"to"`
	Types []assocSpec `json:"types"`
}

// handleAssociateDefault links pairs of records with the unlabelled type
// ([O-assoc]). Pairs naming a missing record are reported in the 200's
// errors; the others are linked.
func (s *Server) handleAssociateDefault(w http.ResponseWriter, r *http.Request) {
	s.associateBatch(w, r, false)
}

// handleAssociateCreate links pairs of records with the given types ([O-assoc]).
func (s *Server) handleAssociateCreate(w http.ResponseWriter, r *http.Request) {
	s.associateBatch(w, r, true)
}

func (s *Server) associateBatch(w http.ResponseWriter, r *http.Request, labelled bool) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	limit := maxAssocDefault
	if labelled {
		limit = maxAssocCreate
	}
	inputs, ok := decodeInputs[assocInput](w, r, limit)
	if !ok {
		return
	}
	if labelled {
		for _, in := range inputs {
			if len(in.Types) == 0 {
				fail(w, newError("VALIDATION_ERROR", "Each input needs at least one association type"))
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := assocBatchOut{Status: "COMPLETE", Results: []any{}, StartedAt: formatTime(s.cfg.Now())}
	for _, in := range inputs {
		fromID, ok1 := s.recordID(from, in.From.ID)
		toID, ok2 := s.recordID(to, in.To.ID)
		if !ok1 || !ok2 {
			e := newError("OBJECT_NOT_FOUND", fmt.Sprintf("Could not associate %s %s with %s %s: a record does not exist", from, in.From.ID, to, in.To.ID))
			e.Context = map[string][]string{"fromObjectId": {in.From.ID}, "toObjectId": {in.To.ID}}
			out.Errors = append(out.Errors, asStandardError(e))
			continue
		}
		types := []assocType{{"HUBSPOT_DEFINED", defaultType(from, to)}}
		if labelled {
			types = types[:0]
			for _, t := range in.Types {
				types = append(types, assocType{t.AssociationCategory, t.AssociationTypeID})
			}
		}
		pair := labelsPair{FromObjectTypeID: objectTypeIDs[from], FromObjectID: strconv.FormatInt(fromID, 10),
			ToObjectTypeID: objectTypeIDs[to], ToObjectID: strconv.FormatInt(toID, 10), Labels: []string{}}
		for _, t := range types {
			s.link(from, fromID, to, toID, t, s.apiOrigin(r))
			if l, ok := typeLabels[t.ID]; ok {
				pair.Labels = append(pair.Labels, l)
			}
			if labelled {
				continue
			}
			out.Results = append(out.Results, assocResult{From: in.From, To: in.To, AssociationSpec: assocSpec{t.Category, t.ID}})
			inv := t.ID
			if id, ok := inverseTypes[t.ID]; ok && t.Category == "HUBSPOT_DEFINED" {
				inv = id
			}
			out.Results = append(out.Results, assocResult{From: in.To, To: in.From, AssociationSpec: assocSpec{t.Category, inv}})
		}
		if labelled {
			out.Results = append(out.Results, pair)
		}
	}
	out.NumErrors = len(out.Errors)
	out.CompletedAt = formatTime(s.cfg.Now())
	// hubspot-api-client 12.0.0 documents 201 and 207 for batch/create, and
	// only 200 for batch/associate/default, whose answer
	// (BatchResponsePublicDefaultAssociation) carries the errors itself.
	status := http.StatusOK
	if labelled {
		status = http.StatusCreated
		if out.NumErrors > 0 {
			status = http.StatusMultiStatus
		}
	}
	writeJSON(w, status, out)
}

// handleAssociateOneDefault is PUT .../associations/default/{toType}/{toId} ([O-assoc]).
func (s *Server) handleAssociateOneDefault(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fromID, ok1 := s.recordID(from, r.PathValue("fromId"))
	toID, ok2 := s.recordID(to, r.PathValue("toId"))
	if !ok1 || !ok2 {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	t := assocType{"HUBSPOT_DEFINED", defaultType(from, to)}
	s.link(from, fromID, to, toID, t, s.apiOrigin(r))
	writeJSON(w, http.StatusOK, assocBatchOut{
		Status:      "COMPLETE",
		Results:     []any{assocResult{From: idRef{r.PathValue("fromId")}, To: idRef{r.PathValue("toId")}, AssociationSpec: assocSpec{t.Category, t.ID}}},
		StartedAt:   formatTime(s.cfg.Now()),
		CompletedAt: formatTime(s.cfg.Now()),
	})
}

type assocTypeOut struct {
	Category string  `json:"category"`
	TypeID   int     `json:"typeId"`
	Label    *string `json:"label"`
}

// assocTo is hubspot-api-client 12.0.0's MultiAssociatedObjectWithLabel:
// toObjectId is a string there, and associationTypes' label is optional.
type assocTo struct {
	ToObjectID       int64          `json:"toObjectId,string"`
	AssociationTypes []assocTypeOut `json:"associationTypes"`
}

// targets lists the records linked from one record to a type, by id. Callers hold s.mu.
func (s *Server) targets(from string, fromID int64, to string) []assocTo {
	var out []assocTo
	for k, types := range s.assocs {
		if k.from != from || k.fromID != fromID || k.to != to || s.objects[to].byID[k.toID] == nil {
			continue // another record's, or an archived record's
		}
		t := assocTo{ToObjectID: k.toID}
		ids := make([]int, 0, len(types))
		for id := range types {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids {
			cat := "HUBSPOT_DEFINED"
			if _, ok := inverseTypes[id]; !ok {
				cat = "USER_DEFINED"
			}
			var label *string
			if l, ok := typeLabels[id]; ok {
				label = &l
			}
			t.AssociationTypes = append(t.AssociationTypes, assocTypeOut{cat, id, label})
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ToObjectID < out[j].ToObjectID })
	return out
}

// assocReadInput is one input of an association batch read: a record,
// and where the page of its associations starts.
type assocReadInput struct {
	ID string `json:"id"`
	// After is the paging.next.after of the record's previous page.
	After string `json:"after,omitempty"`
}

// handleAssociationsBatchRead reads the associations of up to 1,000
// records ([O-assoc]), a page of at most 500 per record, as the single
// record read pages them; a record with more answers paging.next.after,
// which its next input carries as after ([S-assoc]).
func (s *Server) handleAssociationsBatchRead(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	inputs, ok := decodeInputs[assocReadInput](w, r, maxAssocRead)
	if !ok {
		return
	}
	type result struct {
		From   idRef     `json:"from"`
		To     []assocTo `json:"to"`
		Paging *paging   `json:"paging,omitempty"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := struct {
		Status      string          `json:"status"`
		Results     []result        `json:"results"`
		NumErrors   int             `json:"numErrors,omitempty"`
		Errors      []standardError `json:"errors,omitempty"`
		StartedAt   string          `json:"startedAt"`
		CompletedAt string          `json:"completedAt"`
	}{Status: "COMPLETE", Results: []result{}, StartedAt: formatTime(s.cfg.Now())}
	for _, in := range inputs {
		var after int64
		if in.After != "" {
			var err error
			if after, err = strconv.ParseInt(in.After, 10, 64); err != nil {
				fail(w, newError("VALIDATION_ERROR", "after "+strconv.Quote(in.After)+" of input "+in.ID+" is not a paging.next.after this endpoint gave"))
				return
			}
		}
		id, ok := s.recordID(from, in.ID)
		var ts []assocTo
		if ok {
			ts = s.targets(from, id, to)
		}
		first := sort.Search(len(ts), func(i int) bool { return ts[i].ToObjectID > after })
		ts = ts[first:]
		if len(ts) == 0 {
			e := newError("OBJECT_NOT_FOUND", fmt.Sprintf("No %s is associated with %s %s.", singularLower(to), singularLower(from), in.ID))
			e.Context = map[string][]string{"fromObjectId": {in.ID}}
			out.Errors = append(out.Errors, asStandardError(e))
			continue
		}
		res := result{From: idRef{ID: in.ID}, To: ts}
		if len(ts) > maxAssocPage {
			res.To = ts[:maxAssocPage]
			res.Paging = &paging{Next: nextPage{After: strconv.FormatInt(res.To[maxAssocPage-1].ToObjectID, 10)}}
		}
		out.Results = append(out.Results, res)
	}
	out.NumErrors = len(out.Errors)
	out.CompletedAt = formatTime(s.cfg.Now())
	status := http.StatusOK
	if out.NumErrors > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, out)
}

func singularLower(typ string) string { return strings.ToLower(singular(typ)) }

// handleAssociationsList pages a record's associations, 500 per page at
// most ([S]); after is the last toObjectId of the previous page.
func (s *Server) handleAssociationsList(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.assocTypes(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, after, ok := pageParams(w, q, maxAssocPage, maxAssocPage)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.recordID(from, r.PathValue("fromId"))
	if !ok {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	results := []assocTo{}
	var next *paging
	for _, t := range s.targets(from, id, to) {
		if t.ToObjectID <= after {
			continue
		}
		if len(results) == limit {
			last := strconv.FormatInt(results[len(results)-1].ToObjectID, 10)
			next = &paging{Next: nextPage{After: last, Link: r.URL.Path + "?after=" + last}}
			break
		}
		results = append(results, t)
	}
	writeJSON(w, http.StatusOK, struct {
		Results []assocTo `json:"results"`
		Paging  *paging   `json:"paging,omitempty"`
	}{results, next})
}
