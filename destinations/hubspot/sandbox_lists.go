package hubspot

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sbList is a lists v3 list ([S], [O-lists]).
type sbList struct {
	id             int64
	name           string
	objectTypeID   string
	processingType string
	members        map[int64]time.Time
	createdAt      time.Time
	updatedAt      time.Time
}

func (l *sbList) sortedMembers() []int64 {
	ids := make([]int64, 0, len(l.members))
	for id := range l.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func sbIDStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

type sbListOut struct {
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

func (l *sbList) out() sbListOut {
	return sbListOut{
		ListID: strconv.FormatInt(l.id, 10), Name: l.name, ObjectTypeID: l.objectTypeID,
		ProcessingType: l.processingType, ProcessingStatus: "COMPLETE", ListVersion: 1,
		Size: len(l.members), CreatedAt: sbTime(l.createdAt), UpdatedAt: sbTime(l.updatedAt),
	}
}

// ListIDs returns the ids of every list.
func (s *Sandbox) ListIDs() []int64 {
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
func (s *Sandbox) ListMembers(listID string) ([]string, bool) {
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
	return sbIDStrings(l.sortedMembers()), true
}

// handleCreateList creates a list: name, objectTypeId and processingType
// (MANUAL, SNAPSHOT or DYNAMIC) are required.
func (s *Sandbox) handleCreateList(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name           string `json:"name"`
		ObjectTypeID   string `json:"objectTypeId"`
		ProcessingType string `json:"processingType"`
	}
	if !sbDecode(w, r, &in) {
		return
	}
	if in.Name == "" || in.ObjectTypeID == "" || in.ProcessingType == "" {
		sbFail(w, sbNewError("VALIDATION_ERROR", "Invalid input JSON: name, objectTypeId and processingType are required"))
		return
	}
	typ, ok := sbObjectType(in.ObjectTypeID)
	if !ok {
		sbFail(w, sbNewError("VALIDATION_ERROR", "Unable to infer object type from: "+in.ObjectTypeID))
		return
	}
	if !sbContains([]string{"MANUAL", "SNAPSHOT", "DYNAMIC"}, in.ProcessingType) {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("processingType must be MANUAL, SNAPSHOT or DYNAMIC, got %q", in.ProcessingType)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lists {
		if strings.EqualFold(l.name, in.Name) {
			sbFail(w, sbNewError("CONFLICT", fmt.Sprintf("A list named %q already exists: %d", in.Name, l.id)))
			return
		}
	}
	now := s.cfg.Now()
	l := &sbList{id: s.nextListID, name: in.Name, objectTypeID: sbObjectTypeIDs[typ], processingType: in.ProcessingType,
		members: map[int64]time.Time{}, createdAt: now, updatedAt: now}
	s.nextListID++
	s.lists[l.id] = l
	sbWriteJSON(w, http.StatusOK, map[string]any{"list": l.out()})
}

// list finds the list named by the path, answering 404 if there is none. Callers hold s.mu.
func (s *Sandbox) list(w http.ResponseWriter, r *http.Request) *sbList {
	id, err := strconv.ParseInt(r.PathValue("listId"), 10, 64)
	if l := s.lists[id]; err == nil && l != nil {
		return l
	}
	sbWriteError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("List does not exist with id %s", r.PathValue("listId")), nil)
	return nil
}

func (s *Sandbox) handleGetList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		sbWriteJSON(w, http.StatusOK, map[string]any{"list": l.out()})
	}
}

func (s *Sandbox) handleGetListByName(w http.ResponseWriter, r *http.Request) {
	typ, ok := sbObjectType(r.PathValue("objectTypeId"))
	name := r.PathValue("listName")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lists {
		if ok && l.objectTypeID == sbObjectTypeIDs[typ] && strings.EqualFold(l.name, name) {
			sbWriteJSON(w, http.StatusOK, map[string]any{"list": l.out()})
			return
		}
	}
	sbWriteError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("List does not exist with name %s", name), nil)
}

type sbMembershipsOut struct {
	RecordIDsAdded   []string `json:"recordIdsAdded"`
	RecordIDsRemoved []string `json:"recordIdsRemoved"`
	RecordIDsMissing []string `json:"recordIdsMissing"`
}

// changeMembers adds and removes records of a MANUAL or SNAPSHOT list; ids
// that are not records, or already in the state asked for, are ignored and
// reported ([S], [O-lists]). Callers hold s.mu.
func (s *Sandbox) changeMembers(w http.ResponseWriter, l *sbList, add, remove []string) {
	if l.processingType != "MANUAL" && l.processingType != "SNAPSHOT" {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("List %d has processingType %s; memberships can be changed only for MANUAL and SNAPSHOT lists", l.id, l.processingType)))
		return
	}
	typ, _ := sbObjectType(l.objectTypeID)
	now := s.cfg.Now()
	out := sbMembershipsOut{RecordIDsAdded: []string{}, RecordIDsRemoved: []string{}, RecordIDsMissing: []string{}}
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
	sbWriteJSON(w, http.StatusOK, out)
}

// handleMembershipsAddAndRemove is PUT .../memberships/add-and-remove with
// {"recordIdsToAdd":[...],"recordIdsToRemove":[...]} ([S], [O-lists]).
func (s *Sandbox) handleMembershipsAddAndRemove(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RecordIDsToAdd    []string `json:"recordIdsToAdd"`
		RecordIDsToRemove []string `json:"recordIdsToRemove"`
	}
	if !sbDecode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		s.changeMembers(w, l, in.RecordIDsToAdd, in.RecordIDsToRemove)
	}
}

// handleMembershipsAdd is PUT .../memberships/add with a bare array of record ids.
func (s *Sandbox) handleMembershipsAdd(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if !sbDecode(w, r, &ids) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list(w, r); l != nil {
		s.changeMembers(w, l, ids, nil)
	}
}

// handleMembershipsRemove is PUT .../memberships/remove with a bare array of record ids.
func (s *Sandbox) handleMembershipsRemove(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if !sbDecode(w, r, &ids) {
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
func (s *Sandbox) handleMembershipsGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := sbIntParam(q.Get("limit"), 100)
	if err != nil || limit < 1 {
		sbFail(w, sbNewError("VALIDATION_ERROR", "limit must be a positive integer"))
		return
	}
	limit = min(limit, 250)
	after := int64(0)
	if a := q.Get("after"); a != "" {
		if after, err = strconv.ParseInt(a, 10, 64); err != nil {
			sbFail(w, sbNewError("VALIDATION_ERROR", "after must be the paging.next.after of a previous page"))
			return
		}
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
	var next *sbPaging
	for _, id := range l.sortedMembers() {
		if id <= after {
			continue
		}
		if len(results) == limit {
			last := results[len(results)-1].RecordID
			next = &sbPaging{Next: sbNext{After: last}}
			break
		}
		results = append(results, member{strconv.FormatInt(id, 10), sbTime(l.members[id])})
	}
	sbWriteJSON(w, http.StatusOK, struct {
		Results []member  `json:"results"`
		Total   int       `json:"total"`
		Paging  *sbPaging `json:"paging,omitempty"`
	}{results, len(l.members), next})
}
