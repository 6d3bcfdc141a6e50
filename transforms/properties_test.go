package transforms

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// wantProblem is an expected Problem; reason is a substring of its Reason.
type wantProblem struct {
	key, name string
	kind      ProblemKind
	reason    string
}

type mapCase struct {
	name     string
	json     string
	opts     Options
	props    map[string]string
	unknown  []Unknown
	problems []wantProblem
}

func checkResult(t *testing.T, got Result, tt mapCase) {
	t.Helper()
	if got.Properties == nil {
		t.Fatal("Properties is nil")
	}
	want := tt.props
	if want == nil {
		want = map[string]string{}
	}
	if !reflect.DeepEqual(got.Properties, want) {
		t.Errorf("Properties:\n got %v\nwant %v", got.Properties, want)
	}
	if !reflect.DeepEqual(got.Unknown, tt.unknown) {
		t.Errorf("Unknown:\n got %+v\nwant %+v", got.Unknown, tt.unknown)
	}
	if len(got.Problems) != len(tt.problems) {
		t.Fatalf("Problems: got %d %v; want %d %v", len(got.Problems), got.Problems, len(tt.problems), tt.problems)
	}
	for i, w := range tt.problems {
		g := got.Problems[i]
		if g.Key != w.key || g.Name != w.name || g.Kind != w.kind || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("Problems[%d] = %+v; want key %q, name %q, kind %s, reason containing %q", i, g, w.key, w.name, w.kind, w.reason)
		}
	}
}

func runContacts(t *testing.T, tests []mapCase) {
	t.Helper()
	cat := mustCatalog(t, contactCatalog)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, ContactProperties(gjson.Parse(tt.json), cat, tt.opts), tt)
		})
	}
}

func TestContactPropertiesRenames(t *testing.T) {
	runContacts(t, []mapCase{
		{
			name: "Segment spec traits become HubSpot contact properties.",
			json: `{"email":"jane@example.com","firstName":"Jane","last_name":"Doe","title":"CTO","company":"Acme",
				"lifecycle_stage":"lead","address":{"street":"1 Main St","city":"Paris","state":"IDF","postalCode":"75001","country":"FR"}}`,
			props: map[string]string{"email": "jane@example.com", "firstname": "Jane", "lastname": "Doe", "jobtitle": "CTO",
				"company": "Acme", "lifecyclestage": "lead", "address": "1 Main St", "city": "Paris", "state": "IDF", "zip": "75001", "country": "FR"},
		},
		{
			name:  "Every spelling of a renamed trait is renamed.",
			json:  `{"First Name":"Jane","lastName":"Doe","lifecycleStage":"lead"}`,
			props: map[string]string{"firstname": "Jane", "lastname": "Doe", "lifecyclestage": "lead"},
		},
		{
			name:    "company.name becomes company and other company fields are flattened.",
			json:    `{"company":{"name":"Acme","plan":"enterprise"}}`,
			props:   map[string]string{"company": "Acme"},
			unknown: []Unknown{{Key: "company.plan", Property: Property{Name: "company_plan", Type: TypeString, FieldType: FieldText}, Value: "enterprise"}},
		},
		{
			name:  "address.postal_code becomes zip.",
			json:  `{"address":{"postal_code":"02134"}}`,
			props: map[string]string{"zip": "02134"},
		},
		{
			name:  "address.postalcode becomes zip.",
			json:  `{"address":{"postalcode":"02134"}}`,
			props: map[string]string{"zip": "02134"},
		},
		{
			name:  "A string address is kept as the address.",
			json:  `{"address":"1 Main St"}`,
			props: map[string]string{"address": "1 Main St"},
		},
	})
}

func TestContactPropertiesCollisions(t *testing.T) {
	runContacts(t, []mapCase{
		{
			name:     "The key already in normalized form wins over a later one.",
			json:     `{"plan_type":"b","Plan Type":"a"}`,
			props:    map[string]string{"plan_type": "b"},
			problems: []wantProblem{{"Plan Type", "plan_type", ProblemCollision, `"Plan Type" and "plan_type" both become plan_type; kept "plan_type"`}},
		},
		{
			name:     "The key already in normalized form wins over an earlier one.",
			json:     `{"Plan Type":"a","plan_type":"b"}`,
			props:    map[string]string{"plan_type": "b"},
			problems: []wantProblem{{"Plan Type", "plan_type", ProblemCollision, `kept "plan_type"`}},
		},
		{
			name:     "Without a key in normalized form, the last key wins.",
			json:     `{"plan-type":"b","Plan Type":"a"}`,
			props:    map[string]string{"plan_type": "a"},
			problems: []wantProblem{{"plan-type", "plan_type", ProblemCollision, `kept "Plan Type"`}},
		},
		{
			name:  "Three colliding keys report two collisions.",
			json:  `{"Plan Type":"a","plan_type":"b","PLAN.TYPE":"c"}`,
			props: map[string]string{"plan_type": "b"},
			problems: []wantProblem{
				{"Plan Type", "plan_type", ProblemCollision, `kept "plan_type"`},
				{"PLAN.TYPE", "plan_type", ProblemCollision, `kept "plan_type"`},
			},
		},
		{
			name:     "A HubSpot name wins over a renamed Segment name.",
			json:     `{"firstname":"A","first_name":"B"}`,
			props:    map[string]string{"firstname": "A"},
			problems: []wantProblem{{"first_name", "firstname", ProblemCollision, `kept "firstname"`}},
		},
		{
			name:     "A flat key wins over a flattened nested key.",
			json:     `{"plan":{"tier":"pro"},"plan_tier":"team"}`,
			props:    map[string]string{"plan_tier": "team"},
			problems: []wantProblem{{"plan.tier", "plan_tier", ProblemCollision, `kept "plan_tier"`}},
		},
		{
			name:     "A top-level city wins over address.city.",
			json:     `{"city":"Paris","address":{"city":"Lyon"}}`,
			props:    map[string]string{"city": "Paris"},
			problems: []wantProblem{{"address.city", "city", ProblemCollision, `kept "city"`}},
		},
		{
			name:     "A duplicated JSON key keeps its last value.",
			json:     `{"city":"Paris","city":"Lyon"}`,
			props:    map[string]string{"city": "Lyon"},
			problems: []wantProblem{{"city", "city", ProblemCollision, `kept "city"`}},
		},
		{
			name:     "The winner is chosen by key, so an invalid winner is not replaced by the loser.",
			json:     `{"Seats":"5","seats":"many"}`,
			problems: []wantProblem{{"Seats", "seats", ProblemCollision, `kept "seats"`}, {"seats", "seats", ProblemValue, "not a number"}},
		},
	})
}

func TestContactPropertiesValues(t *testing.T) {
	runContacts(t, []mapCase{
		{
			name: "Values are formatted by their property's type.",
			json: `{"newsletter":"TRUE","seats":"12","date_of_birth":"1990-05-17T23:30:00-05:00","last_login":1700000000,
				"interests":["sports","music"],"phone":"+44 20 7946 0000","mobilephone":"007123","lifetime_value":1e3}`,
			props: map[string]string{"newsletter": "true", "seats": "12", "date_of_birth": "1990-05-17", "last_login": "2023-11-14T22:13:20.000Z",
				"interests": "sports;music", "phone": "+44 20 7946 0000", "mobilephone": "007123", "lifetime_value": "1000"},
		},
		{
			name:  "Epoch milliseconds and seconds give the same datetime.",
			json:  `{"last_login":1700000000000}`,
			props: map[string]string{"last_login": "2023-11-14T22:13:20.000Z"},
		},
		{
			name:  "A numeric phone number keeps its digits.",
			json:  `{"phone":442079460000}`,
			props: map[string]string{"phone": "442079460000"},
		},
		{
			name: "Values that do not fit their type are problems.",
			json: `{"seats":"a dozen","newsletter":"yes","date_of_birth":"soon"}`,
			problems: []wantProblem{
				{"seats", "seats", ProblemValue, `value "a dozen" is not a number (property seats is a number)`},
				{"newsletter", "newsletter", ProblemValue, `value "yes" is not true or false (property newsletter is a bool)`},
				{"date_of_birth", "date_of_birth", ProblemValue, "not a date (want YYYY-MM-DD"},
			},
		},
		{
			name:  "An empty string is sent for a text property and skipped for a number.",
			json:  `{"firstname":"","seats":"","newsletter":" "}`,
			props: map[string]string{"firstname": ""},
		},
		{
			name:  "With clearing, an empty string clears a number.",
			json:  `{"seats":""}`,
			opts:  Options{ClearNulls: true},
			props: map[string]string{"seats": ""},
		},
		{
			name: "Nulls are skipped.",
			json: `{"firstname":null,"favorite_color":null}`,
		},
		{
			name:  "With clearing, a null clears a known property and an unknown null is dropped.",
			json:  `{"firstname":null,"favorite_color":null}`,
			opts:  Options{ClearNulls: true},
			props: map[string]string{"firstname": ""},
		},
		{
			name:     "A read-only property is reported, not sent.",
			json:     `{"hs_object_id":5,"hs_lead_score":10}`,
			problems: []wantProblem{{"hs_object_id", "hs_object_id", ProblemReadOnly, "read-only"}, {"hs_lead_score", "hs_lead_score", ProblemReadOnly, "read-only"}},
		},
		{
			name:  "Keys that cannot be names are problems.",
			json:  `{"123":"x","!!!":"y","email":"a@b.co"}`,
			props: map[string]string{"email": "a@b.co"},
			problems: []wantProblem{
				{"123", "", ProblemName, `normalizes to "123", which does not start with a letter`},
				{"!!!", "", ProblemName, "no letters or digits"},
			},
		},
		{
			name:     "Traits that are not an object are a problem.",
			json:     `"jane@example.com"`,
			problems: []wantProblem{{"", "", ProblemValue, `expected an object of properties, got the string "jane@example.com"`}},
		},
		{
			name: "Missing traits give an empty result.",
			json: ``,
		},
	})
}

func TestContactPropertiesNestedObjects(t *testing.T) {
	runContacts(t, []mapCase{
		{
			name:    "Nested objects are flattened with underscores.",
			json:    `{"plan":{"tier":"pro","limits":{"seats":5}}}`,
			props:   map[string]string{"plan_tier": "pro"},
			unknown: []Unknown{{Key: "plan.limits.seats", Property: Property{Name: "plan_limits_seats", Type: TypeNumber, FieldType: FieldNumber}, Value: "5"}},
		},
		{
			name:  "With NestedJSON, a nested object is sent as compact JSON.",
			json:  `{"plan":{"tier":"pro", "limits":{"seats":5}}}`,
			opts:  Options{NestedJSON: true},
			props: map[string]string{"plan": `{"tier":"pro","limits":{"seats":5}}`},
		},
		{
			name:  "With NestedJSON, address and company are still mapped field by field.",
			json:  `{"address":{"city":"Paris"},"company":{"name":"Acme"}}`,
			opts:  Options{NestedJSON: true},
			props: map[string]string{"city": "Paris", "company": "Acme"},
		},
		{
			name:     "With NestedJSON, an object for a number property is a problem.",
			json:     `{"seats":{"used":5}}`,
			opts:     Options{NestedJSON: true},
			problems: []wantProblem{{"seats", "seats", ProblemValue, "value is an object, not a number"}},
		},
		{
			name:  "An array of strings for a text property is ';'-joined.",
			json:  `{"plan":["pro","team"]}`,
			props: map[string]string{"plan": "pro;team"},
		},
	})
}

func TestContactPropertiesUnknown(t *testing.T) {
	tests := []mapCase{
		{
			name: "Unknown properties are returned with inferred types, in order.",
			json: `{"favorite_color":"blue","score":12,"vip":true,"signup_date":"2026-01-05","last_seen":"2026-01-05T10:00:00+01:00","tags":["a","b"]}`,
			unknown: []Unknown{
				{Key: "favorite_color", Property: Property{Name: "favorite_color", Type: TypeString, FieldType: FieldText}, Value: "blue"},
				{Key: "score", Property: Property{Name: "score", Type: TypeNumber, FieldType: FieldNumber}, Value: "12"},
				{Key: "vip", Property: Property{Name: "vip", Type: TypeBool, FieldType: FieldBooleanCheckbox}, Value: "true"},
				{Key: "signup_date", Property: Property{Name: "signup_date", Type: TypeDate, FieldType: FieldDate}, Value: "2026-01-05"},
				{Key: "last_seen", Property: Property{Name: "last_seen", Type: TypeDateTime, FieldType: FieldDate}, Value: "2026-01-05T09:00:00.000Z"},
				{Key: "tags", Property: Property{Name: "tags", Type: TypeEnumeration, FieldType: FieldCheckbox}, Value: "a;b"},
			},
		},
		{
			name:  "With AcceptUnknown, unknown properties are sent by their inferred type.",
			json:  `{"favorite_color":"blue","last_seen":"2026-01-05T10:00:00+01:00"}`,
			opts:  Options{AcceptUnknown: true},
			props: map[string]string{"favorite_color": "blue", "last_seen": "2026-01-05T09:00:00.000Z"},
		},
		{
			name:  "Engage computed traits and audiences map to a number and a bool.",
			json:  `{"email":"jane@example.com","lifetime_value":1234.5,"high_value_users":true}`,
			props: map[string]string{"email": "jane@example.com", "lifetime_value": "1234.5"},
			unknown: []Unknown{
				{Key: "high_value_users", Property: Property{Name: "high_value_users", Type: TypeBool, FieldType: FieldBooleanCheckbox}, Value: "true"},
			},
		},
		{
			name:  "An Engage audience exit sets the boolean to false.",
			json:  `{"email":"jane@example.com","newsletter":false}`,
			props: map[string]string{"email": "jane@example.com", "newsletter": "false"},
		},
	}
	runContacts(t, tests)
}

func TestContactPropertiesCutsLongValues(t *testing.T) {
	cat := mustCatalog(t, contactCatalog)
	long := strings.Repeat("é", MaxStringLen+10)
	r := ContactProperties(gjson.Parse(fmt.Sprintf(`{"firstname":%q}`, long)), cat, Options{})
	got := r.Properties["firstname"]
	if n := utf8.RuneCountInString(got); n != MaxStringLen || !utf8.ValidString(got) {
		t.Errorf("firstname has %d characters (valid UTF-8: %v); want %d", n, utf8.ValidString(got), MaxStringLen)
	}
}

func TestCompanyProperties(t *testing.T) {
	cat := mustCatalog(t, companyCatalog)
	tests := []mapCase{
		{
			name: "Segment group traits become HubSpot company properties with a domain.",
			json: `{"name":"Acme","website":"https://www.acme.com/about","employees":250,"industry":"COMPUTER_SOFTWARE",
				"description":"Rockets","phone":"+1 555 0100","address":{"street":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"}}`,
			props: map[string]string{"name": "Acme", "website": "https://www.acme.com/about", "domain": "acme.com", "numberofemployees": "250",
				"industry": "COMPUTER_SOFTWARE", "description": "Rockets", "phone": "+1 555 0100", "address": "1 Main St", "city": "Berlin", "zip": "10115", "country": "DE"},
		},
		{
			name:  "The domain keeps subdomains by default.",
			json:  `{"website":"http://Shop.Example.co.uk:8080/path?q=1"}`,
			props: map[string]string{"website": "http://Shop.Example.co.uk:8080/path?q=1", "domain": "shop.example.co.uk"},
		},
		{
			name:  "The domain is the registrable domain when asked.",
			json:  `{"website":"http://Shop.Example.co.uk:8080/path?q=1"}`,
			opts:  Options{RegistrableDomain: true},
			props: map[string]string{"website": "http://Shop.Example.co.uk:8080/path?q=1", "domain": "example.co.uk"},
		},
		{
			name:  "An international website gives a punycode domain.",
			json:  `{"website":"https://www.bücher.de/x"}`,
			props: map[string]string{"website": "https://www.bücher.de/x", "domain": "xn--bcher-kva.de"},
		},
		{
			name:  "A domain trait wins over the website and is cleaned the same way.",
			json:  `{"domain":"https://WWW.Acme.io","website":"https://other.com"}`,
			props: map[string]string{"website": "https://other.com", "domain": "acme.io"},
		},
		{
			name:     "A website that is not a public host gives no domain and a problem.",
			json:     `{"name":"Dev","website":"http://localhost:3000"}`,
			props:    map[string]string{"name": "Dev", "website": "http://localhost:3000"},
			problems: []wantProblem{{"website", "domain", ProblemValue, "no domain: website \"http://localhost:3000\""}},
		},
		{
			name:     "A website that is not a string gives no domain and a problem.",
			json:     `{"website":42}`,
			props:    map[string]string{"website": "42"},
			problems: []wantProblem{{"website", "domain", ProblemValue, "not a website"}},
		},
		{
			name:     "An employee range is not a number.",
			json:     `{"employees":"50-100"}`,
			problems: []wantProblem{{"employees", "numberofemployees", ProblemValue, "not a number"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, CompanyProperties(gjson.Parse(tt.json), cat, tt.opts), tt)
		})
	}
}

func TestResultCount(t *testing.T) {
	cat := mustCatalog(t, contactCatalog)
	r := ContactProperties(gjson.Parse(`{"Plan Type":"a","plan_type":"b","PLAN-TYPE":"c","123":"x","seats":"x"}`), cat, Options{})
	if got := r.Count(ProblemCollision); got != 2 {
		t.Errorf("Count(collision) = %d; want 2", got)
	}
	if got := r.Count(ProblemName); got != 1 {
		t.Errorf("Count(invalid_name) = %d; want 1", got)
	}
	if got := r.Count(ProblemValue); got != 1 {
		t.Errorf("Count(invalid_value) = %d; want 1", got)
	}
}

func TestContactPropertiesDeepObjects(t *testing.T) {
	runContacts(t, []mapCase{
		{
			name:    "Objects nested deeper than eight levels are sent as JSON text.",
			json:    `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}`,
			unknown: []Unknown{{Key: "a.b.c.d.e.f.g.h", Property: Property{Name: "a_b_c_d_e_f_g_h", Type: TypeString, FieldType: FieldText}, Value: `{"i":1}`}},
		},
		{
			name:    "Objects nested eight levels deep are flattened.",
			json:    `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}`,
			unknown: []Unknown{{Key: "a.b.c.d.e.f.g.h", Property: Property{Name: "a_b_c_d_e_f_g_h", Type: TypeNumber, FieldType: FieldNumber}, Value: "1"}},
		},
	})
}

// FuzzMapping feeds arbitrary JSON to the three mappers: none may panic,
// every name sent is a valid property name within its limit, every value
// within its limit, and events never carry more than 50 properties.
func FuzzMapping(f *testing.F) {
	f.Add(identifyTraits, false)
	f.Add(`{"Plan Type":"a","plan_type":"b","plan":{"tier":1},"website":"https://www.bücher.de/x","employees":"1e3"}`, true)
	f.Add(`{"a":null,"b":[],"c":{},"d":[{"e":1}],"123":"x"}`, false)
	cat := mustCatalog(f, contactCatalog)
	f.Fuzz(func(t *testing.T, text string, nested bool) {
		v := gjson.Parse(text)
		opts := Options{NestedJSON: nested, ClearNulls: nested}
		check := func(what string, r Result, nameLimit, valueLimit int) {
			for name, value := range r.Properties {
				if !validName.MatchString(name) || len(name) > nameLimit {
					t.Fatalf("%s(%s) sent property name %q", what, text, name)
				}
				if n := len(utf16Units(value)); n > valueLimit {
					t.Fatalf("%s(%s) sent %d characters for %s", what, text, n, name)
				}
			}
			for _, u := range r.Unknown {
				if !validName.MatchString(u.Property.Name) || u.Property.Type == "" {
					t.Fatalf("%s(%s) returned unknown property %+v", what, text, u.Property)
				}
			}
		}
		check("ContactProperties", ContactProperties(v, cat, opts), MaxPropertyNameLen, MaxStringLen)
		check("CompanyProperties", CompanyProperties(v, nil, opts), MaxPropertyNameLen, MaxStringLen)
		ev := EventProperties(v, opts)
		check("EventProperties", ev, MaxEventNameLen, MaxEventValueLen)
		if len(ev.Properties) > MaxEventProperties {
			t.Fatalf("EventProperties(%s) sent %d properties", text, len(ev.Properties))
		}
	})
}

func TestResultKeysNameTheKeyEachPropertyCameFrom(t *testing.T) {
	res := ContactProperties(gjson.Parse(`{"firstName":"Ada","address":{"city":"Paris"},"Plan Type":"pro","plan_type":"team"}`), nil, Options{AcceptUnknown: true})
	want := map[string]string{"firstname": "firstName", "city": "address.city", "plan_type": "plan_type"}
	if fmt.Sprint(res.Keys) != fmt.Sprint(want) {
		t.Errorf("Keys %v, want %v", res.Keys, want)
	}
	co := CompanyProperties(gjson.Parse(`{"website":"https://www.example.com/about"}`), nil, Options{AcceptUnknown: true})
	if co.Keys["domain"] != "website" || co.Properties["domain"] != "example.com" {
		t.Errorf("company domain %q from %q, want example.com from website", co.Properties["domain"], co.Keys["domain"])
	}
}
