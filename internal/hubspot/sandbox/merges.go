package sandbox

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// mergeSystemProps are set on the merged record by the merge itself.
var mergeSystemProps = []string{"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids"}

// handleMerge is POST /crm/v3/objects/{objectType}/merge with
// {"primaryObjectId","objectIdToMerge"}, answering the merged record
// ([S-crm], [O-v3merge], §5 of hubspot-source.md):
//
//   - contacts and companies merge into a new record with a new id, unless
//     Config.MergeKeepsPrimaryID; deals keep the primary's id ([O-cl-merge]);
//   - the ids merged away are gone, and reads of them answer the merged
//     record ([O-cl-merge]: "fetching any records using the original IDs
//     will return the new merged record");
//   - hs_merged_object_ids lists every id merged in, chained merges
//     included ([O-kb-merge], [C-fivetran168]);
//   - property values are the primary's, and the merged record's where the
//     primary has none ([O-cl-merge]: "the latest property values of the
//     primary record");
//   - associations are the union of both records' ([O-cl-merge]).
//
// The journal gets a merge, then a deletion of each id merged away, and no
// propertyChange ([C-amp]).
func (s *Server) handleMerge(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	var body struct {
		PrimaryObjectID string `json:"primaryObjectId"`
		ObjectIDToMerge string `json:"objectIdToMerge"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.PrimaryObjectID == "" || body.ObjectIDToMerge == "" {
		fail(w, newError("VALIDATION_ERROR", "primaryObjectId and objectIdToMerge are required"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	primary := s.findRecord(typ, "", body.PrimaryObjectID)
	other := s.findRecord(typ, "", body.ObjectIDToMerge)
	if primary == nil || other == nil {
		missing := body.PrimaryObjectID
		if primary != nil {
			missing = body.ObjectIDToMerge
		}
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found. No "+singularLower(typ)+" with id "+missing, nil)
		return
	}
	if primary == other {
		fail(w, newError("VALIDATION_ERROR", "Cannot merge a "+singularLower(typ)+" with itself: "+body.PrimaryObjectID+" and "+body.ObjectIDToMerge+" are the same record"))
		return
	}
	merged := s.merge(typ, primary, other, s.apiOrigin(r))
	writeJSON(w, http.StatusOK, recordOut(merged, defaultReadProperties[typ]))
}

// merge merges other into primary and returns the merged record. Callers
// hold s.mu.
func (s *Server) merge(typ string, primary, other *record, o origin) *record {
	now := s.cfg.Now()
	objs := s.objects[typ]
	keepID := typ == "deals" || s.cfg.MergeKeepsPrimaryID

	props := map[string]string{}
	history := map[string][]historyEntry{}
	moved := 0
	for _, from := range []*record{other, primary} {
		for k, v := range from.props {
			if slices.Contains(mergeSystemProps, k) {
				continue
			}
			if from == primary {
				if _, ok := props[k]; ok {
					moved--
				}
			} else {
				moved++
			}
			props[k] = v
			history[k] = from.history[k]
		}
	}
	mergedIDs := mergedIDSet(primary, other)
	gone := []int64{other.id}
	if !keepID {
		gone = append(gone, primary.id)
	}
	for _, id := range gone {
		mergedIDs[id] = true
	}

	objs.remove(primary)
	objs.remove(other)
	merged := primary
	if !keepID {
		merged = &record{id: s.nextID, createdAt: primary.createdAt}
		s.nextID++
	}
	merged.props = map[string]string{
		"hs_object_id": strconv.FormatInt(merged.id, 10),
		"createdate":   primary.props["createdate"],
	}
	merged.history = history
	objs.byID[merged.id] = merged
	for _, k := range sortedKeys(props) {
		objs.set(merged, k, props[k])
	}
	ids := make([]int64, 0, len(mergedIDs))
	for id := range mergedIDs {
		ids = append(ids, id)
		objs.mergedInto[id] = merged.id
	}
	slices.Sort(ids)
	for old, into := range objs.mergedInto {
		if mergedIDs[into] {
			objs.mergedInto[old] = merged.id
		}
	}
	merged.props["hs_merged_object_ids"] = strings.Join(idStrings(ids), ";")
	s.touch(objs, merged, now)
	s.moveAssociations(typ, []int64{primary.id, other.id}, merged.id)

	s.record(o, Change{Kind: ChangeMerge, ObjectType: typ, ObjectID: merged.id, OccurredAt: now,
		PrimaryObjectID: primary.id, MergedObjectIDs: []int64{other.id}, NewObjectID: merged.id,
		NumberOfPropertiesMoved: moved})
	for _, id := range gone {
		s.record(o, Change{Kind: ChangeDeletion, ObjectType: typ, ObjectID: id, OccurredAt: now})
	}
	return merged
}

// mergedIDSet is the set of ids already merged into either record.
func mergedIDSet(records ...*record) map[int64]bool {
	out := map[int64]bool{}
	for _, rec := range records {
		for _, part := range strings.Split(rec.props["hs_merged_object_ids"], ";") {
			if id, err := strconv.ParseInt(part, 10, 64); err == nil {
				out[id] = true
			}
		}
	}
	return out
}

// moveAssociations gives the merged record every association of the
// records merged into it, dropping those between them. Callers hold s.mu.
func (s *Server) moveAssociations(typ string, from []int64, to int64) {
	moved := func(id int64) int64 {
		if slices.Contains(from, id) {
			return to
		}
		return id
	}
	for k, types := range s.assocs {
		nk := k
		if k.from == typ {
			nk.fromID = moved(k.fromID)
		}
		if k.to == typ {
			nk.toID = moved(k.toID)
		}
		if nk == k {
			continue
		}
		delete(s.assocs, k)
		if nk.from == nk.to && nk.fromID == nk.toID {
			continue
		}
		if s.assocs[nk] == nil {
			s.assocs[nk] = map[int]bool{}
		}
		for id := range types {
			s.assocs[nk][id] = true
		}
	}
}
