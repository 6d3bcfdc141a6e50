package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/hubspot/api"
)

// batchReadLimit is the most ids one batch/read takes.
const batchReadLimit = 100

// associationReadLimit is the most ids one v4 association batch read takes.
const associationReadLimit = 1000

// Record is one HubSpot record as the source reads it.
type Record struct {
	ID string
	// Properties holds the values HubSpot returned, as strings; a property
	// without a value is absent.
	Properties map[string]string
	// UpdatedAt is the record's last modification.
	UpdatedAt time.Time
}

// hubspotReader reads records, associations and property types through the
// token's shared client.
type hubspotReader struct {
	client *api.Client

	mu sync.Mutex
	// types caches each object type's property types (name -> type).
	types map[string]map[string]string
}

// read batch-reads ids of objectType with props, 100 per call. Ids HubSpot
// does not find (deleted) are left out; a merged-away id comes back as its
// surviving record.
func (h *hubspotReader) read(ctx context.Context, objectType string, ids, props []string) ([]Record, error) {
	var out []Record
	for start := 0; start < len(ids); start += batchReadLimit {
		chunk := ids[start:min(start+batchReadLimit, len(ids))]
		inputs := make([]map[string]string, len(chunk))
		for i, id := range chunk {
			inputs[i] = map[string]string{"id": id}
		}
		body := map[string]any{"properties": props, "propertiesWithHistory": []string{}, "inputs": inputs}
		resp, err := h.client.Do(ctx, api.Standard, http.MethodPost, "/crm/v3/objects/"+objectType+"/batch/read", body)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", objectType, err)
		}
		out = append(out, parseRecords(gjson.GetBytes(resp.Body, "results"))...)
	}
	return out, nil
}

// parseRecords reads the records of an answer's results.
func parseRecords(results gjson.Result) []Record {
	var out []Record
	for _, r := range results.Array() {
		rec := Record{ID: r.Get("id").String(), Properties: map[string]string{}}
		r.Get("properties").ForEach(func(k, v gjson.Result) bool {
			if v.Type != gjson.Null {
				rec.Properties[k.String()] = v.String()
			}
			return true
		})
		rec.UpdatedAt, _ = time.Parse(time.RFC3339Nano, r.Get("updatedAt").String())
		out = append(out, rec)
	}
	return out
}

// recordPage is one page of a search or of a list of every record.
type recordPage struct {
	Records []Record
	// Total is how many records the search matches (searches only).
	Total int64
	// Next is the after of the next page; "" on the last.
	Next string
}

func parsePage(body []byte) recordPage {
	return recordPage{
		Records: parseRecords(gjson.GetBytes(body, "results")),
		Total:   gjson.GetBytes(body, "total").Int(),
		Next:    gjson.GetBytes(body, "paging.next.after").String(),
	}
}

// search runs one search request (POST /crm/v3/objects/{type}/search) in
// the search budget.
func (h *hubspotReader) search(ctx context.Context, objectType string, body any) (recordPage, error) {
	resp, err := h.client.Do(ctx, api.Search, http.MethodPost, "/crm/v3/objects/"+objectType+"/search", body)
	if err != nil {
		return recordPage{}, fmt.Errorf("searching %s: %w", objectType, err)
	}
	return parsePage(resp.Body), nil
}

// list reads one page of every record of objectType (GET
// /crm/v3/objects/{type}) in ascending id order, listLimit records from
// the cursor after (the previous page's paging.next.after; "" for the
// first page).
func (h *hubspotReader) list(ctx context.Context, objectType, after string, props []string) (recordPage, error) {
	q := url.Values{"limit": {strconv.Itoa(listLimit)}, "properties": {strings.Join(props, ",")}}
	if after != "" {
		q.Set("after", after)
	}
	resp, err := h.client.Do(ctx, api.Standard, http.MethodGet, "/crm/v3/objects/"+objectType+"?"+q.Encode(), nil)
	if err != nil {
		return recordPage{}, fmt.Errorf("listing %s: %w", objectType, err)
	}
	return parsePage(resp.Body), nil
}

// listLimit is the most records one page of a list returns.
const listLimit = 100

// portalID reads the portal's id (hubId) from the account-info API.
func (h *hubspotReader) portalID(ctx context.Context) (int64, error) {
	resp, err := h.client.Do(ctx, api.Standard, http.MethodGet, "/account-info/v3/details", nil)
	if err != nil {
		return 0, fmt.Errorf("reading the account's portal id: %w", err)
	}
	id := gjson.GetBytes(resp.Body, "portalId").Int()
	if id <= 0 {
		return 0, fmt.Errorf("reading the account's portal id: the answer has no portalId: %.200s", resp.Body)
	}
	return id, nil
}

// associations returns, for each of ids of type from, the ids of type to
// associated with it (v4 batch read). A record with more associations than
// one page holds answers paging.next.after, and is read again from there.
func (h *hubspotReader) associations(ctx context.Context, from, to string, ids []string) (map[string][]string, error) {
	out := make(map[string][]string)
	pending := make([]map[string]string, len(ids))
	for i, id := range ids {
		pending[i] = map[string]string{"id": id}
	}
	for len(pending) > 0 {
		inputs := pending[:min(associationReadLimit, len(pending))]
		pending = pending[len(inputs):]
		resp, err := h.client.Do(ctx, api.Standard, http.MethodPost, "/crm/v4/associations/"+from+"/"+to+"/batch/read", map[string]any{"inputs": inputs})
		if err != nil {
			return nil, fmt.Errorf("reading %s to %s associations: %w", from, to, err)
		}
		for _, r := range gjson.GetBytes(resp.Body, "results").Array() {
			id := r.Get("from.id").String()
			for _, t := range r.Get("to").Array() {
				out[id] = append(out[id], idString(t.Get("toObjectId")))
			}
			if after := r.Get("paging.next.after").String(); after != "" {
				pending = append(pending, map[string]string{"id": id, "after": after})
			}
		}
	}
	return out, nil
}

// propertyTypes returns the types of objectType's properties (string,
// number, bool, date, datetime, enumeration), read once.
func (h *hubspotReader) propertyTypes(ctx context.Context, objectType string) (map[string]string, error) {
	h.mu.Lock()
	cached, ok := h.types[objectType]
	h.mu.Unlock()
	if ok {
		return cached, nil
	}
	resp, err := h.client.Do(ctx, api.Standard, http.MethodGet, "/crm/v3/properties/"+objectType, nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s properties: %w", objectType, err)
	}
	var body struct {
		Results []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("reading %s properties: %w", objectType, err)
	}
	types := make(map[string]string, len(body.Results))
	for _, p := range body.Results {
		types[p.Name] = p.Type
	}
	h.mu.Lock()
	if h.types == nil {
		h.types = make(map[string]map[string]string)
	}
	h.types[objectType] = types
	h.mu.Unlock()
	return types, nil
}
