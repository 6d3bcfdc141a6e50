package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
		for _, r := range gjson.GetBytes(resp.Body, "results").Array() {
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
	}
	return out, nil
}

// associations returns, for each of ids of type from, the ids of type to
// associated with it (v4 batch read).
func (h *hubspotReader) associations(ctx context.Context, from, to string, ids []string) (map[string][]string, error) {
	out := make(map[string][]string)
	for start := 0; start < len(ids); start += associationReadLimit {
		chunk := ids[start:min(start+associationReadLimit, len(ids))]
		inputs := make([]map[string]string, len(chunk))
		for i, id := range chunk {
			inputs[i] = map[string]string{"id": id}
		}
		resp, err := h.client.Do(ctx, api.Standard, http.MethodPost, "/crm/v4/associations/"+from+"/"+to+"/batch/read", map[string]any{"inputs": inputs})
		if err != nil {
			return nil, fmt.Errorf("reading %s to %s associations: %w", from, to, err)
		}
		for _, r := range gjson.GetBytes(resp.Body, "results").Array() {
			id := r.Get("from.id").String()
			for _, t := range r.Get("to").Array() {
				out[id] = append(out[id], idString(t.Get("toObjectId")))
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
