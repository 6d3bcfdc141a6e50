package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Search limits ([O-search]).
const (
	searchMaxBody     = 3000
	searchMaxLimit    = 200
	searchMaxResults  = 10000
	searchMaxGroups   = 5
	searchMaxPerGroup = 6
	searchMaxFilters  = 18
)

type filter struct {
	PropertyName string            `json:"propertyName"`
	Operator     string            `json:"operator"`
	Value        json.RawMessage   `json:"value"`
	HighValue    json.RawMessage   `json:"highValue"`
	Values       []json.RawMessage `json:"values"`
}

type sortRecords struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

// scalar turns a filter value, sent as a JSON string or number, into a string.
func scalar(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// searchText are the properties a free-text query looks at.
var searchText = map[string][]string{
	"contacts":  {"firstname", "lastname", "email", "phone", "mobilephone", "company"},
	"companies": {"name", "domain", "website", "phone"},
	"deals":     {"dealname"},
}

// unindexed are the properties search cannot filter on for a type: a
// contact's last modification is lastmodifieddate, and a filter on
// hs_lastmodifieddate matches no contact ([C-85019]).
var unindexed = map[string]string{"contacts": "hs_lastmodifieddate"}

// handleSearch runs POST /crm/v3/objects/{objectType}/search: filter groups
// (ORed) of filters (ANDed), one sort, limit ≤ 200, after, total, the 10,000
// results cap and the 3,000-character body cap ([O-search]).
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	q, ok := readSearch(w, r)
	if !ok {
		return
	}
	if max := s.cfg.SearchResultsCap; q.after >= max {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Search results are limited to %d per query; after %d is beyond them", max, q.after)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	matches := s.searchMatches(typ, q)
	sortRecordsBy(matches, s.props[typ], q.sortBy)
	writeJSON(w, http.StatusOK, s.searchPage(typ, matches, q))
}

// searchBody is the JSON body of a search request.
type searchBody struct {
	FilterGroups []filterGroup     `json:"filterGroups"`
	Sorts        []json.RawMessage `json:"sorts"`
	Query        string            `json:"query"`
	Properties   []string          `json:"properties"`
	Limit        *int              `json:"limit"`
	After        json.RawMessage   `json:"after"`
}

// filterGroup matches a record that passes all of its filters.
type filterGroup struct {
	Filters []filter `json:"filters"`
}

// search is a checked search request.
type search struct {
	filterGroups []filterGroup
	sortBy       sortRecords
	query        string
	properties   []string
	limit, after int
}

// readSearch reads a search body and checks it against the search limits,
// answering 400 when it breaks one.
func readSearch(w http.ResponseWriter, r *http.Request) (search, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		fail(w, newError("VALIDATION_ERROR", "Invalid input JSON: "+err.Error()))
		return search{}, false
	}
	if len(data) > searchMaxBody {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("The request body is %d characters long; search requests are limited to %d", len(data), searchMaxBody)))
		return search{}, false
	}
	var body searchBody
	if !decodeBytes(w, data, &body) {
		return search{}, false
	}
	q, e := checkSearch(body)
	if e != nil {
		fail(w, e)
		return search{}, false
	}
	return q, true
}

// checkSearch checks paging, filters and sort of a search body.
func checkSearch(body searchBody) (search, *errorBody) {
	q := search{filterGroups: body.FilterGroups, query: body.Query, properties: body.Properties}
	var e *errorBody
	if q.limit, q.after, e = searchPaging(body.Limit, body.After); e != nil {
		return search{}, e
	}
	if e := checkFilterCounts(body.FilterGroups); e != nil {
		return search{}, e
	}
	if len(body.Sorts) > 1 {
		return search{}, newError("VALIDATION_ERROR", "Only one sort is supported")
	}
	if len(body.Sorts) == 1 {
		q.sortBy = sortOf(body.Sorts[0])
	}
	for _, g := range body.FilterGroups {
		for _, f := range g.Filters {
			if !slices.Contains(operators, f.Operator) {
				return search{}, newError("VALIDATION_ERROR", fmt.Sprintf("Unknown filter operator %q", f.Operator))
			}
		}
	}
	return q, nil
}

// searchPaging reads a search's limit, 10 when absent and at most
// searchMaxLimit, and after, the offset of the page within the first
// results (Config.SearchResultsCap bounds it).
func searchPaging(limitField *int, afterField json.RawMessage) (limit, after int, e *errorBody) {
	limit = 10
	if limitField != nil {
		limit = *limitField
	}
	if limit < 1 || limit > searchMaxLimit {
		return 0, 0, newError("VALIDATION_ERROR", fmt.Sprintf("limit must be between 1 and %d, got %d", searchMaxLimit, limit))
	}
	if a := scalar(afterField); a != "" {
		var err error
		if after, err = strconv.Atoi(a); err != nil || after < 0 {
			return 0, 0, newError("VALIDATION_ERROR", "after must be the paging.next.after of a previous page, got "+a)
		}
	}
	return limit, after, nil
}

// checkFilterCounts enforces the caps on filters per group, groups and
// filters in all.
func checkFilterCounts(groups []filterGroup) *errorBody {
	total := 0
	for _, g := range groups {
		if len(g.Filters) > searchMaxPerGroup {
			return newError("VALIDATION_ERROR", fmt.Sprintf("Too many filters in a filter group: %d, at most %d", len(g.Filters), searchMaxPerGroup))
		}
		total += len(g.Filters)
	}
	if len(groups) > searchMaxGroups || total > searchMaxFilters {
		return newError("VALIDATION_ERROR", fmt.Sprintf("Too many filter groups or filters: %d groups, %d filters; at most %d groups and %d filters", len(groups), total, searchMaxGroups, searchMaxFilters))
	}
	return nil
}

// sortOf reads a sort: an object with propertyName and direction, or a bare
// property name, "-name" for descending.
func sortOf(raw json.RawMessage) sortRecords {
	var sortBy sortRecords
	if err := json.Unmarshal(raw, &sortBy); err == nil {
		return sortBy
	}
	name := scalar(raw)
	sortBy = sortRecords{PropertyName: strings.TrimPrefix(name, "-"), Direction: "ASCENDING"}
	if strings.HasPrefix(name, "-") {
		sortBy.Direction = "DESCENDING"
	}
	return sortBy
}

// searchMatches returns, in id order, the records of typ that the search's
// query and filter groups match, each as it was SearchLag ago (see
// Config.SearchLag). The caller holds s.mu.
func (s *Server) searchMatches(typ string, q search) []*record {
	now := s.cfg.Now()
	objs := s.objects[typ]
	defs := s.props[typ]
	var matches []*record
	for _, id := range objs.sortedIDs() {
		rec := objs.byID[id]
		if s.cfg.SearchLag > 0 {
			if rec = rec.asOf(now.Add(-s.cfg.SearchLag)); rec == nil {
				continue
			}
		}
		if matchesQuery(rec, searchText[typ], q.query) && matchesGroups(typ, defs, rec, q.filterGroups) {
			matches = append(matches, rec)
		}
	}
	return matches
}

// matchesGroups tells whether the record passes every filter of at least one
// group; with no groups every record passes.
func matchesGroups(typ string, defs *properties, rec *record, groups []filterGroup) bool {
	if len(groups) == 0 {
		return true
	}
	for _, g := range groups {
		all := true
		for _, f := range g.Filters {
			if f.PropertyName == unindexed[typ] || !filterMatches(defs.byName[f.PropertyName], rec, f) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// sortRecordsBy sorts records, stably, by the sort's property, compared as
// its definition in defs says; records without a value go last. An empty
// sort keeps the order.
func sortRecordsBy(records []*record, defs *properties, sortBy sortRecords) {
	if sortBy.PropertyName == "" {
		return
	}
	prop := defs.byName[sortBy.PropertyName]
	desc := strings.EqualFold(sortBy.Direction, "DESCENDING")
	sort.SliceStable(records, func(i, j int) bool {
		a, aok := records[i].props[sortBy.PropertyName]
		b, bok := records[j].props[sortBy.PropertyName]
		if aok != bok {
			return aok // records without the value go last
		}
		c := compare(prop, a, b)
		if desc {
			return c > 0
		}
		return c < 0
	})
}

// searchPage is the page of matches the search's limit and after select,
// with the total and, when more follow, the next page's after.
func (s *Server) searchPage(typ string, matches []*record, q search) page {
	names := s.readNames(typ, q.properties)
	n := len(matches)
	results := []objectOut{}
	end := min(q.after+q.limit, n, s.cfg.SearchResultsCap)
	for i := q.after; i < end; i++ {
		results = append(results, recordOut(matches[i], names))
	}
	p := page{Total: &n, Results: results}
	if end < n {
		p.Paging = &paging{Next: nextPage{After: strconv.Itoa(end)}}
	}
	return p
}

var operators = []string{"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}

func matchesQuery(rec *record, fields []string, q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(rec.props[f]), q) {
			return true
		}
	}
	return false
}

// filterMatches applies one filter to a record.
func filterMatches(prop *property, rec *record, f filter) bool {
	v, has := rec.props[f.PropertyName]
	switch f.Operator {
	case "HAS_PROPERTY":
		return has
	case "NOT_HAS_PROPERTY":
		return !has
	case "NEQ":
		return !has || compare(prop, v, scalar(f.Value)) != 0
	case "NOT_IN":
		for _, x := range f.Values {
			if has && compare(prop, v, scalar(x)) == 0 {
				return false
			}
		}
		return true
	case "NOT_CONTAINS_TOKEN":
		return !has || !containsToken(v, scalar(f.Value))
	}
	if !has {
		return false
	}
	switch f.Operator {
	case "EQ":
		return compare(prop, v, scalar(f.Value)) == 0
	case "LT":
		return compare(prop, v, scalar(f.Value)) < 0
	case "LTE":
		return compare(prop, v, scalar(f.Value)) <= 0
	case "GT":
		return compare(prop, v, scalar(f.Value)) > 0
	case "GTE":
		return compare(prop, v, scalar(f.Value)) >= 0
	case "BETWEEN":
		return compare(prop, v, scalar(f.Value)) >= 0 && compare(prop, v, scalar(f.HighValue)) <= 0
	case "IN":
		for _, x := range f.Values {
			if compare(prop, v, scalar(x)) == 0 {
				return true
			}
		}
		return false
	case "CONTAINS_TOKEN":
		return containsToken(v, scalar(f.Value))
	}
	return false
}

// compare orders two values by the property's type: numbers as numbers,
// dates and datetimes as instants (ISO 8601 or epoch ms), anything else as
// case-insensitive text.
func compare(prop *property, a, b string) int {
	typ := "string"
	if prop != nil {
		typ = prop.Type
	}
	switch typ {
	case "number":
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 == nil && err2 == nil {
			return compareValues(x, y)
		}
	case "date", "datetime":
		x, ok1 := instant(a)
		y, ok2 := instant(b)
		if ok1 && ok2 {
			return compareValues(x, y)
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func compareValues[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// instant reads epoch ms, ISO 8601 or YYYY-MM-DD as epoch ms.
func instant(v string) (int64, bool) {
	if epochRe.MatchString(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

// containsToken matches a word of the value, or with * wildcards the
// whole value or a word of it, ignoring case.
func containsToken(value, token string) bool {
	value, token = strings.ToLower(value), strings.ToLower(token)
	if token == "" {
		return false
	}
	words := strings.FieldsFunc(value, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
	if strings.Contains(token, "*") {
		if ok, _ := path.Match(token, value); ok {
			return true
		}
		for _, w := range words {
			if ok, _ := path.Match(token, w); ok {
				return true
			}
		}
		return false
	}
	if value == token {
		return true
	}
	for _, w := range words {
		if w == token {
			return true
		}
	}
	return false
}
