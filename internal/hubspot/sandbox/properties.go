package sandbox

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

//go:embed catalogue/*.json
var catalogueFS embed.FS

// DefaultProperties returns the default property list of a new
// sandbox portal for objectType ("contacts", "companies" or "deals"), in the shape of
// HubSpot's GET /crm/v3/properties/{objectType} response ({"results":[...]}).
func DefaultProperties(objectType string) ([]byte, bool) {
	typ, ok := canonicalType(objectType)
	if !ok {
		return nil, false
	}
	b, err := catalogueFS.ReadFile("catalogue/" + typ + ".json")
	return b, err == nil
}

// property is a property definition as HubSpot's properties API returns it ([S], [O-props]).
type property struct {
	Name                 string   `json:"name"`
	Label                string   `json:"label"`
	Type                 string   `json:"type"`
	FieldType            string   `json:"fieldType"`
	Description          string   `json:"description"`
	GroupName            string   `json:"groupName"`
	Options              []option `json:"options"`
	DisplayOrder         int      `json:"displayOrder"`
	Calculated           bool     `json:"calculated"`
	ExternalOptions      bool     `json:"externalOptions"`
	HasUniqueValue       bool     `json:"hasUniqueValue"`
	Hidden               bool     `json:"hidden"`
	HubspotDefined       bool     `json:"hubspotDefined,omitempty"`
	FormField            bool     `json:"formField"`
	ModificationMetadata modMeta  `json:"modificationMetadata"`
	CreatedAt            string   `json:"createdAt,omitempty"`
	UpdatedAt            string   `json:"updatedAt,omitempty"`
	Archived             bool     `json:"archived"`
}

type option struct {
	Label        string `json:"label"`
	Value        string `json:"value"`
	Description  string `json:"description"`
	DisplayOrder int    `json:"displayOrder"`
	Hidden       bool   `json:"hidden"`
}

type modMeta struct {
	Archivable         bool `json:"archivable"`
	ReadOnlyDefinition bool `json:"readOnlyDefinition"`
	ReadOnlyValue      bool `json:"readOnlyValue"`
}

type group struct {
	Name         string `json:"name"`
	Label        string `json:"label"`
	DisplayOrder int    `json:"displayOrder"`
	Archived     bool   `json:"archived"`
}

// properties is one object type's property definitions and groups.
type properties struct {
	list   []*property // in display order, then creation order
	byName map[string]*property
	groups []group
}

func defaultProperties(typ string) *properties {
	raw, ok := DefaultProperties(typ)
	if !ok {
		panic("hubspot sandbox: no catalogue for " + typ)
	}
	var doc struct {
		Results []*property `json:"results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		panic("hubspot sandbox: bad catalogue " + typ + ": " + err.Error())
	}
	groupsRaw, err := catalogueFS.ReadFile("catalogue/groups.json")
	if err != nil {
		panic("hubspot sandbox: " + err.Error())
	}
	var groups map[string][]group
	if err := json.Unmarshal(groupsRaw, &groups); err != nil {
		panic("hubspot sandbox: bad groups catalogue: " + err.Error())
	}
	p := &properties{byName: map[string]*property{}, groups: groups[typ]}
	for _, prop := range doc.Results {
		p.list = append(p.list, prop)
		p.byName[prop.Name] = prop
	}
	return p
}

// uniqueNames lists the properties whose values identify a record: email
// for contacts (unique by HubSpot's own rule) and every hasUniqueValue
// property.
func (p *properties) uniqueNames(typ string) []string {
	var out []string
	if typ == "contacts" {
		out = append(out, "email")
	}
	for _, prop := range p.list {
		if prop.HasUniqueValue {
			out = append(out, prop.Name)
		}
	}
	return out
}

func (p *properties) isUnique(typ, name string) bool {
	if typ == "contacts" && name == "email" {
		return true
	}
	prop := p.byName[name]
	return prop != nil && prop.HasUniqueValue
}

func (p *properties) hasGroup(name string) bool {
	for _, g := range p.groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

var (
	propertyTypes  = []string{"bool", "date", "datetime", "enumeration", "number", "phone_number", "string"}
	propertyFields = []string{"booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number", "phonenumber", "radio", "select", "text", "textarea"}
)

// maxUniqueProperties is how many unique-ID properties one object may have ([O-props]).
const maxUniqueProperties = 10

func (s *Server) handleListProperties(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"results": s.props[typ].list})
}

func (s *Server) handleGetProperty(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	name := r.PathValue("propertyName")
	s.mu.Lock()
	defer s.mu.Unlock()
	prop := s.props[typ].byName[name]
	if prop == nil {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND",
			fmt.Sprintf("Unable to find property %s for object type %s", name, objectTypeIDs[typ]), nil)
		return
	}
	writeJSON(w, http.StatusOK, prop)
}

// handleCreateProperty creates a property: name, label, type, fieldType and
// groupName are required ([S], [O-props]); at most 10 unique properties per
// object ([O-props]).
func (s *Server) handleCreateProperty(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	var in property
	if !decode(w, r, &in) {
		return
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"name", in.Name}, {"label", in.Label}, {"type", in.Type}, {"fieldType", in.FieldType}, {"groupName", in.GroupName},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		e := newError("VALIDATION_ERROR", "Invalid input JSON: missing required fields: "+strings.Join(missing, ", "))
		for _, m := range missing {
			e.Errors = append(e.Errors, errorDetail{Message: m + " is required", Code: "REQUIRED_FIELD", Context: map[string][]string{"field": {m}}})
		}
		fail(w, e)
		return
	}
	if !slices.Contains(propertyTypes, in.Type) {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Invalid type %q; must be one of %s", in.Type, strings.Join(propertyTypes, ", "))))
		return
	}
	if !slices.Contains(propertyFields, in.FieldType) {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Invalid fieldType %q; must be one of %s", in.FieldType, strings.Join(propertyFields, ", "))))
		return
	}
	if in.Type == "enumeration" && len(in.Options) == 0 && !in.ExternalOptions {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Property %s of type enumeration needs options", in.Name)))
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	props := s.props[typ]
	if props.byName[in.Name] != nil {
		fail(w, newError("CONFLICT", fmt.Sprintf("Property named '%s' already exists.", in.Name)))
		return
	}
	if !props.hasGroup(in.GroupName) {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Property group %s does not exist for object type %s", in.GroupName, objectTypeIDs[typ])))
		return
	}
	if in.HasUniqueValue {
		n := 0
		for _, p := range props.list {
			if p.HasUniqueValue {
				n++
			}
		}
		if n >= maxUniqueProperties {
			fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("Unable to create property %s: the limit of %d unique value properties for object type %s has been reached", in.Name, maxUniqueProperties, objectTypeIDs[typ])))
			return
		}
	}
	now := formatTime(s.cfg.Now())
	prop := &property{
		Name: in.Name, Label: in.Label, Type: in.Type, FieldType: in.FieldType,
		Description: in.Description, GroupName: in.GroupName, Options: in.Options,
		DisplayOrder: in.DisplayOrder, ExternalOptions: in.ExternalOptions,
		HasUniqueValue: in.HasUniqueValue, Hidden: in.Hidden, FormField: in.FormField,
		ModificationMetadata: modMeta{Archivable: true},
		CreatedAt:            now, UpdatedAt: now,
	}
	if prop.Options == nil {
		prop.Options = []option{}
	}
	props.list = append(props.list, prop)
	props.byName[prop.Name] = prop
	if prop.HasUniqueValue {
		s.objects[typ].unique[prop.Name] = map[string]int64{}
	}
	writeJSON(w, http.StatusCreated, prop)
}

func (s *Server) handleListGroups(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"results": s.props[typ].groups})
}

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	var in group
	if !decode(w, r, &in) {
		return
	}
	if in.Name == "" || in.Label == "" {
		fail(w, newError("VALIDATION_ERROR", "Invalid input JSON: name and label are required"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	props := s.props[typ]
	if props.hasGroup(in.Name) {
		fail(w, newError("CONFLICT", fmt.Sprintf("Property group named '%s' already exists.", in.Name)))
		return
	}
	g := group{Name: in.Name, Label: in.Label, DisplayOrder: in.DisplayOrder}
	props.groups = append(props.groups, g)
	writeJSON(w, http.StatusCreated, g)
}

// formatTime formats t the way HubSpot writes timestamps.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// sortedPropertyNames is for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
