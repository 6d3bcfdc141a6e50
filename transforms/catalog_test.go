package transforms

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// contactCatalog is a contact property list in the shape of HubSpot's
// GET /crm/v3/properties/contacts response.
const contactCatalog = `{"results":[
 {"name":"email","label":"Email","type":"string","fieldType":"text","groupName":"contactinformation"},
 {"name":"firstname","type":"string","fieldType":"text"},
 {"name":"lastname","type":"string","fieldType":"text"},
 {"name":"jobtitle","type":"string","fieldType":"text"},
 {"name":"company","type":"string","fieldType":"text"},
 {"name":"address","type":"string","fieldType":"text"},
 {"name":"city","type":"string","fieldType":"text"},
 {"name":"state","type":"string","fieldType":"text"},
 {"name":"zip","type":"string","fieldType":"text"},
 {"name":"country","type":"string","fieldType":"text"},
 {"name":"phone","type":"string","fieldType":"phonenumber"},
 {"name":"mobilephone","type":"phone_number","fieldType":"phonenumber"},
 {"name":"website","type":"string","fieldType":"text"},
 {"name":"lifecyclestage","type":"enumeration","fieldType":"radio","options":[{"label":"Lead","value":"lead"}]},
 {"name":"interests","type":"enumeration","fieldType":"checkbox","options":[]},
 {"name":"newsletter","type":"bool","fieldType":"booleancheckbox"},
 {"name":"date_of_birth","type":"date","fieldType":"date"},
 {"name":"last_login","type":"datetime","fieldType":"date"},
 {"name":"lifetime_value","type":"number","fieldType":"number"},
 {"name":"seats","type":"number","fieldType":"number"},
 {"name":"plan_type","type":"string","fieldType":"text"},
 {"name":"plan_tier","type":"string","fieldType":"text"},
 {"name":"plan","type":"string","fieldType":"textarea"},
 {"name":"hs_object_id","type":"number","fieldType":"number","modificationMetadata":{"archivable":true,"readOnlyDefinition":true,"readOnlyValue":true}},
 {"name":"hs_lead_score","type":"number","fieldType":"number","calculated":true}
]}`

// companyCatalog is a company property list.
const companyCatalog = `{"results":[
 {"name":"name","type":"string","fieldType":"text"},
 {"name":"domain","type":"string","fieldType":"text"},
 {"name":"website","type":"string","fieldType":"text"},
 {"name":"description","type":"string","fieldType":"textarea"},
 {"name":"industry","type":"enumeration","fieldType":"select"},
 {"name":"phone","type":"string","fieldType":"phonenumber"},
 {"name":"numberofemployees","type":"number","fieldType":"number"},
 {"name":"address","type":"string","fieldType":"text"},
 {"name":"city","type":"string","fieldType":"text"},
 {"name":"state","type":"string","fieldType":"text"},
 {"name":"zip","type":"string","fieldType":"text"},
 {"name":"country","type":"string","fieldType":"text"}
]}`

func mustCatalog(t testing.TB, data string) Catalog {
	t.Helper()
	cat, err := ParseCatalog([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestParseCatalog(t *testing.T) {
	cat := mustCatalog(t, contactCatalog)
	if len(cat) != 25 {
		t.Errorf("catalogue has %d properties; want 25", len(cat))
	}
	tests := []struct {
		name string
		prop string
		want Property
	}{
		{"A string property keeps its type and field type.", "email", Property{Name: "email", Type: "string", FieldType: "text"}},
		{"A multi checkbox is an enumeration with field type checkbox.", "interests", Property{Name: "interests", Type: "enumeration", FieldType: "checkbox"}},
		{"A property with a read-only value is read-only.", "hs_object_id", Property{Name: "hs_object_id", Type: "number", FieldType: "number", ReadOnly: true}},
		{"A calculated property is read-only.", "hs_lead_score", Property{Name: "hs_lead_score", Type: "number", FieldType: "number", ReadOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cat[tt.prop]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("cat[%q] = %+v; want %+v", tt.prop, got, tt.want)
			}
		})
	}
}

func TestParseCatalogErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"Bytes that are not JSON are refused.", `{"results":[`, "not valid JSON"},
		{"A response without results is refused.", `{"properties":[]}`, `no "results" array`},
		{"A property without a name is refused.", `{"results":[{"name":"a","type":"string"},{"type":"string"}]}`, "results[1] has no name"},
		{"A property without a type is refused.", `{"results":[{"name":"a"}]}`, `property "a" has no type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCatalog([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCatalog error = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestInferProperty(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Property
		ok   bool
	}{
		{"A boolean is a bool checkbox.", `true`, Property{Type: TypeBool, FieldType: FieldBooleanCheckbox}, true},
		{"A number is a number.", `1234.5`, Property{Type: TypeNumber, FieldType: FieldNumber}, true},
		{"A date string is a date.", `"2026-03-01"`, Property{Type: TypeDate, FieldType: FieldDate}, true},
		{"An RFC 3339 string is a datetime.", `"2026-03-01T10:00:00+02:00"`, Property{Type: TypeDateTime, FieldType: FieldDate}, true},
		{"An array of strings is a multi checkbox.", `["a","b"]`, Property{Type: TypeEnumeration, FieldType: FieldCheckbox}, true},
		{"An array with a number is text.", `["a",1]`, Property{Type: TypeString, FieldType: FieldText}, true},
		{"An empty array is text.", `[]`, Property{Type: TypeString, FieldType: FieldText}, true},
		{"A numeric string is text, as zip codes and phone numbers are.", `"02134"`, Property{Type: TypeString, FieldType: FieldText}, true},
		{"An object is text.", `{"a":1}`, Property{Type: TypeString, FieldType: FieldText}, true},
		{"Null has no type.", `null`, Property{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := InferProperty(gjson.Parse(tt.json))
			if !reflect.DeepEqual(got, tt.want) || ok != tt.ok {
				t.Errorf("InferProperty(%s) = %+v, %v; want %+v, %v", tt.json, got, ok, tt.want, tt.ok)
			}
		})
	}
}
