// Package hubspotsource turns HubSpot CRM records, as batch/read, list-all
// and search return them, into the Segment calls the HubSpot source appends
// to the log: a contact becomes an identify, a company a group, a deal an
// identify carrying its fields. It holds pure functions over gjson values:
// no I/O, no package-level state that changes, safe for concurrent use.
//
// A record is {"id", "properties": {name: string}, "propertiesWithHistory":
// {name: [{value, timestamp, ...}]}?, "updatedAt", ...}. Only mapped
// properties reach a call's traits, renamed by the [Mapping] and typed by
// the property's HubSpot type ([TypedValue]). Every call also carries, under
// _switchyard.hubspot, the portal, the object and each mapped property's
// HubSpot value with its time, so that the HubSpot destination can tell its
// own portal's events and learn when HubSpot last changed each property.
package hubspotsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/transforms"
)

// TimeLayout is how calls write times: RFC 3339 in UTC with milliseconds,
// the precision HubSpot keeps.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// dateLayout is how date properties are written.
const dateLayout = "2006-01-02"

// MessageIDPrefix starts every messageId the source writes.
const MessageIDPrefix = "hubspot-"

// Object types, as HubSpot's CRM API names them and as calls carry them in
// _switchyard.hubspot.objectType.
const (
	Contacts  = "contacts"
	Companies = "companies"
	Deals     = "deals"
)

// object is what differs between the object types.
type object struct {
	typ string
	// idType and collection are the record id's context.externalIds entry.
	idType, collection string
	// lastModified is the property HubSpot bumps on every change:
	// lastmodifieddate for contacts, hs_lastmodifieddate for the others
	// (shared/reference/hubspot-source.md §3.2).
	lastModified string
}

var (
	contact = object{Contacts, "hubspot_contact_id", "users", "lastmodifieddate"}
	company = object{Companies, "hubspot_company_id", "accounts", "hs_lastmodifieddate"}
	deal    = object{Deals, "hubspot_deal_id", "deals", "hs_lastmodifieddate"}
)

// Mapping says which HubSpot properties of an object type become traits,
// and under which names. Exactly one of its fields is set.
type Mapping struct {
	// Properties maps a HubSpot property name to the trait it becomes
	// ({"firstname": "first_name"}).
	Properties map[string]string
	// All maps every property the record holds under its own name, as
	// Heap captures all contact properties.
	All bool
}

// Validate reports a mapping that maps nothing, sets both fields, holds an
// empty name, or sends two properties to one trait.
func (m Mapping) Validate() error {
	if m.All {
		if len(m.Properties) > 0 {
			return errors.New("mapping: All maps every property under its own name; it takes no Properties")
		}
		return nil
	}
	if len(m.Properties) == 0 {
		return errors.New("mapping maps no property: give Properties or set All")
	}
	byTrait := make(map[string]string, len(m.Properties))
	for _, name := range sortedKeys(m.Properties) {
		trait := m.Properties[name]
		switch {
		case name == "":
			return errors.New("mapping: a HubSpot property name is empty")
		case trait == "":
			return fmt.Errorf("mapping: HubSpot property %q has an empty trait name", name)
		}
		if other, ok := byTrait[trait]; ok {
			return fmt.Errorf("mapping: HubSpot properties %q and %q both map to trait %q", other, name, trait)
		}
		byTrait[trait] = name
	}
	return nil
}

// trait returns the trait name of HubSpot property name, if it is mapped.
func (m Mapping) trait(name string) (string, bool) {
	if m.All {
		return name, true
	}
	t, ok := m.Properties[name]
	return t, ok
}

// PropertyTypes gives each HubSpot property's type, as the properties API's
// "type" names it (string, number, bool, date, datetime, enumeration,
// phone_number). A property it lacks is treated as a string.
type PropertyTypes map[string]string

// Origin is what every call carries about where it comes from.
type Origin struct {
	// Source is the source's name, written to _switchyard.source.
	Source string
	// HubID is the HubSpot portal (account) id the records were read
	// from, written to _switchyard.hubspot.hubId.
	HubID int64
	// ReceivedAt is when the source appends the call, its receivedAt.
	ReceivedAt time.Time
}

func (o Origin) validate() error {
	switch {
	case o.Source == "":
		return errors.New("origin: Source (the source's name) is empty")
	case o.HubID <= 0:
		return fmt.Errorf("origin: HubID must be the portal's id, got %d", o.HubID)
	case o.ReceivedAt.IsZero():
		return errors.New("origin: ReceivedAt is not set")
	case o.ReceivedAt.UTC().Year() < 1 || o.ReceivedAt.UTC().Year() > 9999:
		return fmt.Errorf("origin: ReceivedAt %v is outside the years 0001-9999", o.ReceivedAt)
	}
	return nil
}

// Identify maps a contact record to the Segment identify of userID, the
// app's user the caller matched the contact to, as JSON:
//
//   - traits: the mapped properties, renamed and typed ([TypedValue]); an
//     unmapped property never appears, nor does a mapped one the record
//     lacks, holds as null or holds as "" (a cleared value);
//   - timestamp: the newest time among the mapped properties the record
//     holds, each property's time being its newest propertiesWithHistory
//     entry when the record has one, else the record's updatedAt (or, when
//     that is missing, its lastmodifieddate); with no mapped property, the
//     record's time;
//   - messageId: [MessageID] of the contact, userID and that time in
//     milliseconds, so reading the same change again gives the same id;
//   - receivedAt: o.ReceivedAt; context.externalIds: the contact id as
//     hubspot_contact_id (collection users);
//   - _switchyard: source o.Source, and hubspot {hubId, objectType
//     "contacts", objectId, properties}, properties holding each mapped
//     HubSpot property the record holds (null ones left out) under its
//     HubSpot name with its value as HubSpot wrote it and its time, plus
//     "invalid" with the reason when the value does not read as its type
//     (the trait is then left out).
//
// A record that is not a JSON object, has no numeric id, or has no time
// for what it holds is an error, as are an invalid origin or mapping, an
// empty userID and a property value that is not a string.
func Identify(o Origin, contactRecord gjson.Result, userID string, m Mapping, types PropertyTypes) ([]byte, error) {
	return build(o, contact, contactRecord, "identify", userID, "", m, types)
}

// Group maps a company record to the Segment group joining userID, one of
// the company's associated known users, to groupID (see [GroupID]). Traits,
// timestamp, messageId and _switchyard are as for [Identify], with
// objectType "companies", the company id as hubspot_company_id (collection
// accounts), and hs_lastmodifieddate as the fallback time. An empty groupID
// is an error.
func Group(o Origin, companyRecord gjson.Result, groupID, userID string, m Mapping, types PropertyTypes) ([]byte, error) {
	if groupID == "" {
		return nil, errors.New("group: groupID is empty; pass the company's GroupID")
	}
	return build(o, company, companyRecord, "group", userID, groupID, m, types)
}

// DealTraits maps a deal record to an identify of userID, one of the deal's
// associated known contacts, whose traits are the deal's mapped properties.
// Everything else is as for [Identify], with objectType "deals", the deal
// id as hubspot_deal_id (collection deals), and hs_lastmodifieddate as the
// fallback time.
func DealTraits(o Origin, dealRecord gjson.Result, userID string, m Mapping, types PropertyTypes) ([]byte, error) {
	return build(o, deal, dealRecord, "identify", userID, "", m, types)
}

// GroupID returns the groupId of a company record. With idProperty set (the
// source's company_id_property), it is that property's value, surrounding
// spaces trimmed; a company without it is an error, since only companies
// holding the app's id are the app's groups. With idProperty empty, it is
// the company's domain property as [transforms.Domain] normalizes websites
// (lowercase, punycode, scheme, path and leading "www." stripped); a
// company without a usable domain is an error.
func GroupID(companyRecord gjson.Result, idProperty string) (string, error) {
	if !companyRecord.IsObject() || !gjson.Valid(companyRecord.Raw) {
		return "", fmt.Errorf("a HubSpot company must be a JSON object, got %.80s", companyRecord.Raw)
	}
	id := companyRecord.Get("id").String()
	name := idProperty
	if name == "" {
		name = "domain"
	}
	v := companyRecord.Get("properties." + gjson.Escape(name))
	if v.Exists() && v.Type != gjson.Null && v.Type != gjson.String {
		return "", fmt.Errorf("company %s: property %s is %s, not a string", id, name, v.Type)
	}
	value := strings.TrimSpace(v.Str)
	if value == "" {
		return "", fmt.Errorf("company %s has no %s to be its groupId", id, name)
	}
	if idProperty != "" {
		return value, nil
	}
	domain, err := transforms.Domain(value, false)
	if err != nil {
		return "", fmt.Errorf("company %s: %w", id, err)
	}
	return domain, nil
}

// MessageID returns the messageId of the call made for userID from one
// version of a HubSpot object: MessageIDPrefix and a UUID version 5 (SHA-1,
// URL namespace) of the path source/objectType/objectID/userID/version,
// each part escaped. version is the change's time in epoch milliseconds. The
// same inputs always give the same id, so re-reading a change (after a
// crash, a retried notification or a catch-up) is deduplicated downstream;
// userID is part of it because a company or a deal makes one call per
// associated user.
func MessageID(source, objectType, objectID, userID string, version int64) string {
	name := "switchyard:sources/hubspot/" + url.PathEscape(source) + "/" + url.PathEscape(objectType) + "/" +
		url.PathEscape(objectID) + "/" + url.PathEscape(userID) + "/" + strconv.FormatInt(version, 10)
	return MessageIDPrefix + uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
}

// TypedValue returns the trait value, as JSON, of a HubSpot property value
// (HubSpot writes every value as a string) of HubSpot type propertyType:
//
//   - number: the JSON number with the same decimal value, digits kept
//     exactly (big integers and long fractions are not rounded through
//     floating point), written without exponent, plus sign or leading
//     zeros ("1e3" is 1000); "NaN", "Infinity", "1,000" and other
//     non-numbers are errors;
//   - bool: "true" and "false" (any case) become true and false, anything
//     else is an error;
//   - date: the string YYYY-MM-DD; HubSpot answers dates as YYYY-MM-DD and
//     takes epoch milliseconds at midnight UTC, so those, and RFC 3339
//     times at midnight UTC, give their date; other times are errors;
//   - datetime: RFC 3339 in UTC with milliseconds ([TimeLayout]), from an
//     RFC 3339 time with any offset and precision, epoch milliseconds, or
//     a date YYYY-MM-DD (its midnight UTC);
//   - enumeration: HubSpot's string as it is; a multi-select (checkbox)
//     holds its options ';'-separated ("a;b"), kept so rather than split,
//     since the type does not say which enumerations are multi-selects;
//   - string, phone_number and every other type, including "" (unknown):
//     the string as it is.
//
// Dates and times outside the years 0001-9999 are errors.
func TypedValue(value, propertyType string) (json.RawMessage, error) {
	switch propertyType {
	case transforms.TypeNumber:
		n, err := transforms.FormatNumber(gjson.Result{Type: gjson.String, Str: value})
		if err != nil {
			return nil, err
		}
		return json.RawMessage(n), nil
	case transforms.TypeBool:
		switch s := strings.TrimSpace(value); {
		case strings.EqualFold(s, "true"):
			return json.RawMessage("true"), nil
		case strings.EqualFold(s, "false"):
			return json.RawMessage("false"), nil
		}
		return nil, fmt.Errorf("value %q is not true or false", value)
	case transforms.TypeDate:
		d, err := parseDate(strings.TrimSpace(value))
		if err != nil {
			return nil, err
		}
		return jsonString(d), nil
	case transforms.TypeDateTime:
		s := strings.TrimSpace(value)
		if isDate(s) {
			return jsonString(s + "T00:00:00.000Z"), nil
		}
		t, err := parseInstant(s)
		if err != nil {
			return nil, err
		}
		return jsonString(t.Format(TimeLayout)), nil
	}
	return jsonString(value), nil
}

// parseDate reads a date property value.
func parseDate(s string) (string, error) {
	if isDate(s) {
		return s, nil
	}
	t, err := parseInstant(s)
	if err != nil {
		return "", fmt.Errorf("value %q is not a date (want YYYY-MM-DD or epoch milliseconds at midnight UTC)", s)
	}
	if !t.Equal(t.Truncate(24 * time.Hour)) {
		return "", fmt.Errorf("date value %q is at %s UTC, not midnight", s, t.Format("15:04:05.000"))
	}
	return t.Format(dateLayout), nil
}

// isDate reports whether s is a real day written YYYY-MM-DD.
func isDate(s string) bool {
	if len(s) != len(dateLayout) || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, err := time.Parse(dateLayout, s)
	return err == nil
}

// Epoch milliseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
const (
	minEpochMillis = -62135596800000
	maxEpochMillis = 253402300799999
)

// parseInstant reads an RFC 3339 time (any precision, any offset) or epoch
// milliseconds (optionally negative) and returns it in UTC, cut to
// milliseconds.
func parseInstant(s string) (time.Time, error) {
	if digits := strings.TrimPrefix(s, "-"); digits != "" && strings.Trim(digits, "0123456789") == "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < minEpochMillis || ms > maxEpochMillis {
			return time.Time{}, fmt.Errorf("epoch milliseconds %s are outside the years 0001-9999", s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("value %q is not an RFC 3339 time or epoch milliseconds", s)
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time %q is outside the years 0001-9999 in UTC", s)
	}
	return t.Truncate(time.Millisecond), nil
}

// readTime reads a time HubSpot wrote as a JSON string (RFC 3339 or epoch
// milliseconds) or a JSON integer of epoch milliseconds.
func readTime(v gjson.Result) (time.Time, error) {
	switch v.Type {
	case gjson.String:
		return parseInstant(strings.TrimSpace(v.Str))
	case gjson.Number:
		return parseInstant(v.Raw)
	}
	return time.Time{}, fmt.Errorf("%s is not a time", describe(v))
}

func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// call is the Segment call build writes.
type call struct {
	Type       string                     `json:"type"`
	UserID     string                     `json:"userId"`
	GroupID    string                     `json:"groupId,omitempty"`
	MessageID  string                     `json:"messageId"`
	Timestamp  string                     `json:"timestamp"`
	ReceivedAt string                     `json:"receivedAt"`
	Traits     map[string]json.RawMessage `json:"traits"`
	Context    callContext                `json:"context"`
	Switchyard switchyard                 `json:"_switchyard"`
}

type callContext struct {
	ExternalIDs []externalID `json:"externalIds"`
}

type externalID struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Collection string `json:"collection"`
	Encoding   string `json:"encoding"`
}

type switchyard struct {
	Source  string `json:"source"`
	HubSpot origin `json:"hubspot"`
}

type origin struct {
	HubID      int64                    `json:"hubId"`
	ObjectType string                   `json:"objectType"`
	ObjectID   string                   `json:"objectId"`
	Properties map[string]propertyValue `json:"properties"`
}

// propertyValue is one HubSpot property as _switchyard.hubspot.properties
// carries it.
type propertyValue struct {
	Value     string `json:"value"`
	Timestamp string `json:"timestamp"`
	Invalid   string `json:"invalid,omitempty"`
}

// build makes the call of type typ for userID (and groupID) from rec.
func build(o Origin, obj object, rec gjson.Result, typ, userID, groupID string, m Mapping, types PropertyTypes) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if !rec.IsObject() || !gjson.Valid(rec.Raw) {
		return nil, fmt.Errorf("a HubSpot %s record must be a JSON object, got %.80s", obj.typ, rec.Raw)
	}
	id, err := recordID(rec)
	if err != nil {
		return nil, fmt.Errorf("%s record: %w", obj.typ, err)
	}
	if userID == "" {
		return nil, fmt.Errorf("%s %s: userID is empty; pass the app's user the record matches", obj.typ, id)
	}
	props, history := rec.Get("properties"), rec.Get("propertiesWithHistory")
	for _, part := range []struct {
		name string
		v    gjson.Result
	}{{"properties", props}, {"propertiesWithHistory", history}} {
		if part.v.Exists() && part.v.Type != gjson.Null && !part.v.IsObject() {
			return nil, fmt.Errorf("%s %s: %s is %s, not an object", obj.typ, id, part.name, describe(part.v))
		}
	}
	modified, hasModified, err := recordTime(rec, obj)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", obj.typ, id, err)
	}

	traits := map[string]json.RawMessage{}
	carried := map[string]propertyValue{}
	var newest time.Time
	for _, name := range propertyNames(props, history, m) {
		trait, _ := m.trait(name)
		p, ok, err := property(props, history, name)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", obj.typ, id, err)
		}
		if !ok {
			continue
		}
		if !p.timed {
			if !hasModified {
				return nil, fmt.Errorf("%s %s: property %s has no history and the record has no updatedAt or %s", obj.typ, id, name, obj.lastModified)
			}
			p.at = modified
		}
		if len(carried) == 0 || p.at.After(newest) {
			newest = p.at
		}
		pv := propertyValue{Value: p.value, Timestamp: p.at.Format(TimeLayout)}
		if p.value != "" {
			if typed, err := TypedValue(p.value, types[name]); err != nil {
				pv.Invalid = err.Error()
			} else {
				traits[trait] = typed
			}
		}
		carried[name] = pv
	}
	if len(carried) == 0 {
		if !hasModified {
			return nil, fmt.Errorf("%s %s holds no mapped property and has no updatedAt or %s", obj.typ, id, obj.lastModified)
		}
		newest = modified
	}

	out := call{
		Type:       typ,
		UserID:     userID,
		GroupID:    groupID,
		MessageID:  MessageID(o.Source, obj.typ, id, userID, newest.UnixMilli()),
		Timestamp:  newest.Format(TimeLayout),
		ReceivedAt: o.ReceivedAt.UTC().Truncate(time.Millisecond).Format(TimeLayout),
		Traits:     traits,
		Context:    callContext{ExternalIDs: []externalID{{ID: id, Type: obj.idType, Collection: obj.collection, Encoding: "none"}}},
		Switchyard: switchyard{Source: o.Source, HubSpot: origin{HubID: o.HubID, ObjectType: obj.typ, ObjectID: id, Properties: carried}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("%s %s: %w", obj.typ, id, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// recordID returns a record's id: digits, written as a JSON string (the
// CRM API) or number (webhooks).
func recordID(rec gjson.Result) (string, error) {
	v := rec.Get("id")
	var id string
	switch v.Type {
	case gjson.String:
		id = v.Str
	case gjson.Number:
		id = v.Raw
	default:
		return "", fmt.Errorf("it has no id (got %s)", describe(v))
	}
	if id == "" || strings.Trim(id, "0123456789") != "" || len(id) > 20 {
		return "", fmt.Errorf("id %q is not a HubSpot record id (digits)", id)
	}
	return id, nil
}

// recordTime returns when the record last changed: its updatedAt, else its
// last-modified property.
func recordTime(rec gjson.Result, obj object) (time.Time, bool, error) {
	for _, path := range []string{"updatedAt", "properties." + obj.lastModified} {
		v := rec.Get(path)
		if !v.Exists() || v.Type == gjson.Null || (v.Type == gjson.String && v.Str == "") {
			continue
		}
		t, err := readTime(v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return t, true, nil
	}
	return time.Time{}, false, nil
}

// propertyNames lists, sorted, the HubSpot properties the mapping takes
// from the record.
func propertyNames(props, history gjson.Result, m Mapping) []string {
	if !m.All {
		return sortedKeys(m.Properties)
	}
	seen := map[string]bool{}
	var names []string
	for _, obj := range []gjson.Result{props, history} {
		obj.ForEach(func(k, _ gjson.Result) bool {
			if !seen[k.Str] {
				seen[k.Str] = true
				names = append(names, k.Str)
			}
			return true
		})
	}
	sort.Strings(names)
	return names
}

// held is one mapped property as the record holds it.
type held struct {
	value string
	// at is the time of the property's newest history entry, when timed.
	at    time.Time
	timed bool
}

// property returns a mapped property's value and, when the record has its
// history, the time of its newest entry. ok is false when the record holds
// no value for it: absent or null in properties, and no history entry
// holding a value.
func property(props, history gjson.Result, name string) (p held, ok bool, err error) {
	key := gjson.Escape(name)
	v := props.Get(key)
	switch v.Type {
	case gjson.String:
		p.value, ok = v.Str, true
	case gjson.Null:
	default:
		return held{}, false, fmt.Errorf("property %s is %s; HubSpot property values are strings", name, describe(v))
	}
	entries := history.Get(key)
	if !entries.Exists() || entries.Type == gjson.Null {
		return p, ok, nil
	}
	if !entries.IsArray() {
		return held{}, false, fmt.Errorf("propertiesWithHistory.%s is %s, not an array", name, describe(entries))
	}
	var newest gjson.Result
	for i, e := range entries.Array() {
		t, err := readTime(e.Get("timestamp"))
		if err != nil {
			return held{}, false, fmt.Errorf("propertiesWithHistory.%s[%d].timestamp: %w", name, i, err)
		}
		if !p.timed || t.After(p.at) {
			p.at, p.timed, newest = t, true, e.Get("value")
		}
	}
	if ok || !p.timed {
		return p, ok, nil
	}
	switch newest.Type {
	case gjson.String:
		p.value = newest.Str
		return p, true, nil
	case gjson.Null:
		return held{}, false, nil
	}
	return held{}, false, fmt.Errorf("propertiesWithHistory.%s: the newest value is %s, not a string", name, describe(newest))
}

func describe(v gjson.Result) string {
	switch {
	case !v.Exists():
		return "missing"
	case v.Type == gjson.Null:
		return "null"
	case v.IsArray():
		return "an array"
	case v.IsObject():
		return "an object"
	case v.Type == gjson.String:
		return "a string"
	case v.Type == gjson.Number:
		return "a number " + v.Raw
	}
	return "a boolean"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
