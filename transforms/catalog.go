package transforms

import (
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
)

// HubSpot property types (the "type" of a property definition).
const (
	TypeBool        = "bool"
	TypeDate        = "date"
	TypeDateTime    = "datetime"
	TypeEnumeration = "enumeration"
	TypeNumber      = "number"
	TypePhoneNumber = "phone_number"
	TypeString      = "string"
)

// HubSpot field types (how a property is shown and edited) used by the
// transforms.
const (
	FieldBooleanCheckbox = "booleancheckbox"
	FieldCheckbox        = "checkbox"
	FieldDate            = "date"
	FieldNumber          = "number"
	FieldSelect          = "select"
	FieldText            = "text"
)

// Property is one HubSpot property definition, as far as value formatting
// needs it.
type Property struct {
	// Name is the internal name, for example "firstname".
	Name string
	// Type is the value type: one of the Type* constants. Types the
	// transforms do not know (HubSpot's internal "json",
	// "object_coordinates") are formatted as strings.
	Type string
	// FieldType is the form field: "checkbox" makes an enumeration a
	// multi-select whose values are ';'-joined.
	FieldType string
	// ReadOnly is set for properties whose values HubSpot computes
	// (modificationMetadata.readOnlyValue or calculated); values for them
	// are reported, not sent.
	ReadOnly bool
	// Options lists an enumeration's allowed values with their labels.
	// When it is not empty, [FormatValue] maps each value to the option
	// whose value or label matches it ignoring case ("Retail" becomes
	// RETAIL), and refuses a value that matches none.
	Options []Option
}

// Option is one allowed value of an enumeration property.
type Option struct {
	Value, Label string
}

// Catalog is a portal's properties for one object type, by internal name.
type Catalog map[string]Property

// ParseCatalog reads the response of HubSpot's property list
// (GET /crm/v3/properties/{objectType}):
//
//	{"results":[{"name":"email","type":"string","fieldType":"text",
//	  "modificationMetadata":{"readOnlyValue":false},...}]}
//
// Every result must have a name and a type. Other fields are ignored.
func ParseCatalog(data []byte) (Catalog, error) {
	if !gjson.ValidBytes(data) {
		return nil, errors.New("parsing property list: not valid JSON")
	}
	results := gjson.GetBytes(data, "results")
	if !results.IsArray() {
		return nil, errors.New(`parsing property list: no "results" array`)
	}
	cat := make(Catalog)
	var err error
	i := 0
	results.ForEach(func(_, r gjson.Result) bool {
		name := r.Get("name")
		typ := r.Get("type")
		switch {
		case name.Type != gjson.String || name.Str == "":
			err = fmt.Errorf("parsing property list: results[%d] has no name", i)
		case typ.Type != gjson.String || typ.Str == "":
			err = fmt.Errorf("parsing property list: property %q has no type", name.Str)
		}
		if err != nil {
			return false
		}
		var options []Option
		r.Get("options").ForEach(func(_, o gjson.Result) bool {
			if v := o.Get("value"); v.Type == gjson.String {
				options = append(options, Option{Value: v.Str, Label: o.Get("label").String()})
			}
			return true
		})
		cat[name.Str] = Property{
			Name:      name.Str,
			Type:      typ.Str,
			FieldType: r.Get("fieldType").Str,
			ReadOnly:  r.Get("modificationMetadata.readOnlyValue").Bool() || r.Get("calculated").Bool(),
			Options:   options,
		}
		i++
		return true
	})
	if err != nil {
		return nil, err
	}
	return cat, nil
}

// InferProperty guesses the HubSpot type of a property from a value, for a
// property the catalogue lacks; ok is false for null (nothing to infer). The
// returned Property has no Name. The rules:
//
//   - true, false: bool / booleancheckbox
//   - a number: number / number
//   - a string holding a date, YYYY-MM-DD: date / date
//   - a string holding an RFC 3339 time with an offset: datetime / date
//   - a non-empty array of strings: enumeration / checkbox
//   - anything else, numeric strings included (zip codes, phone numbers):
//     string / text
func InferProperty(v gjson.Result) (p Property, ok bool) {
	switch v.Type {
	case gjson.Null:
		return Property{}, false
	case gjson.True, gjson.False:
		return Property{Type: TypeBool, FieldType: FieldBooleanCheckbox}, true
	case gjson.Number:
		return Property{Type: TypeNumber, FieldType: FieldNumber}, true
	case gjson.String:
		if isDateOnly(v.Str) {
			return Property{Type: TypeDate, FieldType: FieldDate}, true
		}
		if isInstant(v.Str) {
			return Property{Type: TypeDateTime, FieldType: FieldDate}, true
		}
	case gjson.JSON:
		if v.IsArray() && isStringArray(v) {
			return Property{Type: TypeEnumeration, FieldType: FieldCheckbox}, true
		}
	}
	return Property{Type: TypeString, FieldType: FieldText}, true
}

func isStringArray(v gjson.Result) bool {
	n := 0
	all := true
	v.ForEach(func(_, e gjson.Result) bool {
		n++
		all = e.Type == gjson.String
		return all
	})
	return all && n > 0
}
