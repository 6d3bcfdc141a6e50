package transforms

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Options tune how a traits or properties object is mapped. The zero value
// is the default: flatten nested objects, skip nulls, report unknown
// properties, keep the website's full host as the company domain.
type Options struct {
	// NestedJSON sends a nested object as one property holding its compact
	// JSON text, under the object's normalized key, instead of flattening it
	// into one property per leaf joined with '_' ("plan.tier" becomes
	// plan_tier). The contact objects "address" and "company" and the
	// company object "address" are always flattened, since their fields
	// have HubSpot properties of their own. Default false. Either way,
	// objects nested more than 8 levels deep are sent as JSON text, and an
	// empty object flattens to nothing.
	NestedJSON bool
	// ClearNulls sends null (and, for non-text properties, a blank string)
	// as "", which clears the property in HubSpot. Default false: such
	// values are skipped and the property keeps its value.
	ClearNulls bool
	// AcceptUnknown formats properties missing from the catalogue by their
	// inferred type (see [InferProperty]) and puts them in
	// Result.Properties, instead of returning them in Result.Unknown. Use it
	// when there is no catalogue to check against. Default false.
	AcceptUnknown bool
	// RegistrableDomain reduces a company's domain to its registrable
	// domain (see [Domain]). Default false: the full host, less "www.".
	RegistrableDomain bool
}

// ProblemKind classifies a [Problem], for counting in metrics.
type ProblemKind string

// Problem kinds.
const (
	// ProblemName: the key cannot become a property name.
	ProblemName ProblemKind = "invalid_name"
	// ProblemCollision: the key normalized to the same name as another key
	// of the same object and lost to it.
	ProblemCollision ProblemKind = "collision"
	// ProblemValue: the value does not fit the property's type.
	ProblemValue ProblemKind = "invalid_value"
	// ProblemReadOnly: the property's value is computed by HubSpot.
	ProblemReadOnly ProblemKind = "read_only"
	// ProblemTooMany: the object has more properties than HubSpot takes.
	ProblemTooMany ProblemKind = "too_many_properties"
)

// Problem is one key that was not mapped, and why.
type Problem struct {
	// Key is the key as written; a nested key is its path joined with '.'
	// ("address.city").
	Key string
	// Name is the property name the key normalized to, or "" for
	// ProblemName.
	Name string
	// Kind classifies the problem.
	Kind ProblemKind
	// Reason says what is wrong in a sentence fit for a delivery outcome.
	Reason string
}

// String returns "key: reason".
func (p Problem) String() string { return p.Key + ": " + p.Reason }

// Unknown is a property the catalogue lacks, with a type inferred from its
// value, so that the caller can create it and send Value, or record that it
// was skipped.
type Unknown struct {
	// Key is the key as written (a nested key's path joined with '.').
	Key string
	// Property holds the normalized Name and the inferred Type and
	// FieldType.
	Property Property
	// Value is the value formatted for the inferred type and cut to the
	// length limit.
	Value string
}

// Result is the mapping of one traits or properties object.
type Result struct {
	// Properties holds the values to send, by property name. Never nil.
	Properties map[string]string
	// Keys holds, by property name, the key (as written) each value in
	// Properties came from. Never nil.
	Keys map[string]string
	// Unknown holds properties the catalogue lacks, in the object's order.
	Unknown []Unknown
	// Problems holds the keys not mapped, in the object's order.
	Problems []Problem
}

// Count returns how many problems of a kind the result holds.
func (r Result) Count(kind ProblemKind) int {
	n := 0
	for _, p := range r.Problems {
		if p.Kind == kind {
			n++
		}
	}
	return n
}

// ContactProperties maps identify traits to contact properties.
//
// Keys are normalized with [NormalizeKey] and nested objects flattened with
// '_' (see [Options.NestedJSON]). These names are then renamed to HubSpot's
// contact properties; because renames match normalized names, every
// spelling that normalizes alike is renamed ("firstName", "first_name" and
// "First Name" all become firstname):
//
//	first_name, firstname            firstname
//	last_name, lastname              lastname
//	lifecycle_stage                  lifecyclestage
//	title                            jobtitle
//	company (a string), company.name company
//	address.street                   address
//	address.city                     city
//	address.state                    state
//	address.postalCode, address.postal_code, address.postalcode, address.zip
//	                                 zip
//	address.country                  country
//
// Other fields of a company or address object are flattened as usual
// (company.plan becomes company_plan).
//
// When several keys end up with one name, one is kept: the key written
// exactly as the name, if there is one; otherwise the last in the object's
// order. The choice is by key, not value: a losing key is never used as a
// fallback. Each losing key is reported as a ProblemCollision.
//
// Each kept value is formatted for its catalogue property by [FormatValue]
// and cut to [MaxStringLen]. Nulls are skipped unless [Options.ClearNulls]
// is set; a blank string for a non-text property (number, bool, date,
// datetime, enumeration) counts as null, while for string and phone_number
// properties "" is sent as written. Keys missing from the catalogue go to
// Result.Unknown (or, with [Options.AcceptUnknown], to Result.Properties);
// unknown nulls are dropped, as there is nothing to create or send (with
// AcceptUnknown and ClearNulls they are sent as "", like known ones).
func ContactProperties(traits gjson.Result, cat Catalog, opts Options) Result {
	m := newMapper(contactRules(), cat, opts)
	return m.run(traits)
}

// CompanyProperties maps group traits to company properties, with the rules
// of [ContactProperties] except for the renames, which are:
//
//	employees          numberofemployees
//	address.*          as for contacts (address.city becomes city, ...)
//
// name, description, industry, phone and website keep their names. The
// domain property is derived with [Domain] from the domain trait when there
// is one, else from the website trait; a value that gives no domain is a
// ProblemValue and no domain is sent. domain is sent even when the
// catalogue lacks it, as every HubSpot portal has it.
func CompanyProperties(traits gjson.Result, cat Catalog, opts Options) Result {
	m := newMapper(companyRules(), cat, opts)
	return m.run(traits)
}

// EventProperties maps track properties to custom behavioral event
// properties. Custom event properties have no catalogue here: every value is
// formatted by the type [InferProperty] infers from it (strings as written
// except date and time strings, numbers in plain decimal, booleans as
// true/false, arrays ';'-joined). Names are normalized with
// [NormalizeKeyMax] to [MaxEventNameLen], values cut to
// [MaxEventValueLen], and at most [MaxEventProperties] are kept: the first
// in the object's order (after flattening and collisions); the others are
// reported as ProblemTooMany. Nulls are skipped unless
// [Options.ClearNulls] is set. Options.AcceptUnknown and
// Options.RegistrableDomain have no effect.
func EventProperties(properties gjson.Result, opts Options) Result {
	opts.AcceptUnknown = true
	m := newMapper(eventRules(), nil, opts)
	return m.run(properties)
}

// MaxEventProperties is HubSpot's limit on properties per custom event
// occurrence.
const MaxEventProperties = 50

// rules are what differs between contacts, companies and events.
type rules struct {
	rename     func(name string) string
	structured func(name string) bool // nested objects always flattened
	nameLimit  int
	valueLimit int
	maxProps   int  // 0: no limit
	domain     bool // derive the domain property from domain or website
}

func contactRules() rules {
	return rules{
		rename:     contactRename,
		structured: func(name string) bool { return name == "address" || name == "company" },
		nameLimit:  MaxPropertyNameLen,
		valueLimit: MaxStringLen,
	}
}

func companyRules() rules {
	return rules{
		rename:     companyRename,
		structured: func(name string) bool { return name == "address" },
		nameLimit:  MaxPropertyNameLen,
		valueLimit: MaxStringLen,
		domain:     true,
	}
}

func eventRules() rules {
	return rules{
		rename:     func(name string) string { return name },
		structured: func(string) bool { return false },
		nameLimit:  MaxEventNameLen,
		valueLimit: MaxEventValueLen,
		maxProps:   MaxEventProperties,
	}
}

func contactRename(name string) string {
	switch name {
	case "first_name":
		return "firstname"
	case "last_name":
		return "lastname"
	case "lifecycle_stage":
		return "lifecyclestage"
	case "title":
		return "jobtitle"
	case "company_name":
		return "company"
	}
	return addressRename(name)
}

func companyRename(name string) string {
	if name == "employees" {
		return "numberofemployees"
	}
	return addressRename(name)
}

func addressRename(name string) string {
	switch name {
	case "address_street":
		return "address"
	case "address_city":
		return "city"
	case "address_state":
		return "state"
	case "address_postalcode", "address_postal_code", "address_zip":
		return "zip"
	case "address_country":
		return "country"
	}
	return name
}

// entry is one key of the object with its property name.
type entry struct {
	key   string // as written; nested paths joined with '.'
	name  string // property name after normalization and renames
	value gjson.Result
	exact bool // key == name
	lost  bool // another key with the same name was kept
}

type mapper struct {
	rules   rules
	cat     Catalog
	opts    Options
	entries []entry
	sent    int // values added to Properties or Unknown
	result  Result
}

func newMapper(r rules, cat Catalog, opts Options) *mapper {
	return &mapper{rules: r, cat: cat, opts: opts}
}

func (m *mapper) run(obj gjson.Result) Result {
	m.entries = make([]entry, 0, 32)
	switch {
	case !obj.Exists() || obj.Type == gjson.Null:
	case obj.IsObject():
		m.collect(obj, "", 1)
	default:
		m.problem("", "", ProblemValue, fmt.Sprintf("expected an object of properties, got %s", describe(obj)))
	}
	m.result.Properties = make(map[string]string, len(m.entries))
	m.result.Keys = make(map[string]string, len(m.entries))
	m.resolveCollisions()
	for i := range m.entries {
		e := &m.entries[i]
		if e.lost {
			continue
		}
		if m.rules.domain && e.name == "domain" {
			continue // derived below
		}
		m.add(e)
	}
	if m.rules.domain {
		m.deriveDomain()
	}
	return m.result
}

// maxFlattenDepth is how deep nested objects are flattened: an object
// nested deeper is sent as JSON text. Names are capped anyway, and the cap
// keeps a pathologically deep object from costing quadratic time.
const maxFlattenDepth = 8

// collect appends the entries of an object at depth (1 for the top level),
// flattening nested objects.
func (m *mapper) collect(obj gjson.Result, prefix string, depth int) {
	obj.ForEach(func(k, v gjson.Result) bool {
		key := k.Str
		if prefix != "" {
			key = prefix + "." + key
		}
		if v.IsObject() && depth < maxFlattenDepth && m.flatten(prefix, k.Str) {
			m.collect(v, key, depth+1)
			return true
		}
		name, ok := NormalizeKeyMax(key, m.rules.nameLimit)
		if !ok {
			reason := "cannot be a property name: it has no letters or digits"
			if name != "" {
				reason = fmt.Sprintf("cannot be a property name: it normalizes to %q, which does not start with a letter", name)
			}
			m.problem(key, "", ProblemName, reason)
			return true
		}
		name = m.rules.rename(name)
		m.entries = append(m.entries, entry{key: key, name: name, value: v, exact: key == name})
		return true
	})
}

// flatten reports whether a nested object under key is flattened.
func (m *mapper) flatten(prefix, key string) bool {
	if !m.opts.NestedJSON {
		return true
	}
	if prefix != "" {
		return false
	}
	name, ok := NormalizeKeyMax(key, m.rules.nameLimit)
	return ok && m.rules.structured(name)
}

// resolveCollisions marks every entry that loses its name to another.
func (m *mapper) resolveCollisions() {
	kept := make(map[string]int, len(m.entries))
	for i := range m.entries {
		e := &m.entries[i]
		j, seen := kept[e.name]
		if !seen {
			kept[e.name] = i
			continue
		}
		prev := &m.entries[j]
		winner, loser := e, prev
		if prev.exact && !e.exact {
			winner, loser = prev, e
		} else {
			kept[e.name] = i
		}
		loser.lost = true
		m.problem(loser.key, loser.name, ProblemCollision,
			fmt.Sprintf("%q and %q both become %s; kept %q", loser.key, winner.key, e.name, winner.key))
	}
}

// add formats one entry's value into Properties or Unknown.
func (m *mapper) add(e *entry) {
	p, known := m.cat[e.name]
	if !known {
		inferred, ok := InferProperty(e.value)
		if !ok && !m.opts.AcceptUnknown {
			return // an unknown null: nothing to create or send
		}
		inferred.Name = e.name
		p = inferred // for a null: no type, so cleared with ClearNulls
	}
	if p.ReadOnly {
		m.problem(e.key, e.name, ProblemReadOnly, fmt.Sprintf("property %s is read-only in HubSpot", e.name))
		return
	}
	var value string
	if isEmpty(e.value, p) {
		if !m.opts.ClearNulls {
			return
		}
	} else {
		s, err := FormatValue(e.value, p)
		if err != nil {
			m.problem(e.key, e.name, ProblemValue, fmt.Sprintf("%v (property %s is %s)", err, e.name, typeName(p)))
			return
		}
		value = Truncate(s, m.rules.valueLimit)
	}
	if m.rules.maxProps > 0 && m.sent >= m.rules.maxProps {
		m.problem(e.key, e.name, ProblemTooMany, fmt.Sprintf("dropped: only the first %d properties are sent", m.rules.maxProps))
		return
	}
	m.sent++
	if !known && !m.opts.AcceptUnknown {
		m.result.Unknown = append(m.result.Unknown, Unknown{Key: e.key, Property: p, Value: value})
		return
	}
	m.result.Properties[e.name] = value
	m.result.Keys[e.name] = e.key
}

// deriveDomain sets the domain property from the domain or website entry.
func (m *mapper) deriveDomain() {
	e := m.kept("domain")
	if e == nil {
		e = m.kept("website")
	}
	if e == nil || e.value.Type == gjson.Null {
		return
	}
	if e.value.Type != gjson.String {
		m.problem(e.key, "domain", ProblemValue, fmt.Sprintf("no domain: the value is %s, not a website", describe(e.value)))
		return
	}
	if strings.TrimSpace(e.value.Str) == "" {
		if m.opts.ClearNulls && e.name == "domain" {
			m.result.Properties["domain"] = ""
			m.result.Keys["domain"] = e.key
		}
		return
	}
	d, err := Domain(e.value.Str, m.opts.RegistrableDomain)
	if err != nil {
		m.problem(e.key, "domain", ProblemValue, "no domain: "+err.Error())
		return
	}
	m.result.Properties["domain"] = d
	m.result.Keys["domain"] = e.key
}

// kept returns the entry kept for a name, or nil.
func (m *mapper) kept(name string) *entry {
	for i := range m.entries {
		if e := &m.entries[i]; e.name == name && !e.lost {
			return e
		}
	}
	return nil
}

func (m *mapper) problem(key, name string, kind ProblemKind, reason string) {
	m.result.Problems = append(m.result.Problems, Problem{Key: key, Name: name, Kind: kind, Reason: reason})
}

// isEmpty reports whether a value counts as null for property p: null
// itself, or a blank string for a property that is not text.
func isEmpty(v gjson.Result, p Property) bool {
	if v.Type == gjson.Null {
		return true
	}
	if v.Type != gjson.String || strings.TrimSpace(v.Str) != "" {
		return false
	}
	switch p.Type {
	case TypeBool, TypeNumber, TypeDate, TypeDateTime, TypeEnumeration:
		return true
	}
	return false
}

func typeName(p Property) string {
	if p.Type == TypeEnumeration && p.FieldType == FieldCheckbox {
		return "a multiple checkbox"
	}
	switch p.Type {
	case TypeEnumeration:
		return "an enumeration"
	case "":
		return "untyped"
	}
	return "a " + p.Type
}
