package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// list is a lists v3 list ([S], [O-lists]).
type list struct {
	id             int64
	name           string
	objectTypeID   string
	processingType string
	members        map[int64]time.Time
	createdAt      time.Time
	updatedAt      time.Time
}

func (l *list) sortedMembers() []int64 {
	ids := make([]int64, 0, len(l.members))
	for id := range l.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func idStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

type listOut struct {
	ListID           string `json:"listId"`
	Name             string `json:"name"`
	ObjectTypeID     string `json:"objectTypeId"`
	ProcessingType   string `json:"processingType"`
	ProcessingStatus string `json:"processingStatus"`
	ListVersion      int    `json:"listVersion"`
	Size             int    `json:"size"`
	CreatedAt        string `json:"createdAt"`
	UpdatedAt        string `json:"updatedAt"`
}

func (l *list) out() listOut {
	return listOut{
		ListID: strconv.FormatInt(l.id, 10), Name: l.name, ObjectTypeID: l.objectTypeID,
		ProcessingType: l.processingType, ProcessingStatus: "COMPLETE", ListVersion: 1,
		Size: len(l.members), CreatedAt: formatTime(l.createdAt), UpdatedAt: formatTime(l.updatedAt),
	}
}

// ListIDs returns the ids of every list.
func (s *Server) ListIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.lists))
	for id := range s.lists {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// ListMembers returns the record ids in a list, in id order, and whether
// the list exists.
func (s *Server) ListMembers(listID string) ([]string, bool) {
	id, err := strconv.ParseInt(listID, 10, 64)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[id]
	if l == nil {
		return nil, false
	}
	return idStrings(l.sortedMembers()), true
}

// handleCreateList creates a list: name, objectTypeId and processingType
// (MANUAL, SNAPSHOT or DYNAMIC) are required.
func (s *Server) handleCreateList(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name           string `json:"name"`
		ObjectTypeID   string `json:"objectTypeId"`
		ProcessingType string `json:"processingType"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Name == "" || in.ObjectTypeID == "" || in.ProcessingType == "" {
		fail(w, newError("VALIDATION_ERROR", "Invalid input JSON: name, objectTypeId and processingType are required"))
		return
	}
	typ, ok := canonicalType(in.ObjectTypeID)
	if !ok {
		fail(w, newError("VALIDATION_ERROR", "Unable to infer object type from: "+in.ObjectTypeID))
		return
	}
	if !slices.Contains([]string{"MANUAL", "SNAPSHOT", "DYNAMIC"}, in.ProcessingType) {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("processingType must be MANUAL, SNAPSHOT or DYNAMIC, got %q", in.ProcessingType)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lists {
		if strings.EqualFold(l.name, in.Name) {
			fail(w, newError("CONFLICT", fmt.Sprintf("A list named %q already exists: %d", in.Name, l.id)))
			return
		}
	}
	now := s.cfg.Now()
	l := &list{id: s.nextListID, name: in.Name, objectTypeID: objectTypeIDs[typ], processingType: in.ProcessingType,
		members: map[int64]time.Time{}, createdAt: now, updatedAt: now}
	s.nextListID++
	s.lists[l.id] = l
	writeJSON(w, http.StatusOK, map[string]any{"list": l.out()})
}

// list finds the list named by the path, answering 404 if there is none. Callers hold s.mu.
func (s *Server) list(w http.ResponseWriter, r *http.Request) *list {
	id, err := strconv.ParseInt(r.PathValue("listId"), 10, 64)
	if l := s.lists[id]; err == nil && l != nil {
		return l
	}
	writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("List does not exist with id %s", r.PathValue("listId")), nil)
	return nil
}

func (s *Server) handleGetList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		writeJSON(w, http.StatusOK, map[string]any{"list": l.out()})
	}
}

func (s *Server) handleGetListByName(w http.ResponseWriter, r *http.Request) {
	typ, ok := canonicalType(r.PathValue("objectTypeId"))
	name := r.PathValue("listName")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lists {
		if ok && l.objectTypeID == objectTypeIDs[typ] && strings.EqualFold(l.name, name) {
			writeJSON(w, http.StatusOK, map[string]any{"list": l.out()})
			return
		}
	}
	writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("List does not exist with name %s", name), nil)
}

// membershipsOut is a memberships answer. HubSpot spells the added ids
// recordsIdsAdded (hubspot-api-client 12.0.0 and hubspot-sdk 0.1.0a9
// MembershipsUpdateResponse), the others recordIdsRemoved and
// recordIdsMissing; all three are required.
type membershipsOut struct {
	RecordIDsAdded   []string `json:"recordsIdsAdded"`
	RecordIDsRemoved []string `json:"recordIdsRemoved"`
	RecordIDsMissing []string `json:"recordIdsMissing"`
}

// changeMembers adds and removes records of a MANUAL or SNAPSHOT list; ids
// that are not records, or already in the state asked for, are ignored and
// reported ([S], [O-lists]). Callers hold s.mu.
func (s *Server) changeMembers(w http.ResponseWriter, l *list, add, remove []string) {
	if l.processingType != "MANUAL" && l.processingType != "SNAPSHOT" {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("List %d has processingType %s; memberships can be changed only for MANUAL and SNAPSHOT lists", l.id, l.processingType)))
		return
	}
	typ, _ := canonicalType(l.objectTypeID)
	now := s.cfg.Now()
	out := membershipsOut{RecordIDsAdded: []string{}, RecordIDsRemoved: []string{}, RecordIDsMissing: []string{}}
	for _, raw := range add {
		id, ok := s.recordID(typ, raw)
		if !ok {
			out.RecordIDsMissing = append(out.RecordIDsMissing, raw)
			continue
		}
		if _, in := l.members[id]; !in {
			l.members[id] = now
			out.RecordIDsAdded = append(out.RecordIDsAdded, raw)
		}
	}
	for _, raw := range remove {
		id, err := strconv.ParseInt(raw, 10, 64)
		if _, in := l.members[id]; err != nil || !in {
			if _, exists := s.recordID(typ, raw); !exists {
				out.RecordIDsMissing = append(out.RecordIDsMissing, raw)
			}
			continue
		}
		delete(l.members, id)
		out.RecordIDsRemoved = append(out.RecordIDsRemoved, raw)
	}
	l.updatedAt = now
	writeJSON(w, http.StatusOK, out)
}

// handleMembershipsAddAndRemove is PUT .../memberships/add-and-remove with
// {"recordIdsToAdd":[...],"recordIdsToRemove":[...]} ([S], [O-lists]).
func (s *Server) handleMembershipsAddAndRemove(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RecordIDsToAdd    []string `json:"recordIdsToAdd"`
		RecordIDsToRemove []string `json:"recordIdsToRemove"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		s.changeMembers(w, l, in.RecordIDsToAdd, in.RecordIDsToRemove)
	}
}

// handleMembershipsAdd is PUT .../memberships/add with a bare array of record ids.
func (s *Server) handleMembershipsAdd(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if !decode(w, r, &ids) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		s.changeMembers(w, l, ids, nil)
	}
}

// handleMembershipsRemove is PUT .../memberships/remove with a bare array of record ids.
func (s *Server) handleMembershipsRemove(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if !decode(w, r, &ids) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		s.changeMembers(w, l, nil, ids)
	}
}

// handleMembershipsGet pages a list's members in id order: limit (default
// 100, at most 250) and after.
func (s *Server) handleMembershipsGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after, ok := pageParams(w, q, 100, 250)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.list(w, r)
	if l == nil {
		return
	}
	type member struct {
		RecordID            string `json:"recordId"`
		MembershipTimestamp string `json:"membershipTimestamp"`
	}
	results := []member{}
	var next *paging
	for _, id := range l.sortedMembers() {
		if id <= after {
			continue
		}
		if len(results) == limit {
			last := results[len(results)-1].RecordID
			next = &paging{Next: nextPage{After: last}}
			break
		}
		results = append(results, member{strconv.FormatInt(id, 10), formatTime(l.members[id])})
	}
	writeJSON(w, http.StatusOK, struct {
		Results []member `json:"results"`
		Total   int      `json:"total"`
		Paging  *paging  `json:"paging,omitempty"`
	}{results, len(l.members), next})
}
