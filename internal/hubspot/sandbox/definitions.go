package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Custom event definitions ([O-events-def]; the facts below are from
// developers.sandbox.com/docs/api-reference/legacy/events/define-events/guide
// and HubSpot's OpenAPI-generated SDK type ExternalBehavioralEventTypeDefinition):
//   - POST /events/v3/event-definitions takes label (required, at most 100
//     characters), name (at most 50, a lowercase letter then letters,
//     digits and underscores), primaryObject (CONTACT, COMPANY, DEAL,
//     TICKET), includeDefaultProperties and at most 50 propertyDefinitions;
//   - fullyQualifiedName is pe{HubID}_{name} ([O-events] send guide);
//   - property types are string, number, enumeration, datetime (and bool,
//     date in the newer guide); an enumeration needs options;
//   - POST /events/v3/event-definitions/{eventName}/property adds one;
//   - GET /events/v3/event-definitions/{eventName} reads one by its name.
// Not documented, and chosen here: 201 on create, 404 OBJECT_NOT_FOUND for
// a name that has no definition, 409 CONFLICT for a name or property that
// exists. The send endpoints accept any event name: HubSpot's answer to an
// undefined one is not documented.

const (
	maxEventLabel = 100
	maxEventDefs  = 500 // per account ([O-events])
)

var eventPropertyTypes = map[string]bool{"string": true, "number": true, "enumeration": true, "datetime": true, "bool": true, "date": true}

// eventDefinition is a stored custom event definition.
type eventDefinition struct {
	ID            string
	Name          string
	Label         string
	Description   string
	PrimaryObject string
	CreatedAt     time.Time
	Properties    []eventPropertyBody
}

// eventPropertyBody is an event property as the create requests give it
// (hubspot-sdk 0.1.0a9 ExternalBehavioralEventPropertyCreateParam).
type eventPropertyBody struct {
	Name        string        `json:"name"`
	Label       string        `json:"label"`
	Description string        `json:"description"`
	Type        string        `json:"type"`
	Options     []eventOption `json:"options"`
}

// eventOption is an option of an enumeration property; hubspot-sdk
// 0.1.0a9's Option requires hidden, label and value.
type eventOption struct {
	Label        string `json:"label"`
	Value        string `json:"value"`
	Description  string `json:"description,omitempty"`
	DisplayOrder int    `json:"displayOrder"`
	Hidden       bool   `json:"hidden"`
}

// eventDefinitionAnswer is a definition as HubSpot answers it. hubspot-sdk
// 0.1.0a9's ExternalBehavioralEventTypeDefinition requires id, archived,
// associations, fullyQualifiedName, labels (singular required, plural
// optional), name, objectTypeId and properties, and declares no label
// key; description, primaryObject, primaryObjectId and createdAt are
// optional. The objectTypeId 6-{id} is the sandbox's choice.
type eventDefinitionAnswer struct {
	ID                 string                `json:"id"`
	Name               string                `json:"name"`
	Labels             eventDefinitionLabels `json:"labels"`
	Description        string                `json:"description"`
	FullyQualifiedName string                `json:"fullyQualifiedName"`
	ObjectTypeID       string                `json:"objectTypeId"`
	PrimaryObject      string                `json:"primaryObject"`
	PrimaryObjectID    string                `json:"primaryObjectId"`
	Archived           bool                  `json:"archived"`
	Associations       []struct{}            `json:"associations"`
	CreatedAt          time.Time             `json:"createdAt"`
	Properties         []eventPropertyAnswer `json:"properties"`
}

type eventDefinitionLabels struct {
	Singular string `json:"singular"`
}

// eventPropertyAnswer is an event property as HubSpot answers it:
// hubspot-sdk 0.1.0a9 types it as the CRM Property, which requires
// description, fieldType, groupName, label, name, options and type. The
// fieldType of each type and the group name are the sandbox's choice.
type eventPropertyAnswer struct {
	Name        string        `json:"name"`
	Label       string        `json:"label"`
	Description string        `json:"description"`
	Type        string        `json:"type"`
	FieldType   string        `json:"fieldType"`
	GroupName   string        `json:"groupName"`
	Options     []eventOption `json:"options"`
}

var eventFieldTypes = map[string]string{"string": "text", "number": "number", "enumeration": "select", "datetime": "date", "date": "date", "bool": "booleancheckbox"}

// primaryObjectIDs are the object type ids of the primary objects ([S]).
var primaryObjectIDs = map[string]string{"CONTACT": "0-1", "COMPANY": "0-2", "DEAL": "0-3", "TICKET": "0-5"}

func (p eventPropertyBody) answer() eventPropertyAnswer {
	options := p.Options
	if options == nil {
		options = []eventOption{}
	}
	return eventPropertyAnswer{Name: p.Name, Label: p.Label, Description: p.Description, Type: p.Type,
		FieldType: eventFieldTypes[p.Type], GroupName: "event_properties", Options: options}
}

// answer is the definition as HubSpot answers it, for the portal hubID.
func (d *eventDefinition) answer(hubID int64) eventDefinitionAnswer {
	out := eventDefinitionAnswer{ID: d.ID, Name: d.Name, Labels: eventDefinitionLabels{Singular: d.Label}, Description: d.Description,
		FullyQualifiedName: "pe" + strconv.FormatInt(hubID, 10) + "_" + d.Name, ObjectTypeID: "6-" + d.ID,
		PrimaryObject: d.PrimaryObject, PrimaryObjectID: primaryObjectIDs[d.PrimaryObject],
		Associations: []struct{}{}, CreatedAt: d.CreatedAt, Properties: []eventPropertyAnswer{}}
	for _, p := range d.Properties {
		out.Properties = append(out.Properties, p.answer())
	}
	return out
}

// defaultEventProperties are some of the 32 default properties a
// definition gets with includeDefaultProperties.
var defaultEventProperties = []string{"hs_city", "hs_country", "hs_page_url", "hs_browser", "hs_referrer", "hs_device_type"}

// EventDefinitions returns the custom event definitions, by name.
func (s *Server) EventDefinitions() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.eventDefs))
	for name, d := range s.eventDefs {
		var props []string
		for _, p := range d.Properties {
			props = append(props, p.Name+":"+p.Type)
		}
		sort.Strings(props)
		out[name] = props
	}
	return out
}

func (s *Server) handleCreateEventDefinition(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name                     string              `json:"name"`
		Label                    string              `json:"label"`
		Description              string              `json:"description"`
		PrimaryObject            string              `json:"primaryObject"`
		IncludeDefaultProperties *bool               `json:"includeDefaultProperties"`
		PropertyDefinitions      []eventPropertyBody `json:"propertyDefinitions"`
	}
	if !decode(w, r, &in) {
		return
	}
	switch {
	case in.Label == "" || len(in.Label) > maxEventLabel:
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("label is required and at most %d characters", maxEventLabel)))
		return
	case in.Name == "" || len(in.Name) > maxEventName || !eventNameRe.MatchString(in.Name):
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("name %q must be at most %d lowercase letters, digits and underscores, starting with a letter", in.Name, maxEventName)))
		return
	case len(in.PropertyDefinitions) > maxEventProperties:
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("an event has at most %d custom properties", maxEventProperties)))
		return
	}
	primary := in.PrimaryObject
	if primary == "" {
		primary = "CONTACT"
	}
	if primary != "CONTACT" && primary != "COMPANY" && primary != "DEAL" && primary != "TICKET" {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("primaryObject %q is not CONTACT, COMPANY, DEAL or TICKET", in.PrimaryObject)))
		return
	}
	for _, p := range in.PropertyDefinitions {
		if err := checkEventProperty(p); err != nil {
			fail(w, err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eventDefs[in.Name]; ok {
		fail(w, newError("CONFLICT", fmt.Sprintf("an event named %s already exists", in.Name)))
		return
	}
	if len(s.eventDefs) >= maxEventDefs {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("an account has at most %d event definitions", maxEventDefs)))
		return
	}
	s.nextID++
	def := &eventDefinition{ID: strconv.FormatInt(s.nextID, 10), Name: in.Name, Label: in.Label, Description: in.Description,
		PrimaryObject: primary, CreatedAt: s.cfg.Now().UTC(), Properties: append([]eventPropertyBody{}, in.PropertyDefinitions...)}
	if in.IncludeDefaultProperties == nil || *in.IncludeDefaultProperties {
		for _, name := range defaultEventProperties {
			def.Properties = append(def.Properties, eventPropertyBody{Name: name, Label: name, Type: "string"})
		}
	}
	s.eventDefs[in.Name] = def
	writeJSON(w, http.StatusCreated, def.answer(s.cfg.HubID))
}

func (s *Server) handleGetEventDefinition(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if def, ok := s.eventDefinition(w, r); ok {
		writeJSON(w, http.StatusOK, def.answer(s.cfg.HubID))
	}
}

// eventDefinition finds the definition a request's path names, or answers
// 404. Call with s.mu held.
func (s *Server) eventDefinition(w http.ResponseWriter, r *http.Request) (*eventDefinition, bool) {
	def, ok := s.eventDefs[r.PathValue("eventName")]
	if !ok {
		fail(w, newError("OBJECT_NOT_FOUND", "no event definition named "+r.PathValue("eventName")))
	}
	return def, ok
}

func (s *Server) handleCreateEventProperty(w http.ResponseWriter, r *http.Request) {
	var p eventPropertyBody
	if !decode(w, r, &p) {
		return
	}
	if err := checkEventProperty(p); err != nil {
		fail(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	def, ok := s.eventDefinition(w, r)
	if !ok {
		return
	}
	custom := 0
	for _, have := range def.Properties {
		if have.Name == p.Name {
			fail(w, newError("CONFLICT", fmt.Sprintf("event %s already has a property named %s", def.Name, p.Name)))
			return
		}
		if !slices.Contains(defaultEventProperties, have.Name) {
			custom++
		}
	}
	if custom >= maxEventProperties {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("an event has at most %d custom properties", maxEventProperties)))
		return
	}
	def.Properties = append(def.Properties, p)
	// hubspot-sdk 0.1.0a9 types the answer as the CRM Property.
	writeJSON(w, http.StatusCreated, p.answer())
}

func checkEventProperty(p eventPropertyBody) *errorBody {
	switch {
	case p.Name == "" || len(p.Name) > maxEventName || !eventNameRe.MatchString(p.Name):
		return newError("VALIDATION_ERROR", fmt.Sprintf("property name %q must be at most %d lowercase letters, digits and underscores, starting with a letter", p.Name, maxEventName))
	case p.Label == "" || len(p.Label) > maxEventName:
		return newError("VALIDATION_ERROR", fmt.Sprintf("property %s needs a label of at most %d characters", p.Name, maxEventName))
	case !eventPropertyTypes[p.Type]:
		return newError("VALIDATION_ERROR", fmt.Sprintf("property %s has type %q, not one of string, number, enumeration, datetime, bool, date", p.Name, p.Type))
	case p.Type == "enumeration" && len(p.Options) == 0:
		return newError("VALIDATION_ERROR", fmt.Sprintf("enumeration property %s needs at least one option", p.Name))
	}
	return nil
}
