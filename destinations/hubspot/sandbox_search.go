package hubspot

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Search limits ([O-search]).
const (
	sbSearchMaxBody     = 3000
	sbSearchMaxLimit    = 200
	sbSearchMaxResults  = 10000
	sbSearchMaxGroups   = 5
	sbSearchMaxPerGroup = 6
	sbSearchMaxFilters  = 18
)

type sbFilter struct {
	PropertyName string            `json:"propertyName"`
	Operator     string            `json:"operator"`
	Value        json.RawMessage   `json:"value"`
	HighValue    json.RawMessage   `json:"highValue"`
	Values       []json.RawMessage `json:"values"`
}

type sbSort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

// sbScalar turns a filter value, sent as a JSON string or number, into a string.
func sbScalar(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// sbSearchText are the properties a free-text query looks at.
var sbSearchText = map[string][]string{
	"contacts":  {"firstname", "lastname", "email", "phone", "mobilephone", "company"},
	"companies": {"name", "domain", "website", "phone"},
}

// handleSearch runs POST /crm/v3/objects/{objectType}/search: filter groups
// (ORed) of filters (ANDed), one sort, limit ≤ 200, after, total, the 10,000
// results cap and the 3,000-character body cap ([O-search]).
func (s *Sandbox) handleSearch(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, sbMaxBody))
	if err != nil {
		sbFail(w, sbNewError("VALIDATION_ERROR", "Invalid input JSON: "+err.Error()))
		return
	}
	if len(data) > sbSearchMaxBody {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("The request body is %d characters long; search requests are limited to %d", len(data), sbSearchMaxBody)))
		return
	}
	var body struct {
		FilterGroups []struct {
			Filters []sbFilter `json:"filters"`
		} `json:"filterGroups"`
		Sorts      []json.RawMessage `json:"sorts"`
		Query      string            `json:"query"`
		Properties []string          `json:"properties"`
		Limit      *int              `json:"limit"`
		After      json.RawMessage   `json:"after"`
	}
	if !sbDecodeBytes(w, data, &body) {
		return
	}

	limit := 10
	if body.Limit != nil {
		limit = *body.Limit
	}
	if limit < 1 || limit > sbSearchMaxLimit {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("limit must be between 1 and %d, got %d", sbSearchMaxLimit, limit)))
		return
	}
	after := 0
	if a := sbScalar(body.After); a != "" {
		if after, err = strconv.Atoi(a); err != nil || after < 0 {
			sbFail(w, sbNewError("VALIDATION_ERROR", "after must be the paging.next.after of a previous page, got "+a))
			return
		}
	}
	if after >= sbSearchMaxResults {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("Search results are limited to %d per query; after %d is beyond them", sbSearchMaxResults, after)))
		return
	}
	total := 0
	for _, g := range body.FilterGroups {
		if len(g.Filters) > sbSearchMaxPerGroup {
			sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("Too many filters in a filter group: %d, at most %d", len(g.Filters), sbSearchMaxPerGroup)))
			return
		}
		total += len(g.Filters)
	}
	if len(body.FilterGroups) > sbSearchMaxGroups || total > sbSearchMaxFilters {
		sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("Too many filter groups or filters: %d groups, %d filters; at most %d groups and %d filters", len(body.FilterGroups), total, sbSearchMaxGroups, sbSearchMaxFilters)))
		return
	}
	if len(body.Sorts) > 1 {
		sbFail(w, sbNewError("VALIDATION_ERROR", "Only one sort is supported"))
		return
	}
	var sortBy sbSort
	if len(body.Sorts) == 1 {
		if err := json.Unmarshal(body.Sorts[0], &sortBy); err != nil {
			// A sort may also be a bare property name, "-name" for descending.
			name := sbScalar(body.Sorts[0])
			sortBy = sbSort{PropertyName: strings.TrimPrefix(name, "-"), Direction: "ASCENDING"}
			if strings.HasPrefix(name, "-") {
				sortBy.Direction = "DESCENDING"
			}
		}
	}
	for _, g := range body.FilterGroups {
		for _, f := range g.Filters {
			if !sbContains(sbOperators, f.Operator) {
				sbFail(w, sbNewError("VALIDATION_ERROR", fmt.Sprintf("Unknown filter operator %q", f.Operator)))
				return
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	objs := s.objects[typ]
	defs := s.props[typ]
	var matches []*sbRecord
	for _, id := range objs.sortedIDs() {
		rec := objs.byID[id]
		if s.cfg.SearchLag > 0 && now.Sub(rec.createdAt) < s.cfg.SearchLag {
			continue
		}
		if !sbMatchesQuery(rec, sbSearchText[typ], body.Query) {
			continue
		}
		ok := len(body.FilterGroups) == 0
		for _, g := range body.FilterGroups {
			all := true
			for _, f := range g.Filters {
				if !sbMatches(defs.byName[f.PropertyName], rec, f) {
					all = false
					break
				}
			}
			if all {
				ok = true
				break
			}
		}
		if ok {
			matches = append(matches, rec)
		}
	}
	if sortBy.PropertyName != "" {
		prop := defs.byName[sortBy.PropertyName]
		desc := strings.EqualFold(sortBy.Direction, "DESCENDING")
		sort.SliceStable(matches, func(i, j int) bool {
			a, aok := matches[i].props[sortBy.PropertyName]
			b, bok := matches[j].props[sortBy.PropertyName]
			if aok != bok {
				return aok // records without the value go last
			}
			c := sbCompare(prop, a, b)
			if desc {
				return c > 0
			}
			return c < 0
		})
	}

	names := s.readNames(typ, body.Properties)
	n := len(matches)
	results := []sbObjectOut{}
	end := min(after+limit, n)
	for i := after; i < end; i++ {
		results = append(results, sbRecordOut(matches[i], names))
	}
	page := sbPage{Total: &n, Results: results}
	if end < n {
		page.Paging = &sbPaging{Next: sbNext{After: strconv.Itoa(end)}}
	}
	sbWriteJSON(w, http.StatusOK, page)
}

var sbOperators = []string{"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}

func sbMatchesQuery(rec *sbRecord, fields []string, q string) bool {
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

// sbMatches applies one filter to a record.
func sbMatches(prop *sbProperty, rec *sbRecord, f sbFilter) bool {
	v, has := rec.props[f.PropertyName]
	switch f.Operator {
	case "HAS_PROPERTY":
		return has
	case "NOT_HAS_PROPERTY":
		return !has
	case "NEQ":
		return !has || sbCompare(prop, v, sbScalar(f.Value)) != 0
	case "NOT_IN":
		for _, x := range f.Values {
			if has && sbCompare(prop, v, sbScalar(x)) == 0 {
				return false
			}
		}
		return true
	case "NOT_CONTAINS_TOKEN":
		return !has || !sbContainsToken(v, sbScalar(f.Value))
	}
	if !has {
		return false
	}
	switch f.Operator {
	case "EQ":
		return sbCompare(prop, v, sbScalar(f.Value)) == 0
	case "LT":
		return sbCompare(prop, v, sbScalar(f.Value)) < 0
	case "LTE":
		return sbCompare(prop, v, sbScalar(f.Value)) <= 0
	case "GT":
		return sbCompare(prop, v, sbScalar(f.Value)) > 0
	case "GTE":
		return sbCompare(prop, v, sbScalar(f.Value)) >= 0
	case "BETWEEN":
		return sbCompare(prop, v, sbScalar(f.Value)) >= 0 && sbCompare(prop, v, sbScalar(f.HighValue)) <= 0
	case "IN":
		for _, x := range f.Values {
			if sbCompare(prop, v, sbScalar(x)) == 0 {
				return true
			}
		}
		return false
	case "CONTAINS_TOKEN":
		return sbContainsToken(v, sbScalar(f.Value))
	}
	return false
}

// sbCompare orders two values by the property's type: numbers as numbers,
// dates and datetimes as instants (ISO 8601 or epoch ms), anything else as
// case-insensitive text.
func sbCompare(prop *sbProperty, a, b string) int {
	typ := "string"
	if prop != nil {
		typ = prop.Type
	}
	switch typ {
	case "number":
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 == nil && err2 == nil {
			return sbCmp(x, y)
		}
	case "date", "datetime":
		x, ok1 := sbInstant(a)
		y, ok2 := sbInstant(b)
		if ok1 && ok2 {
			return sbCmp(x, y)
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func sbCmp[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// sbInstant reads epoch ms, ISO 8601 or YYYY-MM-DD as epoch ms.
func sbInstant(v string) (int64, bool) {
	if sbEpochRe.MatchString(v) {
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

// sbContainsToken matches a word of the value, or with * wildcards the
// whole value or a word of it, ignoring case.
func sbContainsToken(value, token string) bool {
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
