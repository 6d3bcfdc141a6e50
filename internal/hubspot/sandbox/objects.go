package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// objectTypeIDs are HubSpot's ids of the object types the sandbox holds ([O-assoc], [S]).
var objectTypeIDs = map[string]string{"contacts": "0-1", "companies": "0-2", "deals": "0-3"}

// canonicalType maps the names HubSpot accepts for an object type to
// "contacts", "companies" or "deals".
func canonicalType(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "contacts", "contact", "0-1":
		return "contacts", true
	case "companies", "company", "0-2":
		return "companies", true
	case "deals", "deal", "0-3":
		return "deals", true
	}
	return "", false
}

func (s *Server) objectTypeOrFail(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	name := r.PathValue(key)
	typ, ok := canonicalType(name)
	if !ok {
		fail(w, newError("VALIDATION_ERROR", "Unable to infer object type from: "+name))
	}
	return typ, ok
}

// maxBody bounds request bodies.
const maxBody = 16 << 20

// decode reads a JSON body into v, answering 400 when it is not valid JSON
// of the expected shape.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		fail(w, newError("VALIDATION_ERROR", "Invalid input JSON: "+err.Error()))
		return false
	}
	return decodeBytes(w, data, v)
}

// decodeInputs reads a batch body, {"inputs": [...]}, answering 400 when it
// is not valid JSON or holds more than max inputs.
func decodeInputs[T any](w http.ResponseWriter, r *http.Request, max int) ([]T, bool) {
	var body struct {
		Inputs []T `json:"inputs"`
	}
	if !decode(w, r, &body) {
		return nil, false
	}
	if len(body.Inputs) > max {
		fail(w, batchTooLarge(len(body.Inputs), max))
		return nil, false
	}
	return body.Inputs, true
}

func decodeBytes(w http.ResponseWriter, data []byte, v any) bool {
	if err := json.Unmarshal(data, v); err != nil {
		fail(w, newError("VALIDATION_ERROR", "Invalid input JSON: "+err.Error()))
		return false
	}
	return true
}

// record is one CRM record.
type record struct {
	id        int64
	props     map[string]string
	createdAt time.Time
	updatedAt time.Time
	// versions are the record's properties after each write, oldest first,
	// kept with a search lag: search sees the newest one older than the lag.
	versions []version
	// history holds each property's values, newest first, for
	// propertiesWithHistory.
	history map[string][]historyEntry
	// archivedAt is when the record was archived (zero: it is not).
	archivedAt time.Time
}

// historyEntry is one value of a property as propertiesWithHistory shows
// it ([S-crm]).
type historyEntry struct {
	Value      string `json:"value"`
	Timestamp  string `json:"timestamp"`
	SourceType string `json:"sourceType"`
	SourceID   string `json:"sourceId,omitempty"`
}

// version is a record's properties as one write left them.
type version struct {
	at    time.Time
	props map[string]string
}

// remember keeps the record's properties as they are now for search.
func (rec *record) remember(now time.Time) {
	props := make(map[string]string, len(rec.props))
	for k, v := range rec.props {
		props[k] = v
	}
	rec.versions = append(rec.versions, version{at: now, props: props})
}

// asOf returns the record as search sees it at cutoff: its newest version
// written at or before cutoff, nil when it did not exist yet. Older
// versions are dropped: search never needs them again.
func (rec *record) asOf(cutoff time.Time) *record {
	n := 0
	for n < len(rec.versions) && !rec.versions[n].at.After(cutoff) {
		n++
	}
	if n == 0 {
		return nil
	}
	rec.versions = rec.versions[n-1:]
	v := rec.versions[0]
	return &record{id: rec.id, props: v.props, createdAt: rec.createdAt, updatedAt: v.at}
}

// objects holds the records of one object type with an index of unique
// values.
type objects struct {
	typ    string
	byID   map[int64]*record
	unique map[string]map[string]int64 // property -> value key -> record id
	// archived holds the archived records, out of byID: reads, search and
	// associations do not see them.
	archived map[int64]*record
	// mergedInto maps the id of a record merged away to the record it now
	// is part of.
	mergedInto map[int64]int64
}

func newSBObjects(typ string) *objects {
	o := &objects{typ: typ, byID: map[int64]*record{}, unique: map[string]map[string]int64{},
		archived: map[int64]*record{}, mergedInto: map[int64]int64{}}
	if typ == "contacts" {
		o.unique["email"] = map[string]int64{}
	}
	return o
}

// uniqueKey is the index key of a unique value: emails match whatever
// their case.
func uniqueKey(prop, v string) string {
	if prop == "email" {
		return strings.ToLower(v)
	}
	return v
}

func (o *objects) lookup(prop, v string) *record {
	idx := o.unique[prop]
	if idx == nil {
		return nil
	}
	id, ok := idx[uniqueKey(prop, v)]
	if !ok {
		return nil
	}
	return o.byID[id]
}

func (o *objects) sortedIDs() []int64 { return sortedIDs(o.byID) }

// sortedIDs lists the ids of records in order.
func sortedIDs(byID map[int64]*record) []int64 {
	ids := make([]int64, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// set writes one property value, keeping the unique index in step. An empty
// value clears the property.
func (o *objects) set(rec *record, prop, v string) {
	if idx := o.unique[prop]; idx != nil {
		if old, ok := rec.props[prop]; ok && idx[uniqueKey(prop, old)] == rec.id {
			delete(idx, uniqueKey(prop, old))
		}
		if v != "" {
			idx[uniqueKey(prop, v)] = rec.id
		}
	}
	if v == "" {
		delete(rec.props, prop)
		return
	}
	rec.props[prop] = v
}

// Record is a copy of one sandbox CRM record.
type Record struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
	CreatedAt  time.Time         `json:"createdAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
}

// Objects returns a copy of every live record of objectType ("contacts",
// "companies" or "deals", or their singular and 0-1/0-2/0-3 forms), in id
// order.
func (s *Server) Objects(objectType string) []Record {
	typ, ok := canonicalType(objectType)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[typ]
	out := []Record{}
	for _, id := range o.sortedIDs() {
		rec := o.byID[id]
		props := make(map[string]string, len(rec.props))
		for k, v := range rec.props {
			props[k] = v
		}
		out = append(out, Record{ID: strconv.FormatInt(id, 10), Properties: props, CreatedAt: rec.createdAt, UpdatedAt: rec.updatedAt})
	}
	return out
}

// Contacts returns a copy of every contact, in id order.
func (s *Server) Contacts() []Record { return s.Objects("contacts") }

// Companies returns a copy of every company, in id order.
func (s *Server) Companies() []Record { return s.Objects("companies") }

// Deals returns a copy of every deal, in id order.
func (s *Server) Deals() []Record { return s.Objects("deals") }

// --- property values ---

var (
	dateRe  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	epochRe = regexp.MustCompile(`^-?\d+$`)
	emailRe = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// maxString is the longest string value ([O-props]).
const maxString = 65536

// checkValue validates v for prop and returns the value as HubSpot stores
// it: dates as YYYY-MM-DD, datetimes as ISO 8601 in UTC ([O-props]).
func (s *Server) checkValue(typ string, prop *property, v string) (string, *propIssue) {
	issue := func(code, msg string) (string, *propIssue) {
		return "", &propIssue{name: prop.Name, code: code, message: msg}
	}
	if prop.ModificationMetadata.ReadOnlyValue {
		return issue("READ_ONLY_VALUE", fmt.Sprintf("Property %q is read-only", prop.Name))
	}
	if v == "" {
		return "", nil // clears the value ([O-props])
	}
	switch prop.Type {
	case "string", "phone_number":
		if len(v) > maxString {
			return issue("INVALID_STRING", fmt.Sprintf("%s is longer than %d characters", prop.Name, maxString))
		}
		if typ == "contacts" && prop.Name == "email" && !emailRe.MatchString(v) {
			return issue("INVALID_EMAIL", fmt.Sprintf("Email address %s is invalid", v))
		}
		return v, nil
	case "number":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return issue("INVALID_INTEGER", fmt.Sprintf("%s was not a valid number", prop.Name))
		}
		return v, nil
	case "bool":
		switch strings.ToLower(v) {
		case "true", "false":
			return strings.ToLower(v), nil
		}
		return issue("INVALID_BOOLEAN", fmt.Sprintf("%q is not a valid boolean; use true or false", v))
	case "date":
		return s.checkDate(prop, v)
	case "datetime":
		if epochRe.MatchString(v) {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return issue("INVALID_DATETIME", fmt.Sprintf("%s was not a valid datetime", v))
			}
			return formatTime(time.UnixMilli(ms)), nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return formatTime(t), nil
			}
		}
		return issue("INVALID_DATETIME", fmt.Sprintf("%s was not a valid datetime", v))
	case "enumeration":
		if prop.ExternalOptions {
			return v, nil
		}
		values := []string{v}
		if prop.FieldType == "checkbox" {
			values = nil
			for _, part := range strings.Split(v, ";") {
				if part != "" {
					values = append(values, part)
				}
			}
		}
		allowed := make([]string, len(prop.Options))
		for i, o := range prop.Options {
			allowed[i] = o.Value
		}
		for _, x := range values {
			if !slices.Contains(allowed, x) {
				return issue("INVALID_OPTION", fmt.Sprintf("%s was not one of the allowed options: [%s]", x, strings.Join(allowed, ", ")))
			}
		}
		return v, nil
	}
	return v, nil
}

// checkDate accepts YYYY-MM-DD, or an instant (epoch ms or ISO 8601) at
// midnight UTC; any other instant is INVALID_DATE ([O-props], [C-date]).
func (s *Server) checkDate(prop *property, v string) (string, *propIssue) {
	if dateRe.MatchString(v) {
		if _, err := time.Parse("2006-01-02", v); err == nil {
			return v, nil
		}
	}
	var t time.Time
	parsed := false
	if epochRe.MatchString(v) {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			t, parsed = time.UnixMilli(ms).UTC(), true
		}
	} else if tt, err := time.Parse(time.RFC3339Nano, v); err == nil {
		t, parsed = tt.UTC(), true
	}
	if !parsed {
		return "", &propIssue{name: prop.Name, code: "INVALID_DATE", message: fmt.Sprintf("%s is not a valid date", v)}
	}
	if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
		return "", &propIssue{name: prop.Name, code: "INVALID_DATE", message: fmt.Sprintf("%s is at %02d:%02d:%02d.%03d UTC, not midnight!",
			v, t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/int(time.Millisecond))}
	}
	return t.Format("2006-01-02"), nil
}

// checkProps validates one input's properties. A value that is not a JSON
// string fails the whole request (values are typed as strings, [S]); the
// other problems are the input's own.
func (s *Server) checkProps(typ string, raw map[string]json.RawMessage) (map[string]string, []propIssue, *errorBody) {
	out := make(map[string]string, len(raw))
	var issues []propIssue
	defs := s.props[typ]
	for _, name := range sortedKeys(raw) {
		rv := raw[name]
		var v string
		if len(rv) == 0 || rv[0] != '"' || json.Unmarshal(rv, &v) != nil {
			e := newError("VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON: the value of property %q is %s; property values must be strings", name, jsonKind(rv)))
			e.Errors = []errorDetail{{Message: "property values must be strings", Code: "INVALID_TYPE", Context: map[string][]string{"propertyName": {name}}}}
			return nil, nil, e
		}
		prop := defs.byName[name]
		if prop == nil {
			issues = append(issues, propIssue{name: name, code: "PROPERTY_DOESNT_EXIST", message: fmt.Sprintf("Property %q does not exist", name)})
			continue
		}
		nv, issue := s.checkValue(typ, prop, v)
		if issue != nil {
			issues = append(issues, *issue)
			continue
		}
		out[name] = nv
	}
	return out, issues, nil
}

func jsonKind(rv json.RawMessage) string {
	if len(rv) == 0 {
		return "missing"
	}
	switch rv[0] {
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a number"
}

// --- batch writes ---

type writeMode int

const (
	create writeMode = iota
	update
	upsert
)

type writeInput struct {
	ID                 string                     `json:"id"`
	IDProperty         string                     `json:"idProperty"`
	Properties         map[string]json.RawMessage `json:"properties"`
	ObjectWriteTraceID string                     `json:"objectWriteTraceId"`
}

// maxBatch is the object batch limit ([O-objapis], [O-contacts], [O24-usage]).
const maxBatch = 100

// plan is what one input will do once the whole batch is checked.
type plan struct {
	in     *writeInput
	target *record // nil: create a record with id newID
	newID  int64
	props  map[string]string
	err    *errorBody
}

type objectOut struct {
	ID                 string             `json:"id"`
	Properties         map[string]*string `json:"properties"`
	PropertiesHistory  map[string]any     `json:"propertiesWithHistory,omitempty"`
	CreatedAt          string             `json:"createdAt"`
	UpdatedAt          string             `json:"updatedAt"`
	Archived           bool               `json:"archived"`
	New                *bool              `json:"new,omitempty"`
	ObjectWriteTraceID string             `json:"objectWriteTraceId,omitempty"`
}

type batchOut struct {
	Status      string          `json:"status"`
	Results     []objectOut     `json:"results"`
	NumErrors   int             `json:"numErrors,omitempty"`
	Errors      []standardError `json:"errors,omitempty"`
	StartedAt   string          `json:"startedAt"`
	CompletedAt string          `json:"completedAt"`
}

func (s *Server) handleBatchUpsert(w http.ResponseWriter, r *http.Request) {
	s.batchWrite(w, r, upsert)
}

func (s *Server) handleBatchCreate(w http.ResponseWriter, r *http.Request) {
	s.batchWrite(w, r, create)
}

func (s *Server) handleBatchUpdate(w http.ResponseWriter, r *http.Request) {
	s.batchWrite(w, r, update)
}

func batchTooLarge(n, max int) *errorBody {
	return newError("VALIDATION_ERROR", fmt.Sprintf("Batch input size %d exceeds the limit of %d inputs per request", n, max))
}

func (s *Server) nonUniqueError(typ, prop string) *errorBody {
	return newError("VALIDATION_ERROR", fmt.Sprintf("Unable to perform update/upsert by non-unique %s property %s in portal ID %d", objectTypeIDs[typ], prop, s.cfg.HubID))
}

func singular(typ string) string {
	switch typ {
	case "companies":
		return "Company"
	case "deals":
		return "Deal"
	}
	return "Contact"
}

// batchWrite runs batch/create, batch/update and batch/upsert. Every input is
// checked before anything is written. When a failing input carries an
// objectWriteTraceId, its error is reported in a 207 and the other inputs are
// written ([O-err]); otherwise the first failure fails the whole request and
// nothing is written ([O-objapis]).
func (s *Server) batchWrite(w http.ResponseWriter, r *http.Request, mode writeMode) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	inputs, ok := decodeInputs[writeInput](w, r, maxBatch)
	if !ok {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if e := s.checkBatchIDs(typ, mode, inputs); e != nil {
		fail(w, e)
		return
	}
	plans, failed, e := s.planBatch(typ, mode, inputs)
	if e != nil {
		fail(w, e)
		return
	}
	if len(failed) > 0 && !s.reportsPerInput(typ, mode, inputs, failed) {
		e := *plans[failed[0]].err
		e.Context = nil
		fail(w, &e)
		return
	}

	out := s.applyPlans(typ, mode, plans, now, s.apiOrigin(r))
	out.StartedAt = formatTime(now)
	out.CompletedAt = formatTime(s.cfg.Now())
	status := http.StatusOK
	if mode == create {
		status = http.StatusCreated
	}
	if out.NumErrors > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, out)
}

// checkBatchIDs runs the whole-request checks of an update or upsert: every
// idProperty is unique and no id comes twice.
func (s *Server) checkBatchIDs(typ string, mode writeMode, inputs []writeInput) *errorBody {
	if mode == create {
		return nil
	}
	defs := s.props[typ]
	seen := map[string]bool{}
	for i := range inputs {
		in := &inputs[i]
		if in.IDProperty != "" && !defs.isUnique(typ, in.IDProperty) {
			return s.nonUniqueError(typ, in.IDProperty)
		}
		key := in.IDProperty + "\x00" + uniqueKey(in.IDProperty, in.ID)
		if seen[key] {
			return newError("VALIDATION_ERROR", fmt.Sprintf("Duplicate IDs found in batch input: [%s]. IDs must be unique", in.ID))
		}
		seen[key] = true
	}
	return nil
}

// planBatch plans every input in order, so that an input sees the unique
// values claimed by earlier ones. It returns the plans and the indexes of
// the inputs that fail, their errors tagged with their objectWriteTraceId;
// a returned *errorBody fails the whole request.
func (s *Server) planBatch(typ string, mode writeMode, inputs []writeInput) ([]plan, []int, *errorBody) {
	pending := map[string]map[string]int64{} // unique values claimed by earlier inputs of this batch
	plans := make([]plan, len(inputs))
	var failed []int
	for i := range inputs {
		in := &inputs[i]
		plan, werr := s.planWrite(typ, mode, in, pending)
		if werr != nil {
			return nil, nil, werr
		}
		plans[i] = plan
		if plan.err != nil {
			if in.ObjectWriteTraceID != "" {
				plan.err.Context = map[string][]string{"objectWriteTraceId": {in.ObjectWriteTraceID}}
			}
			failed = append(failed, i)
		}
	}
	return plans, failed, nil
}

// reportsPerInput tells whether the failed inputs are reported one by one in
// a 207: only when each carries an objectWriteTraceId, and, with
// EmailUpsertAllOrNothing, never for a contact upsert by email.
func (s *Server) reportsPerInput(typ string, mode writeMode, inputs []writeInput, failed []int) bool {
	for _, i := range failed {
		if inputs[i].ObjectWriteTraceID == "" {
			return false
		}
	}
	if mode == upsert && typ == "contacts" && s.cfg.EmailUpsertAllOrNothing {
		for _, in := range inputs {
			if in.IDProperty == "email" {
				return false
			}
		}
	}
	return true
}

// applyPlans writes every plan without an error and reports each input: its
// record, or its error.
func (s *Server) applyPlans(typ string, mode writeMode, plans []plan, now time.Time, o origin) batchOut {
	objs := s.objects[typ]
	out := batchOut{Status: "COMPLETE", Results: []objectOut{}}
	for i := range plans {
		p := &plans[i]
		if p.err != nil {
			out.Errors = append(out.Errors, asStandardError(p.err))
			continue
		}
		rec, created := s.applyPlan(objs, p, now, o)
		res := recordOut(rec, nil)
		res.ObjectWriteTraceID = p.in.ObjectWriteTraceID
		if mode == upsert {
			res.New = &created
		}
		out.Results = append(out.Results, res)
	}
	out.NumErrors = len(out.Errors)
	return out
}

// planWrite checks one input. A returned *errorBody fails the whole request;
// plan.err is the input's own failure.
func (s *Server) planWrite(typ string, mode writeMode, in *writeInput, pending map[string]map[string]int64) (plan, *errorBody) {
	plan := plan{in: in}
	objs := s.objects[typ]
	props, issues, werr := s.checkProps(typ, in.Properties)
	if werr != nil {
		return plan, werr
	}

	switch mode {
	case update, upsert:
		if in.IDProperty != "" {
			plan.target = objs.lookup(in.IDProperty, in.ID)
		} else if id, err := strconv.ParseInt(in.ID, 10, 64); err == nil {
			plan.target = objs.byID[id]
		}
		if plan.target == nil && (mode == update || in.IDProperty == "") {
			plan.err = newError("OBJECT_NOT_FOUND", fmt.Sprintf("Object not found. No %s with %s %s", strings.ToLower(singular(typ)), orDefault(in.IDProperty, "id"), in.ID))
			return plan, nil
		}
		if plan.target == nil && !slices.ContainsFunc(issues, func(is propIssue) bool { return is.name == in.IDProperty }) {
			// Upsert of a new record: the id is the idProperty's value.
			nv, issue := s.checkValue(typ, s.props[typ].byName[in.IDProperty], in.ID)
			if issue != nil {
				issues = append(issues, *issue)
			} else if in.ID == "" {
				issues = append(issues, propIssue{name: in.IDProperty, code: "INVALID_VALUE", message: "id must not be empty"})
			} else {
				props[in.IDProperty] = nv
			}
		}
	}
	if len(issues) > 0 {
		plan.err = propertyError(s.cfg.HubID, issues)
		return plan, nil
	}

	selfID := int64(0)
	if plan.target != nil {
		selfID = plan.target.id
	}
	for _, u := range s.props[typ].uniqueNames(typ) {
		v, ok := props[u]
		if !ok || v == "" {
			continue
		}
		key := uniqueKey(u, v)
		if owner, ok := objs.unique[u][key]; ok && owner != selfID {
			plan.err = newError("CONFLICT", fmt.Sprintf("%s already exists. Existing ID: %d", singular(typ), owner))
			return plan, nil
		}
		if owner, ok := pending[u][key]; ok && owner != selfID {
			plan.err = newError("CONFLICT", fmt.Sprintf("%s already exists. Existing ID: %d", singular(typ), owner))
			return plan, nil
		}
	}

	if plan.target == nil {
		plan.newID = s.nextID
		s.nextID++
		selfID = plan.newID
	}
	for _, u := range s.props[typ].uniqueNames(typ) {
		if v, ok := props[u]; ok && v != "" {
			if pending[u] == nil {
				pending[u] = map[string]int64{}
			}
			pending[u][uniqueKey(u, v)] = selfID
		}
	}
	plan.props = props
	return plan, nil
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// applyPlan writes one checked input and reports whether it created a record.
func (s *Server) applyPlan(objs *objects, p *plan, now time.Time, o origin) (*record, bool) {
	rec := p.target
	if rec == nil {
		rec = s.newRecord(objs, p.newID, now, o)
	}
	s.writeProps(objs, rec, p.props, now, o)
	return rec, p.target == nil
}

// newRecord adds an empty record with id and journals its creation.
// Callers hold s.mu.
func (s *Server) newRecord(objs *objects, id int64, now time.Time, o origin) *record {
	rec := &record{id: id, props: map[string]string{}, createdAt: now, history: map[string][]historyEntry{}}
	objs.byID[id] = rec
	rec.props["hs_object_id"] = strconv.FormatInt(id, 10)
	rec.props["createdate"] = formatTime(now)
	s.record(o, Change{Kind: ChangeCreation, ObjectType: objs.typ, ObjectID: id, OccurredAt: now})
	return rec
}

// writeProps writes checked property values to a record, stamps its
// modified dates and journals each value that changed. Callers hold s.mu.
func (s *Server) writeProps(objs *objects, rec *record, props map[string]string, now time.Time, o origin) {
	defs := s.props[objs.typ]
	for _, name := range sortedKeys(props) {
		v := props[name]
		if prop := defs.byName[name]; prop != nil && prop.FieldType == "checkbox" && strings.HasPrefix(v, ";") {
			// ";A;B" appends to a multi-checkbox ([O-props]).
			if old := rec.props[name]; old != "" {
				v = old + v
			} else {
				v = strings.TrimPrefix(v, ";")
			}
		}
		old, had := rec.props[name]
		objs.set(rec, name, v)
		if had && old == v || !had && v == "" {
			continue
		}
		rec.history[name] = append([]historyEntry{{Value: v, Timestamp: formatTime(now), SourceType: o.source, SourceID: o.sourceID}}, rec.history[name]...)
		s.record(o, Change{Kind: ChangePropertyChange, ObjectType: objs.typ, ObjectID: rec.id, OccurredAt: now, Property: name, Value: v})
	}
	s.touch(objs, rec, now)
}

// touch stamps a record's modified dates: lastmodifieddate on contacts,
// hs_lastmodifieddate on every type ([O-search]). Callers hold s.mu.
func (s *Server) touch(objs *objects, rec *record, now time.Time) {
	rec.updatedAt = now
	if objs.typ == "contacts" {
		rec.props["lastmodifieddate"] = formatTime(now)
	}
	rec.props["hs_lastmodifieddate"] = formatTime(now)
	if s.cfg.SearchLag > 0 {
		rec.remember(now)
	}
}

// recordOut renders a record. names nil means every property it has.
func recordOut(rec *record, names []string) objectOut {
	props := map[string]*string{}
	if names == nil {
		for k, v := range rec.props {
			v := v
			props[k] = &v
		}
	} else {
		for _, k := range names {
			if v, ok := rec.props[k]; ok {
				props[k] = &v
			} else {
				props[k] = nil
			}
		}
	}
	return objectOut{
		ID:         strconv.FormatInt(rec.id, 10),
		Properties: props,
		CreatedAt:  formatTime(rec.createdAt),
		UpdatedAt:  formatTime(rec.updatedAt),
	}
}

// --- reads ---

// defaultReadProperties are the properties reads return when none are asked for.
var defaultReadProperties = map[string][]string{
	"contacts":  {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
	"companies": {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"},
	"deals":     {"amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline"},
}

// alwaysRead are the properties every read returns besides the requested
// ones: the record id, its creation and its last modification, under the
// type's own name (lastmodifieddate for contacts, hs_lastmodifieddate for
// the others, [O-search], [C-85019]).
var alwaysRead = map[string][]string{
	"contacts":  {"createdate", "hs_object_id", "lastmodifieddate"},
	"companies": {"createdate", "hs_lastmodifieddate", "hs_object_id"},
	"deals":     {"createdate", "hs_lastmodifieddate", "hs_object_id"},
}

// readNames picks the requested properties that exist, with the ones every
// read returns, or the defaults when none are requested.
func (s *Server) readNames(typ string, requested []string) []string {
	if len(requested) == 0 {
		return defaultReadProperties[typ]
	}
	out := slices.Clone(alwaysRead[typ])
	for _, n := range requested {
		if s.props[typ].byName[n] != nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func queryList(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func (s *Server) handleGetObject(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	q := r.URL.Query()
	idProp := q.Get("idProperty")
	id := r.PathValue("objectId")
	s.mu.Lock()
	defer s.mu.Unlock()
	if idProp != "" && !s.props[typ].isUnique(typ, idProp) && idProp != "hs_object_id" {
		fail(w, s.nonUniqueError(typ, idProp))
		return
	}
	rec := s.findRecord(typ, idProp, id)
	if rec == nil {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", nil)
		return
	}
	writeJSON(w, http.StatusOK, recordOut(rec, s.readNames(typ, queryList(q, "properties"))))
}

// findRecord finds a live record by id, or by the value of a unique
// property. The id of a record merged away finds the record it was merged
// into ([O-cl-merge]: "fetching any records using the original IDs will
// return the new merged record").
func (s *Server) findRecord(typ, idProp, id string) *record {
	objs := s.objects[typ]
	if idProp != "" && idProp != "hs_object_id" {
		return objs.lookup(idProp, id)
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	if into, ok := objs.mergedInto[n]; ok {
		n = into
	}
	return objs.byID[n]
}

// handleListObjects pages through a type's records in id order: limit
// (default 10, at most 100) and after (the paging.next.after of the
// previous page).
func (s *Server) handleListObjects(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, after, ok := pageParams(w, q, 10, 100)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.readNames(typ, queryList(q, "properties"))
	byID := s.objects[typ].byID
	if q.Get("archived") == "true" {
		// "Whether to return only results that have been archived" ([S-crm]).
		byID = s.objects[typ].archived
	}
	results := []objectOut{}
	var next *paging
	for _, id := range sortedIDs(byID) {
		if id <= after {
			continue
		}
		if len(results) == limit {
			last := results[len(results)-1].ID
			next = &paging{Next: nextPage{After: last, Link: r.URL.Path + "?after=" + last}}
			break
		}
		results = append(results, recordOut(byID[id], names))
	}
	writeJSON(w, http.StatusOK, page{Results: results, Paging: next})
}

type page struct {
	Total   *int        `json:"total,omitempty"`
	Results []objectOut `json:"results"`
	Paging  *paging     `json:"paging,omitempty"`
}

type paging struct {
	Next nextPage `json:"next"`
}

type nextPage struct {
	After string `json:"after"`
	Link  string `json:"link,omitempty"`
}

// pageParams reads the paging query of a list endpoint: limit, def when
// absent and at most max, and after, the paging.next.after of the previous
// page, 0 when absent. It answers 400 when either is not an integer or limit
// is not positive.
func pageParams(w http.ResponseWriter, q url.Values, def, max int) (limit int, after int64, ok bool) {
	limit = def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fail(w, newError("VALIDATION_ERROR", "limit must be a positive integer"))
			return 0, 0, false
		}
		limit = n
	}
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			fail(w, newError("VALIDATION_ERROR", "after must be the paging.next.after of a previous page"))
			return 0, 0, false
		}
		after = n
	}
	return min(limit, max), after, true
}

// maxHistoryBatch is batch/read's limit with propertiesWithHistory ([C-hist50]).
const maxHistoryBatch = 50

func (s *Server) handleBatchRead(w http.ResponseWriter, r *http.Request) {
	typ, ok := s.objectTypeOrFail(w, r, "objectType")
	if !ok {
		return
	}
	var body struct {
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
		IDProperty            string   `json:"idProperty"`
		Properties            []string `json:"properties"`
		PropertiesWithHistory []string `json:"propertiesWithHistory"`
	}
	if !decode(w, r, &body) {
		return
	}
	if len(body.PropertiesWithHistory) > 0 && len(body.Inputs) > maxHistoryBatch {
		fail(w, newError("VALIDATION_ERROR", fmt.Sprintf("The maximum number of inputs supported in a batch request for property histories is %d; got %d", maxHistoryBatch, len(body.Inputs))))
		return
	}
	if len(body.Inputs) > maxBatch {
		fail(w, batchTooLarge(len(body.Inputs), maxBatch))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if body.IDProperty != "" && body.IDProperty != "hs_object_id" && !s.props[typ].isUnique(typ, body.IDProperty) {
		fail(w, s.nonUniqueError(typ, body.IDProperty))
		return
	}
	started := formatTime(s.cfg.Now())
	names := s.readNames(typ, body.Properties)
	out := batchOut{Status: "COMPLETE", Results: []objectOut{}, StartedAt: started}
	var missing []string
	for _, in := range body.Inputs {
		rec := s.findRecord(typ, body.IDProperty, in.ID)
		if rec == nil {
			missing = append(missing, in.ID)
			continue
		}
		res := recordOut(rec, names)
		if len(body.PropertiesWithHistory) > 0 {
			res.PropertiesHistory = map[string]any{}
			for _, n := range body.PropertiesWithHistory {
				res.PropertiesHistory[n] = append([]historyEntry{}, rec.history[n]...)
			}
		}
		out.Results = append(out.Results, res)
	}
	out.CompletedAt = formatTime(s.cfg.Now())
	status := http.StatusOK
	if len(missing) > 0 {
		e := newError("OBJECT_NOT_FOUND", fmt.Sprintf("Could not get some %s objects, they may be deleted or not exist. Check that ids are valid.", strings.ToUpper(singular(typ))))
		e.Context = map[string][]string{"ids": missing}
		out.Errors, out.NumErrors = []standardError{asStandardError(e)}, 1
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, out)
}
