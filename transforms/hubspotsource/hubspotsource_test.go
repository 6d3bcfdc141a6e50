package hubspotsource_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/schemas"
	"github.com/switchyard/switchyard/transforms/hubspotsource"
)

var update = flag.Bool("update", false, "rewrite testdata/calls.golden.jsonl")

// The HubSpot facts are in shared/reference/hubspot-source.md and
// hubspot-api.md:
//   - records: batch/read and list-all answer {id, properties{},
//     propertiesWithHistory?{name: [{value, timestamp, sourceType, ...}]},
//     createdAt, updatedAt, archived}; "Property values are strings"; a
//     property without a value does not appear (source §3.1 [S-crm],
//     [O-objapis]), and the sandbox answers a requested one as null;
//   - contacts bump lastmodifieddate, companies and deals
//     hs_lastmodifieddate (source §3.2 [O-search], [C-85019]);
//   - property types bool, date, datetime, enumeration, number,
//     phone_number, string; date and datetime take ISO 8601 or epoch
//     milliseconds in UTC and come back as ISO 8601; a date in epoch
//     milliseconds must be midnight UTC; a value is cleared by sending "";
//     a multi-checkbox holds its values ';'-separated; a boolean checkbox
//     is true / false (api §5 [O-props]).

var origin = hubspotsource.Origin{Source: "crm-in", HubID: 123, ReceivedAt: time.Date(2026, 12, 1, 10, 6, 0, 123456789, time.UTC)}

var contactMapping = hubspotsource.Mapping{Properties: map[string]string{
	"firstname":          "first_name",
	"lifecyclestage":     "lifecycle_stage",
	"hs_lead_status":     "lead_status",
	"num_employees_band": "employees_band",
	"annual_revenue":     "revenue",
	"is_beta_tester":     "beta",
	"birthday":           "birthday",
	"trial_ends_at":      "trial_ends_at",
	"interests":          "interests",
	"phone":              "phone",
}}

var contactTypes = hubspotsource.PropertyTypes{
	"firstname": "string", "lifecyclestage": "enumeration", "hs_lead_status": "enumeration",
	"num_employees_band": "enumeration", "annual_revenue": "number", "is_beta_tester": "bool",
	"birthday": "date", "trial_ends_at": "datetime", "interests": "enumeration", "phone": "phone_number",
	"email": "string", "createdate": "datetime", "lastmodifieddate": "datetime", "hs_object_id": "number",
}

var companyMapping = hubspotsource.Mapping{Properties: map[string]string{"name": "name", "industry": "industry", "numberofemployees": "employees"}}
var companyTypes = hubspotsource.PropertyTypes{"name": "string", "industry": "enumeration", "numberofemployees": "number"}

var dealMapping = hubspotsource.Mapping{Properties: map[string]string{"dealstage": "deal_stage", "amount": "deal_amount", "closedate": "deal_close_date"}}
var dealTypes = hubspotsource.PropertyTypes{"dealstage": "enumeration", "amount": "number", "closedate": "datetime"}

func record(t testing.TB, name string) gjson.Result {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return gjson.ParseBytes(raw)
}

func mustIdentify(t *testing.T, rec gjson.Result, m hubspotsource.Mapping, types hubspotsource.PropertyTypes) gjson.Result {
	t.Helper()
	raw, err := hubspotsource.Identify(origin, rec, "u-42", m, types)
	if err != nil {
		t.Fatal(err)
	}
	return gjson.ParseBytes(raw)
}

func TestTypedValue(t *testing.T) {
	cases := []struct {
		typ, value, want string // want "" means an error
		fact             string
	}{
		{"number", "42", `42`, "numbers are strings in records"},
		{"number", "-1500.50", `-1500.50`, "decimal digits kept as written"},
		{"number", "12345678901234567890123", `12345678901234567890123`, "big integers stay exact"},
		{"number", "0.1000000000000000055511151231257827", `0.1000000000000000055511151231257827`, "long fractions stay exact"},
		{"number", "1e3", `1000`, "no exponent in the output"},
		{"number", " 7 ", `7`, "surrounding spaces"},
		{"number", "NaN", "", "not a number"},
		{"number", "Infinity", "", "not a number"},
		{"number", "1,000", "", "not a number"},
		{"number", "", "", "empty is not a number (build skips it before)"},
		{"bool", "true", `true`, "a boolean checkbox is true / false"},
		{"bool", "false", `false`, "a boolean checkbox is true / false"},
		{"bool", "TRUE", `true`, "any case"},
		{"bool", "yes", "", "not a boolean"},
		{"bool", "1", "", "not a boolean"},
		{"date", "2015-05-01", `"2015-05-01"`, "dates come back as YYYY-MM-DD"},
		{"date", "1430438400000", `"2015-05-01"`, "epoch ms at midnight UTC is May 1 2015 [O-props]"},
		{"date", "2015-05-01T00:00:00.000Z", `"2015-05-01"`, "an ISO time at midnight UTC"},
		{"date", "1635535865000", "", "not midnight, HubSpot's INVALID_DATE"},
		{"date", "2015-02-30", "", "not a day"},
		{"date", "May 1 2015", "", "not a date"},
		{"datetime", "2020-02-29T03:30:17.000Z", `"2020-02-29T03:30:17.000Z"`, "ISO 8601 in UTC"},
		{"datetime", "1427997766000", `"2015-04-02T18:02:46.000Z"`, "epoch milliseconds"},
		{"datetime", "2020-02-29T03:30:17Z", `"2020-02-29T03:30:17.000Z"`, "ISO with varying precision (source §7.13)"},
		{"datetime", "2020-02-29T03:30:17.123456Z", `"2020-02-29T03:30:17.123Z"`, "cut to milliseconds"},
		{"datetime", "2020-02-29T04:30:17.5+01:00", `"2020-02-29T03:30:17.500Z"`, "an offset becomes UTC"},
		{"datetime", "2020-02-29", `"2020-02-29T00:00:00.000Z"`, "a date is its midnight UTC"},
		{"datetime", "-86400000", `"1969-12-31T00:00:00.000Z"`, "before 1970"},
		{"datetime", "999999999999999", "", "beyond the year 9999"},
		{"datetime", "yesterday", "", "not a time"},
		{"enumeration", "customer", `"customer"`, "lifecyclestage takes internal names"},
		{"enumeration", "analytics;crm", `"analytics;crm"`, "a multi-checkbox is kept ';'-separated"},
		{"string", "Ada <ada@example.com> & co", `"Ada <ada@example.com> & co"`, "strings as they are, HTML not escaped"},
		{"string", " 007 ", `" 007 "`, "strings are not trimmed"},
		{"phone_number", "+44 20 7946 0000", `"+44 20 7946 0000"`, "phone numbers are strings"},
		{"", "42", `"42"`, "an unknown property is a string"},
		{"object_coordinates", "1,2", `"1,2"`, "an internal type is a string"},
	}
	for _, c := range cases {
		got, err := hubspotsource.TypedValue(c.value, c.typ)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s %q (%s): got %s, want an error", c.typ, c.value, c.fact, got)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s %q (%s): got %s, %v; want %s", c.typ, c.value, c.fact, got, err, c.want)
		}
	}
}

func TestIdentifyMapsOnlyMappedPropertiesTyped(t *testing.T) {
	out := mustIdentify(t, record(t, "contact"), contactMapping, contactTypes)
	wantTraits := map[string]string{
		"first_name":      `"Ada"`,
		"lifecycle_stage": `"customer"`,
		"revenue":         `12345678901234567890.25`,
		"beta":            `true`,
		"birthday":        `"1990-07-14"`,
		"trial_ends_at":   `"2025-12-01T10:00:00.000Z"`,
		"interests":       `"analytics;crm"`,
	}
	got := map[string]string{}
	out.Get("traits").ForEach(func(k, v gjson.Result) bool { got[k.Str] = v.Raw; return true })
	if !reflect.DeepEqual(got, wantTraits) {
		t.Errorf("traits\n got %v\nwant %v", got, wantTraits)
	}
	// Unmapped properties (email, app_user_id, createdate...) never leave,
	// neither as traits nor under _switchyard.
	for _, s := range []string{"ada@example.com", "u-42\"", "2026-11-02T08:15:00.000Z", "app_user_id", "createdate"} {
		if strings.Contains(out.Get("traits").Raw+out.Get("_switchyard").Raw, s) {
			t.Errorf("unmapped %s left: %s", s, out.Raw)
		}
	}
	props := out.Get("_switchyard.hubspot.properties")
	// null (hs_lead_status) and absent (phone) are left out; "" (cleared)
	// carries its time but no trait.
	var names []string
	props.ForEach(func(k, _ gjson.Result) bool { names = append(names, k.Str); return true })
	wantNames := []string{"annual_revenue", "birthday", "firstname", "interests", "is_beta_tester", "lifecyclestage", "num_employees_band", "trial_ends_at"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("_switchyard.hubspot.properties names %v, want %v", names, wantNames)
	}
	if v := props.Get("num_employees_band"); v.Get("value").Raw != `""` || out.Get("traits.employees_band").Exists() {
		t.Errorf("a cleared value: %s, trait %s", v.Raw, out.Get("traits.employees_band").Raw)
	}
	// Values are HubSpot's strings, times its history's newest entry or
	// updatedAt.
	for name, want := range map[string]string{
		"firstname":      `{"value":"Ada","timestamp":"2026-12-01T10:00:00.000Z"}`,
		"lifecyclestage": `{"value":"customer","timestamp":"2026-11-20T09:30:00.000Z"}`,
		"annual_revenue": `{"value":"12345678901234567890.25","timestamp":"2026-12-01T10:05:00.000Z"}`,
	} {
		if got := props.Get(name).Raw; got != want {
			t.Errorf("properties.%s = %s, want %s", name, got, want)
		}
	}
	for path, want := range map[string]string{
		"type": "identify", "userId": "u-42", "receivedAt": "2026-12-01T10:06:00.123Z",
		"context.externalIds.0.id": "1001", "context.externalIds.0.type": "hubspot_contact_id",
		"context.externalIds.0.collection": "users", "context.externalIds.0.encoding": "none",
		"_switchyard.source": "crm-in", "_switchyard.hubspot.hubId": "123",
		"_switchyard.hubspot.objectType": "contacts", "_switchyard.hubspot.objectId": "1001",
	} {
		if got := out.Get(path).String(); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

func TestAValueThatIsNotItsTypeIsLeftOutAndSaidSo(t *testing.T) {
	rec := gjson.Parse(`{"id":"5","updatedAt":"2026-12-01T10:00:00Z","properties":{"amount":"NaN","firstname":"Ada"}}`)
	out := mustIdentify(t, rec, hubspotsource.Mapping{Properties: map[string]string{"amount": "amount", "firstname": "first_name"}},
		hubspotsource.PropertyTypes{"amount": "number"})
	if out.Get("traits.amount").Exists() || out.Get("traits.first_name").Str != "Ada" {
		t.Fatalf("traits %s", out.Get("traits").Raw)
	}
	p := out.Get("_switchyard.hubspot.properties.amount")
	if p.Get("value").Str != "NaN" || !strings.Contains(p.Get("invalid").Str, "not a number") {
		t.Fatalf("properties.amount %s, want its value and why it is not a trait", p.Raw)
	}
	if out.Get("_switchyard.hubspot.properties.firstname.invalid").Exists() {
		t.Fatal("a valid value is marked invalid")
	}
}

func TestAllMapsEveryPropertyUnderItsOwnName(t *testing.T) {
	rec := record(t, "contact")
	out := mustIdentify(t, rec, hubspotsource.Mapping{All: true}, contactTypes)
	want := map[string]bool{}
	rec.Get("properties").ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.String && v.Str != "" {
			want[k.Str] = true
		}
		return true
	})
	got := map[string]bool{}
	out.Get("traits").ForEach(func(k, _ gjson.Result) bool { got[k.Str] = true; return true })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("traits %v, want every property holding a value %v", got, want)
	}
	for trait, raw := range map[string]string{"email": `"ada@example.com"`, "hs_object_id": `1001`, "createdate": `"2026-11-02T08:15:00.000Z"`, "app_user_id": `"u-42"`} {
		if got := out.Get("traits." + trait).Raw; got != raw {
			t.Errorf("traits.%s = %s, want %s", trait, got, raw)
		}
	}
	// The newest property time is email's history entry, 10:04, or
	// updatedAt (10:05) for properties without history.
	if ts := out.Get("timestamp").Str; ts != "2026-12-01T10:05:00.000Z" {
		t.Errorf("timestamp %s", ts)
	}
}

func TestTimestampIsTheNewestMappedPropertyTime(t *testing.T) {
	const history = `"propertiesWithHistory":{
		"firstname":[{"value":"Ada","timestamp":"2026-12-01T09:00:00.000Z"},{"value":"Adah","timestamp":"2026-12-01T09:30:00.000Z"}],
		"lastname":[{"value":"Lovelace","timestamp":"2026-12-01T08:00:00.000Z"}],
		"city":[{"value":"London","timestamp":"2026-12-01T11:00:00.000Z"}]}`
	firstLast := hubspotsource.Mapping{Properties: map[string]string{"firstname": "first_name", "lastname": "last_name"}}
	cases := []struct {
		name, rec string
		m         hubspotsource.Mapping
		want      string
	}{
		{"the newest history entry of any mapped property, in any order, unmapped city not counted",
			`{"id":"1","updatedAt":"2026-12-01T12:00:00Z","properties":{"firstname":"Adah","lastname":"Lovelace","city":"London"},` + history + `}`,
			firstLast, "2026-12-01T09:30:00.000Z"},
		{"without history, updatedAt",
			`{"id":"1","updatedAt":"2026-12-01T12:00:00.5Z","properties":{"firstname":"Ada","lastmodifieddate":"2026-12-01T13:00:00Z"}}`,
			firstLast, "2026-12-01T12:00:00.500Z"},
		{"a property without history takes updatedAt, newer than the other's history",
			`{"id":"1","updatedAt":"2026-12-01T12:00:00Z","properties":{"firstname":"Adah","lastname":"Lovelace"},"propertiesWithHistory":{"firstname":[{"value":"Adah","timestamp":"2026-12-01T09:30:00.000Z"}]}}`,
			firstLast, "2026-12-01T12:00:00.000Z"},
		{"without updatedAt, the contact's lastmodifieddate",
			`{"id":"1","properties":{"firstname":"Ada","lastmodifieddate":"1764583200000","hs_lastmodifieddate":"2030-01-01T00:00:00Z"}}`,
			firstLast, "2025-12-01T10:00:00.000Z"},
		{"a value only in history is carried with its time",
			`{"id":"1","propertiesWithHistory":{"firstname":[{"value":"Ada","timestamp":1764583200000}]}}`,
			firstLast, "2025-12-01T10:00:00.000Z"},
		{"no mapped property held: the record's time",
			`{"id":"1","updatedAt":"2026-12-01T12:00:00Z","properties":{"city":"London"}}`,
			firstLast, "2026-12-01T12:00:00.000Z"},
	}
	for _, c := range cases {
		out := mustIdentify(t, gjson.Parse(c.rec), c.m, nil)
		if got := out.Get("timestamp").Str; got != c.want {
			t.Errorf("%s: timestamp %s, want %s", c.name, got, c.want)
		}
		want := hubspotsource.MessageID("crm-in", "contacts", "1", "u-42", mustTime(t, c.want).UnixMilli())
		if got := out.Get("messageId").Str; got != want {
			t.Errorf("%s: messageId %s, want the one of version %s (%s)", c.name, got, c.want, want)
		}
	}
	// Companies and deals fall back to hs_lastmodifieddate.
	rec := gjson.Parse(`{"id":"9","properties":{"name":"Acme","lastmodifieddate":"2020-01-01T00:00:00Z","hs_lastmodifieddate":"2026-12-02T00:00:00Z"}}`)
	for _, f := range []func() ([]byte, error){
		func() ([]byte, error) { return hubspotsource.Group(origin, rec, "acme", "u-42", companyMapping, nil) },
		func() ([]byte, error) {
			return hubspotsource.DealTraits(origin, rec, "u-42", hubspotsource.Mapping{Properties: map[string]string{"name": "deal_name"}}, nil)
		},
	} {
		raw, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if ts := gjson.GetBytes(raw, "timestamp").Str; ts != "2026-12-02T00:00:00.000Z" {
			t.Errorf("%s: timestamp %s, want hs_lastmodifieddate", gjson.GetBytes(raw, "_switchyard.hubspot.objectType"), ts)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestMessageIDsAreDeterministic(t *testing.T) {
	rec := record(t, "contact")
	first := mustIdentify(t, rec, contactMapping, contactTypes)
	again := mustIdentify(t, gjson.Parse(rec.Raw), contactMapping, contactTypes)
	id := first.Get("messageId").Str
	if !strings.HasPrefix(id, "hubspot-") || len(id) != len("hubspot-")+36 || id != again.Get("messageId").Str {
		t.Fatalf("messageIds %q and %q", id, again.Get("messageId").Str)
	}
	if first.Raw != again.Raw {
		t.Fatalf("the same record gave two calls:\n%s\n%s", first.Raw, again.Raw)
	}
	// A later receivedAt changes nothing but receivedAt.
	later := origin
	later.ReceivedAt = later.ReceivedAt.Add(time.Hour)
	raw, err := hubspotsource.Identify(later, rec, "u-42", contactMapping, contactTypes)
	if err != nil || gjson.GetBytes(raw, "messageId").Str != id {
		t.Fatalf("receivedAt changed the messageId: %v", err)
	}
	// A newer edit of a mapped property is a new version.
	edited := strings.Replace(rec.Raw, `"timestamp": "2026-12-01T10:00:00.000Z"`, `"timestamp": "2026-12-01T10:07:00.000Z"`, 1)
	if edited == rec.Raw {
		t.Fatal("the fixture changed: no firstname timestamp to edit")
	}
	if got := mustIdentify(t, gjson.Parse(edited), contactMapping, contactTypes).Get("messageId").Str; got == id {
		t.Fatal("a newer version kept the messageId")
	}
	base := hubspotsource.MessageID("crm-in", "contacts", "1001", "u-42", 1764583200000)
	for name, other := range map[string]string{
		"version": hubspotsource.MessageID("crm-in", "contacts", "1001", "u-42", 1764583200001),
		"source":  hubspotsource.MessageID("crm-out", "contacts", "1001", "u-42", 1764583200000),
		"object":  hubspotsource.MessageID("crm-in", "companies", "1001", "u-42", 1764583200000),
		"id":      hubspotsource.MessageID("crm-in", "contacts", "1002", "u-42", 1764583200000),
		"user":    hubspotsource.MessageID("crm-in", "contacts", "1001", "u-43", 1764583200000),
		// Escaped parts cannot run into each other.
		"split": hubspotsource.MessageID("crm-in/contacts", "1001", "u-42", "", 1764583200000),
	} {
		if other == base {
			t.Errorf("a different %s gave the same messageId", name)
		}
	}
	if base != hubspotsource.MessageID("crm-in", "contacts", "1001", "u-42", 1764583200000) {
		t.Error("MessageID is not deterministic")
	}
}

func TestGroupAndDealTraits(t *testing.T) {
	comp := record(t, "company")
	groupID, err := hubspotsource.GroupID(comp, "app_company_id")
	if err != nil || groupID != "acme-1" {
		t.Fatalf("GroupID = %q, %v", groupID, err)
	}
	g1, err := hubspotsource.Group(origin, comp, groupID, "u-42", companyMapping, companyTypes)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := hubspotsource.Group(origin, comp, groupID, "u-43", companyMapping, companyTypes)
	if err != nil {
		t.Fatal(err)
	}
	out := gjson.ParseBytes(g1)
	for path, want := range map[string]string{
		"type": "group", "groupId": "acme-1", "userId": "u-42", "timestamp": "2026-12-01T11:00:00.000Z",
		"traits.name": "Acme & Sons <Ltd>", "traits.industry": "COMPUTER_SOFTWARE", "traits.employees": "250",
		"context.externalIds.0.id": "2002", "context.externalIds.0.type": "hubspot_company_id", "context.externalIds.0.collection": "accounts",
		"_switchyard.hubspot.objectType": "companies", "_switchyard.hubspot.objectId": "2002",
	} {
		if got := out.Get(path).String(); got != want {
			t.Errorf("group %s = %q, want %q", path, got, want)
		}
	}
	if out.Get("traits.employees").Type != gjson.Number || out.Get("traits.domain").Exists() {
		t.Errorf("group traits %s", out.Get("traits").Raw)
	}
	// One call per associated user, each its own messageId.
	if out.Get("messageId").Str == gjson.GetBytes(g2, "messageId").Str {
		t.Error("two users of one company share a messageId")
	}

	d, err := hubspotsource.DealTraits(origin, record(t, "deal"), "u-42", dealMapping, dealTypes)
	if err != nil {
		t.Fatal(err)
	}
	out = gjson.ParseBytes(d)
	for path, want := range map[string]string{
		"type": "identify", "userId": "u-42", "traits.deal_stage": "contractsent", "traits.deal_amount": "1500.5",
		"traits.deal_close_date":   "2026-12-31T00:00:00.000Z",
		"context.externalIds.0.id": "3003", "context.externalIds.0.type": "hubspot_deal_id", "context.externalIds.0.collection": "deals",
		"_switchyard.hubspot.objectType": "deals", "_switchyard.hubspot.objectId": "3003", "timestamp": "2026-12-01T12:00:00.000Z",
	} {
		if got := out.Get(path).String(); got != want {
			t.Errorf("deal %s = %q, want %q", path, got, want)
		}
	}
	if raw := out.Get("traits.deal_amount").Raw; raw != "1500.50" {
		t.Errorf("deal_amount %s, want HubSpot's digits 1500.50", raw)
	}
	if n := len(out.Get("traits").Map()); n != 3 {
		t.Errorf("deal traits %s, want the 3 mapped", out.Get("traits").Raw)
	}
}

func TestGroupID(t *testing.T) {
	cases := []struct {
		rec, idProperty, want, says string
	}{
		{`{"id":"1","properties":{"app_company_id":" acme-1 ","domain":"acme.com"}}`, "app_company_id", "acme-1", ""},
		{`{"id":"1","properties":{"domain":"https://WWW.Acme.example.com/about"}}`, "", "acme.example.com", ""},
		{`{"id":"1","properties":{"domain":"bücher.de"}}`, "", "xn--bcher-kva.de", ""},
		{`{"id":"1","properties":{"domain":"acme.com"}}`, "app_company_id", "", "company 1 has no app_company_id"},
		{`{"id":"1","properties":{"app_company_id":"","domain":"acme.com"}}`, "app_company_id", "", "company 1 has no app_company_id"},
		{`{"id":"1","properties":{"app_company_id":null}}`, "app_company_id", "", "company 1 has no app_company_id"},
		{`{"id":"1","properties":{"name":"Acme"}}`, "", "", "company 1 has no domain"},
		{`{"id":"1","properties":{"domain":"localhost"}}`, "", "", "company 1: website"},
		{`{"id":"1","properties":{"domain":42}}`, "", "", "not a string"},
		{`"acme.com"`, "", "", "must be a JSON object"},
	}
	for _, c := range cases {
		got, err := hubspotsource.GroupID(gjson.Parse(c.rec), c.idProperty)
		if c.says != "" {
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("GroupID(%s, %q) = %q, %v; want an error saying %q", c.rec, c.idProperty, got, err, c.says)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("GroupID(%s, %q) = %q, %v; want %q", c.rec, c.idProperty, got, err, c.want)
		}
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	good := `{"id":"1","updatedAt":"2026-12-01T10:00:00Z","properties":{"firstname":"Ada"}}`
	m := hubspotsource.Mapping{Properties: map[string]string{"firstname": "first_name"}}
	cases := []struct {
		name, rec, userID string
		o                 hubspotsource.Origin
		m                 hubspotsource.Mapping
		says              string
	}{
		{"no id", `{"properties":{"firstname":"Ada"},"updatedAt":"2026-12-01T10:00:00Z"}`, "u", origin, m, "contacts record: it has no id"},
		{"id not digits", `{"id":"abc","updatedAt":"2026-12-01T10:00:00Z"}`, "u", origin, m, `id "abc" is not a HubSpot record id`},
		{"empty user", good, "", origin, m, "contacts 1: userID is empty"},
		{"not an object", `[1]`, "u", origin, m, "must be a JSON object"},
		{"invalid JSON", `{"id":"1",`, "u", origin, m, "must be a JSON object"},
		{"properties not an object", `{"id":"1","updatedAt":"2026-12-01T10:00:00Z","properties":[]}`, "u", origin, m, "properties is an array, not an object"},
		{"value not a string", `{"id":"1","updatedAt":"2026-12-01T10:00:00Z","properties":{"firstname":7}}`, "u", origin, m, "property firstname is a number 7; HubSpot property values are strings"},
		{"no time", `{"id":"1","properties":{"firstname":"Ada"}}`, "u", origin, m, "property firstname has no history and the record has no updatedAt or lastmodifieddate"},
		{"no time, nothing mapped", `{"id":"1","properties":{}}`, "u", origin, m, "holds no mapped property and has no updatedAt"},
		{"bad updatedAt", `{"id":"1","updatedAt":"yesterday"}`, "u", origin, m, `updatedAt: value "yesterday" is not an RFC 3339 time`},
		{"bad history time", `{"id":"1","propertiesWithHistory":{"firstname":[{"value":"Ada","timestamp":"soon"}]}}`, "u", origin, m, "propertiesWithHistory.firstname[0].timestamp"},
		{"history not an array", `{"id":"1","propertiesWithHistory":{"firstname":{}}}`, "u", origin, m, "propertiesWithHistory.firstname is an object, not an array"},
		{"no source", good, "u", hubspotsource.Origin{HubID: 1, ReceivedAt: origin.ReceivedAt}, m, "Source"},
		{"no hub", good, "u", hubspotsource.Origin{Source: "s", ReceivedAt: origin.ReceivedAt}, m, "HubID"},
		{"no receivedAt", good, "u", hubspotsource.Origin{Source: "s", HubID: 1}, m, "ReceivedAt is not set"},
		{"empty mapping", good, "u", origin, hubspotsource.Mapping{}, "maps no property"},
		{"All and Properties", good, "u", origin, hubspotsource.Mapping{All: true, Properties: m.Properties}, "takes no Properties"},
		{"two to one trait", good, "u", origin, hubspotsource.Mapping{Properties: map[string]string{"firstname": "name", "lastname": "name"}}, `"firstname" and "lastname" both map to trait "name"`},
		{"empty trait", good, "u", origin, hubspotsource.Mapping{Properties: map[string]string{"firstname": ""}}, `"firstname" has an empty trait name`},
	}
	for _, c := range cases {
		out, err := hubspotsource.Identify(c.o, gjson.Parse(c.rec), c.userID, c.m, nil)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: error %v, want one saying %q (output %s)", c.name, err, c.says, out)
		}
	}
	if out, err := hubspotsource.Group(origin, gjson.Parse(good), "", "u", m, nil); err == nil || !strings.Contains(err.Error(), "groupID is empty") {
		t.Errorf("group without groupID: %v (output %s)", err, out)
	}
}

// TestCallsMatchGoldenValidateAndParseAlike checks the three kinds of call
// against testdata/calls.golden.jsonl (go test -update rewrites it), against
// the Segment JSON Schemas the gateway validates with, and that
// encoding/json and gjson read them alike.
func TestCallsMatchGoldenValidateAndParseAlike(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	comp := record(t, "company")
	var calls [][]byte
	for _, f := range []func() ([]byte, error){
		func() ([]byte, error) {
			return hubspotsource.Identify(origin, record(t, "contact"), "u-42", contactMapping, contactTypes)
		},
		func() ([]byte, error) {
			return hubspotsource.Identify(origin, record(t, "contact"), "u-42", hubspotsource.Mapping{All: true}, contactTypes)
		},
		func() ([]byte, error) {
			return hubspotsource.Group(origin, comp, "acme-1", "u-42", companyMapping, companyTypes)
		},
		func() ([]byte, error) {
			return hubspotsource.DealTraits(origin, record(t, "deal"), "u-42", dealMapping, dealTypes)
		},
	} {
		raw, err := f()
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, raw)
	}
	var got bytes.Buffer
	for _, raw := range calls {
		checkCall(t, validator, raw)
		got.Write(raw)
		got.WriteByte('\n')
	}
	const golden = "testdata/calls.golden.jsonl"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("calls differ from %s:\ngot:\n%s\nwant:\n%s", golden, got.Bytes(), want)
	}
	// The checks are not lenient: an identify without userId fails the
	// validator, and a duplicate key makes the two parsers disagree.
	if err := validator.Validate([]byte(`{"type":"identify","messageId":"m","traits":{}}`)); err == nil {
		t.Fatal("the validator accepted an identify without userId or anonymousId")
	}
	if ok, _ := parseAlike([]byte(`{"a":1,"a":2}`)); ok {
		t.Fatal("parseAlike missed a duplicate key")
	}
}

// checkCall fails t unless raw is a call the gateway's validator accepts,
// with a messageId, a timestamp and a receivedAt, that encoding/json and
// gjson read alike.
func checkCall(t testing.TB, validator *schemas.Validator, raw []byte) {
	t.Helper()
	if err := validator.Validate(raw); err != nil {
		t.Fatalf("the call does not follow the Segment spec: %v\n%s", err, raw)
	}
	if ok, why := parseAlike(raw); !ok {
		t.Fatalf("encoding/json and gjson read the call differently: %s\n%s", why, raw)
	}
	ev := schemas.NewEvent(raw)
	if ev.MessageID() == "" || ev.Timestamp().IsZero() || ev.ReceivedAt().IsZero() || ev.Source() == "" {
		t.Fatalf("the call lacks messageId, timestamp, receivedAt or source: %s", raw)
	}
}

// parseAlike reports whether encoding/json (numbers kept as their text)
// and gjson read raw as the same value.
func parseAlike(raw []byte) (bool, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var viaJSON any
	if err := dec.Decode(&viaJSON); err != nil {
		return false, err.Error()
	}
	if !gjson.ValidBytes(raw) {
		return false, "gjson finds it invalid"
	}
	viaGJSON, dup := fromGJSON(gjson.ParseBytes(raw))
	if dup != "" {
		return false, "duplicate key " + dup
	}
	if !reflect.DeepEqual(viaJSON, viaGJSON) {
		return false, "values differ"
	}
	return true, ""
}

// fromGJSON converts a gjson value as encoding/json with UseNumber would
// decode it, and names a duplicate object key if it meets one.
func fromGJSON(r gjson.Result) (any, string) {
	switch {
	case r.IsObject():
		m := map[string]any{}
		dup := ""
		r.ForEach(func(k, v gjson.Result) bool {
			if _, ok := m[k.Str]; ok && dup == "" {
				dup = k.Str
			}
			var d string
			m[k.Str], d = fromGJSON(v)
			if dup == "" {
				dup = d
			}
			return true
		})
		return m, dup
	case r.IsArray():
		a := []any{}
		dup := ""
		for _, v := range r.Array() {
			x, d := fromGJSON(v)
			a = append(a, x)
			if dup == "" {
				dup = d
			}
		}
		return a, dup
	case r.Type == gjson.String:
		return r.Str, ""
	case r.Type == gjson.Number:
		return json.Number(r.Raw), ""
	case r.Type == gjson.True:
		return true, ""
	case r.Type == gjson.False:
		return false, ""
	}
	return nil, ""
}

// FuzzIdentify holds that any record either is an error or becomes a call
// the validator accepts and both parsers read alike, for a contact under
// "all", a company and a deal.
func FuzzIdentify(f *testing.F) {
	for _, name := range []string{"contact", "company", "deal"} {
		raw, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw), "u-42")
	}
	f.Add(`{"id":1,"updatedAt":1764583200000,"properties":{"amount":"1e400","birthday":"0001-01-01","trial_ends_at":"-62135596800000"}}`, "u")
	f.Add(`{"id":"1","propertiesWithHistory":{"a\u0000.b":[{"value":"\ud800","timestamp":"9999-12-31T23:59:59.999999Z"}]}}`, "\x00")
	f.Add(`{"id":"1","updatedAt":"2026-12-01T10:00:00+14:00","properties":{"is_beta_tester":"TRUE","interests":";a;;b"}}`, "u")
	validator, err := schemas.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	types := hubspotsource.PropertyTypes{"amount": "number", "annual_revenue": "number", "numberofemployees": "number",
		"is_beta_tester": "bool", "birthday": "date", "closedate": "datetime", "trial_ends_at": "datetime",
		"createdate": "datetime", "hs_object_id": "number", "interests": "enumeration"}
	f.Fuzz(func(t *testing.T, rec, userID string) {
		r := gjson.Parse(rec)
		all := hubspotsource.Mapping{All: true}
		if raw, err := hubspotsource.Identify(origin, r, userID, all, types); err == nil {
			checkCall(t, validator, raw)
		}
		if raw, err := hubspotsource.Group(origin, r, "g-1", userID, all, types); err == nil {
			checkCall(t, validator, raw)
		}
		if raw, err := hubspotsource.DealTraits(origin, r, userID, dealMapping, types); err == nil {
			checkCall(t, validator, raw)
		}
		if id, err := hubspotsource.GroupID(r, ""); err == nil && id == "" {
			t.Fatal("GroupID gave an empty groupId without an error")
		}
	})
}
