package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// Each test names, in its cases or comments, the source tag of the fact it
// checks in shared/reference/hubspot-api.md.

type sandboxClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sandboxClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *sandboxClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Server, *sandboxClock) {
	t.Helper()
	clock := &sandboxClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	return sandbox.New(cfg), clock
}

type sandboxResp struct {
	code   int
	header http.Header
	body   string
}

func (r sandboxResp) get(path string) gjson.Result { return gjson.Get(r.body, path) }

const testToken = "pat-na1-test"

func call(t *testing.T, s *sandbox.Server, method, path, body string) sandboxResp {
	t.Helper()
	return callAs(t, s, testToken, method, path, body)
}

func callAs(t *testing.T, s *sandbox.Server, token, method, path, body string) sandboxResp {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return sandboxResp{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func mustStatus(t *testing.T, r sandboxResp, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("status %d, want %d; body %s", r.code, want, r.body)
	}
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// inputs builds {"inputs":[...]} from n inputs made by f.
func inputs(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return `{"inputs":[` + strings.Join(parts, ",") + `]}`
}

func upsertEmail(email, props string) string {
	return fmt.Sprintf(`{"id":%q,"idProperty":"email","properties":{%s}}`, email, props)
}

func createContacts(t *testing.T, s *sandbox.Server, n int) []string {
	t.Helper()
	r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", inputs(n, func(i int) string {
		return fmt.Sprintf(`{"properties":{"email":"user%d@example.com"}}`, i)
	}))
	mustStatus(t, r, 201)
	var ids []string
	for _, res := range r.get("results").Array() {
		ids = append(ids, res.Get("id").String())
	}
	return ids
}

func createCompanies(t *testing.T, s *sandbox.Server, n int) []string {
	t.Helper()
	r := call(t, s, "POST", "/crm/v3/objects/companies/batch/create", inputs(n, func(i int) string {
		return fmt.Sprintf(`{"properties":{"name":"Company %d","domain":"c%d.example"}}`, i, i)
	}))
	mustStatus(t, r, 201)
	var ids []string
	for _, res := range r.get("results").Array() {
		ids = append(ids, res.Get("id").String())
	}
	return ids
}

func TestSandboxBatchSizeLimits(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 10000})
	contacts := createContacts(t, s, 2)
	companies := createCompanies(t, s, 1)
	assoc := func(i int) string {
		return fmt.Sprintf(`{"from":{"id":%q},"to":{"id":%q}}`, contacts[i%2], companies[0])
	}
	labelled := func(i int) string {
		return fmt.Sprintf(`{"from":{"id":%q},"to":{"id":%q},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":279}]}`, contacts[i%2], companies[0])
	}
	event := func(i int) string {
		return `{"eventName":"pe12345678_signed_up","email":"a@example.com","properties":{}}`
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		want   int
	}{
		// [O-objapis] "Object API batch endpoints are limited to 100 inputs per request"
		{"an upsert of 100 inputs is accepted", "POST", "/crm/v3/objects/contacts/batch/upsert",
			inputs(100, func(i int) string { return upsertEmail(fmt.Sprintf("u%d@example.com", i), "") }), 200},
		{"an upsert of 101 inputs is refused", "POST", "/crm/v3/objects/contacts/batch/upsert",
			inputs(101, func(i int) string { return upsertEmail(fmt.Sprintf("v%d@example.com", i), "") }), 400},
		{"a create of 101 inputs is refused", "POST", "/crm/v3/objects/companies/batch/create",
			inputs(101, func(i int) string { return `{"properties":{"name":"x"}}` }), 400},
		{"an update of 101 inputs is refused", "POST", "/crm/v3/objects/contacts/batch/update",
			inputs(101, func(i int) string { return fmt.Sprintf(`{"id":"%d","properties":{}}`, i) }), 400},
		{"a read of 101 inputs is refused", "POST", "/crm/v3/objects/contacts/batch/read",
			inputs(101, func(i int) string { return fmt.Sprintf(`{"id":"%d"}`, i) }), 400},
		// [C-hist50] batch/read with propertiesWithHistory takes at most 50 inputs
		{"a read with property history of 51 inputs is refused", "POST", "/crm/v3/objects/contacts/batch/read",
			strings.TrimSuffix(inputs(51, func(i int) string { return fmt.Sprintf(`{"id":"%d"}`, i) }), "}") + `,"propertiesWithHistory":["email"]}`, 400},
		// [O-events] "batch endpoint supports batches of 500"
		{"an events batch of 500 is accepted", "POST", "/events/v3/send/batch", inputs(500, event), 204},
		{"an events batch of 501 is refused", "POST", "/events/v3/send/batch", inputs(501, event), 400},
		// Reference §4.1: no documented figure for associate/default; capped at 100.
		{"a default association batch of 100 is accepted", "POST", "/crm/v4/associations/contacts/companies/batch/associate/default", inputs(100, assoc), 200},
		{"a default association batch of 101 is refused", "POST", "/crm/v4/associations/contacts/companies/batch/associate/default", inputs(101, assoc), 400},
		// [O-assoc] batch/read 1,000, batch/create 2,000
		{"an association read of 1,000 is accepted", "POST", "/crm/v4/associations/contacts/companies/batch/read",
			inputs(1000, func(i int) string { return fmt.Sprintf(`{"id":%q}`, contacts[i%2]) }), 200},
		{"an association read of 1,001 is refused", "POST", "/crm/v4/associations/contacts/companies/batch/read",
			inputs(1001, func(i int) string { return fmt.Sprintf(`{"id":%q}`, contacts[i%2]) }), 400},
		{"a labelled association create of 2,000 is accepted", "POST", "/crm/v4/associations/contacts/companies/batch/create", inputs(2000, labelled), 201},
		{"a labelled association create of 2,001 is refused", "POST", "/crm/v4/associations/contacts/companies/batch/create", inputs(2001, labelled), 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, tc.method, tc.path, tc.body)
			mustStatus(t, r, tc.want)
			if tc.want == 400 {
				if got := r.get("category").String(); got != "VALIDATION_ERROR" {
					t.Errorf("category %q, want VALIDATION_ERROR", got)
				}
				if r.get("status").String() != "error" || !uuidRe.MatchString(r.get("correlationId").String()) {
					t.Errorf("error body lacks HubSpot's shape [O-err]: %s", r.body)
				}
			}
		})
	}
	if n := len(s.Contacts()); n != 102 {
		t.Errorf("%d contacts after the batches, want 102: a refused batch must write nothing", n)
	}
}

// [S] property values are typed as strings: a JSON number or boolean fails.
func TestSandboxPropertyValuesMustBeStrings(t *testing.T) {
	cases := []struct {
		name  string
		props string
	}{
		{"a number value is refused", `"firstname":"A","annualrevenue":42`},
		{"a boolean value is refused", `"firstname":"A","hs_email_optout":true`},
		{"a null value is refused", `"firstname":null`},
		{"an object value is refused", `"firstname":{"first":"A"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSandbox(t, sandbox.Config{})
			r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert",
				`{"inputs":[{"id":"a@example.com","idProperty":"email","objectWriteTraceId":"t1","properties":{`+tc.props+`}}]}`)
			mustStatus(t, r, 400)
			if r.get("category").String() != "VALIDATION_ERROR" {
				t.Errorf("category %q, want VALIDATION_ERROR", r.get("category"))
			}
			if len(s.Contacts()) != 0 {
				t.Error("a contact was written")
			}
		})
	}
	t.Run("string values are accepted", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{})
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert",
			`{"inputs":[{"id":"a@example.com","idProperty":"email","properties":{"annualrevenue":"42","phone":"+44 20 7946 0000"}}]}`)
		mustStatus(t, r, 200)
		if got := s.Contacts()[0].Properties["phone"]; got != "+44 20 7946 0000" {
			t.Errorf("phone stored as %q", got)
		}
	})
}

// [O-objapis] the exact PROPERTY_DOESNT_EXIST body.
func TestSandboxUnknownPropertyBody(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{HubID: 62515})
	r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert",
		`{"inputs":[{"id":"a@example.com","idProperty":"email","properties":{"firstname":"A","testproperty":"x"}}]}`)
	mustStatus(t, r, 400)
	wantMsg := `Property values were not valid: [{"isValid":false,"message":"Property \"testproperty\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"testproperty","localizedErrorMessage":"Property \"testproperty\" does not exist","portalId":62515}]`
	if got := r.get("message").String(); got != wantMsg {
		t.Errorf("message\n got %s\nwant %s", got, wantMsg)
	}
	if got := r.get("status").String(); got != "error" {
		t.Errorf("status %q", got)
	}
	if got := r.get("category").String(); got != "VALIDATION_ERROR" {
		t.Errorf("category %q", got)
	}
	if !uuidRe.MatchString(r.get("correlationId").String()) {
		t.Errorf("correlationId %q is not a uuid", r.get("correlationId"))
	}
	if got := r.get("errors.#").Int(); got != 1 {
		t.Fatalf("%d errors, want 1", got)
	}
	if got := r.get("errors.0.message").String(); got != `Property "testproperty" does not exist` {
		t.Errorf("errors[0].message %q", got)
	}
	if got := r.get("errors.0.code").String(); got != "PROPERTY_DOESNT_EXIST" {
		t.Errorf("errors[0].code %q", got)
	}
	if got := r.get("errors.0.context.propertyName").Raw; got != `["testproperty"]` {
		t.Errorf("errors[0].context.propertyName %s", got)
	}
	if len(s.Contacts()) != 0 {
		t.Error("the input was half-applied")
	}
}

// [O-props] date values: YYYY-MM-DD or midnight UTC; [C-date] INVALID_DATE otherwise.
func TestSandboxDateValues(t *testing.T) {
	cases := []struct {
		name    string
		value   string
		stored  string
		message string
	}{
		{"a calendar date is kept", "2015-05-01", "2015-05-01", ""},
		{"epoch ms at midnight UTC is stored as its date", "1430438400000", "2015-05-01", ""},
		{"ISO 8601 at midnight UTC is stored as its date", "2015-05-01T00:00:00.000Z", "2015-05-01", ""},
		{"epoch ms that is not midnight is INVALID_DATE", "1635535865", "", "1635535865 is at 22:18:55.865 UTC, not midnight!"},
		{"an instant that is not midnight is INVALID_DATE", "2015-05-01T10:30:00Z", "", "2015-05-01T10:30:00Z is at 10:30:00.000 UTC, not midnight!"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSandbox(t, sandbox.Config{})
			r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert",
				inputs(1, func(int) string { return upsertEmail("a@example.com", `"date_of_birth":"`+tc.value+`"`) }))
			if tc.message == "" {
				mustStatus(t, r, 200)
				if got := s.Contacts()[0].Properties["date_of_birth"]; got != tc.stored {
					t.Errorf("stored %q, want %q", got, tc.stored)
				}
				return
			}
			mustStatus(t, r, 400)
			want := fmt.Sprintf(`[{"isValid":false,"message":%q,"error":"INVALID_DATE","name":"date_of_birth"`, tc.message)
			if !strings.Contains(r.get("message").String(), want) {
				t.Errorf("message %s lacks %s", r.get("message"), want)
			}
			if r.get("errors.0.code").String() != "INVALID_DATE" || r.get("category").String() != "VALIDATION_ERROR" {
				t.Errorf("body %s", r.body)
			}
		})
	}
}

// [C-conflict] creating an existing email is CONFLICT "Contact already exists. Existing ID: N".
func TestSandboxEmailUniqueness(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 2) // user0@, user1@

	t.Run("creating an existing email in another case is a CONFLICT", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"email":"new@example.com"}},{"properties":{"email":"USER0@example.com"}}]}`)
		mustStatus(t, r, 409)
		if got, want := r.get("message").String(), "Contact already exists. Existing ID: "+ids[0]; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
		if r.get("category").String() != "CONFLICT" {
			t.Errorf("category %q", r.get("category"))
		}
	})
	t.Run("two inputs of one create with the same email conflict", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"email":"twin@example.com"}},{"properties":{"email":"twin@example.com"}}]}`)
		mustStatus(t, r, 409)
	})
	t.Run("updating a contact to another's email is a CONFLICT", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"email":"user0@example.com"}}]}`, ids[1]))
		mustStatus(t, r, 409)
		if got, want := r.get("message").String(), "Contact already exists. Existing ID: "+ids[0]; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	})
	t.Run("an invalid email is refused", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"email":"not-an-email"}}]}`)
		mustStatus(t, r, 400)
	})
	if n := len(s.Contacts()); n != 2 {
		t.Errorf("%d contacts, want 2: failed requests must write nothing", n)
	}
}

// [O-contacts], [S] upsert by email creates, then updates; results carry `new`.
func TestSandboxUpsertByEmailCreatesThenUpdates(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	r1 := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", inputs(1, func(int) string {
		return upsertEmail("Ada@Example.com", `"firstname":"Ada","lifecyclestage":"lead"`)
	}))
	mustStatus(t, r1, 200)
	if !r1.get("results.0.new").Bool() || r1.get("status").String() != "COMPLETE" {
		t.Fatalf("first upsert: %s", r1.body)
	}
	clock.Advance(time.Minute)
	r2 := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", inputs(1, func(int) string {
		return upsertEmail("ada@example.com", `"lastname":"Lovelace","lifecyclestage":"customer"`)
	}))
	mustStatus(t, r2, 200)
	if !r2.get("results.0.new").Exists() || r2.get("results.0.new").Bool() {
		t.Fatalf("second upsert should report new=false: %s", r2.body)
	}
	if r1.get("results.0.id").String() != r2.get("results.0.id").String() {
		t.Errorf("the upserts wrote two records: %s and %s", r1.get("results.0.id"), r2.get("results.0.id"))
	}
	cs := s.Contacts()
	if len(cs) != 1 {
		t.Fatalf("%d contacts, want 1", len(cs))
	}
	p := cs[0].Properties
	if p["firstname"] != "Ada" || p["lastname"] != "Lovelace" || p["lifecyclestage"] != "customer" {
		t.Errorf("properties %v", p)
	}
	if !cs[0].UpdatedAt.After(cs[0].CreatedAt) {
		t.Errorf("updatedAt %v not after createdAt %v", cs[0].UpdatedAt, cs[0].CreatedAt)
	}
	t.Run("an option that is not in the enumeration is refused", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", inputs(1, func(int) string {
			return upsertEmail("ada@example.com", `"lifecyclestage":"champion"`)
		}))
		mustStatus(t, r, 400)
		if r.get("errors.0.code").String() != "INVALID_OPTION" {
			t.Errorf("body %s", r.body)
		}
	})
	t.Run("two inputs with the same id are refused", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", inputs(2, func(int) string {
			return upsertEmail("dup@example.com", "")
		}))
		mustStatus(t, r, 400)
	})
}

// [C-nonunique] idProperty must be a unique property; [O-props] hasUniqueValue properties work.
func TestSandboxIDPropertyMustBeUnique(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{HubID: 21939747})
	mustStatus(t, call(t, s, "POST", "/crm/v3/properties/companies",
		`{"name":"external_company_id","label":"External id","type":"string","fieldType":"text","groupName":"companyinformation","hasUniqueValue":true}`), 201)

	cases := []struct {
		name       string
		idProperty string
		want       int
		message    string
	}{
		{"hs_object_id is refused as idProperty", "hs_object_id", 400,
			"Unable to perform update/upsert by non-unique 0-2 property hs_object_id in portal ID 21939747"},
		{"domain is not unique and is refused", "domain", 400,
			"Unable to perform update/upsert by non-unique 0-2 property domain in portal ID 21939747"},
		{"a property created with hasUniqueValue is accepted", "external_company_id", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, "POST", "/crm/v3/objects/companies/batch/upsert",
				fmt.Sprintf(`{"inputs":[{"id":"acme.example","idProperty":%q,"properties":{"name":"Acme"}}]}`, tc.idProperty))
			mustStatus(t, r, tc.want)
			if tc.message != "" {
				if got := r.get("message").String(); got != tc.message {
					t.Errorf("message %q, want %q", got, tc.message)
				}
				if r.get("category").String() != "VALIDATION_ERROR" {
					t.Errorf("category %q", r.get("category"))
				}
			}
		})
	}
	cs := s.Companies()
	if len(cs) != 1 || cs[0].Properties["external_company_id"] != "acme.example" {
		t.Errorf("companies %+v", cs)
	}
}

// [O-err] with objectWriteTraceId, failures are per input in a 207.
func TestSandboxMultiStatusWithTraceIDs(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	existing := createContacts(t, s, 1)[0] // user0@example.com
	body := `{"inputs":[
		{"properties":{"email":"good@example.com","firstname":"Good"},"objectWriteTraceId":"t-good"},
		{"properties":{"email":"bad@example.com","nosuchprop":"x"},"objectWriteTraceId":"t-bad"},
		{"properties":{"email":"user0@example.com"},"objectWriteTraceId":"t-dup"},
		{"properties":{"email":"also-good@example.com"},"objectWriteTraceId":"t-good2"}]}`
	r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", body)
	mustStatus(t, r, 207)
	if r.get("status").String() != "COMPLETE" || r.get("numErrors").Int() != 2 {
		t.Fatalf("body %s", r.body)
	}
	if got := r.get("results.#.objectWriteTraceId").Raw; got != `["t-good","t-good2"]` {
		t.Errorf("results trace ids %s", got)
	}
	errs := map[string]gjson.Result{}
	for _, e := range r.get("errors").Array() {
		errs[e.Get("context.objectWriteTraceId.0").String()] = e
	}
	if e := errs["t-bad"]; e.Get("category").String() != "VALIDATION_ERROR" || e.Get("errors.0.code").String() != "PROPERTY_DOESNT_EXIST" || e.Get("status").String() != "error" {
		t.Errorf("t-bad error %s", e.Raw)
	}
	if e := errs["t-dup"]; e.Get("category").String() != "CONFLICT" || e.Get("message").String() != "Contact already exists. Existing ID: "+existing {
		t.Errorf("t-dup error %s", e.Raw)
	}
	var emails []string
	for _, c := range s.Contacts() {
		emails = append(emails, c.Properties["email"])
	}
	if got := strings.Join(emails, ","); got != "user0@example.com,good@example.com,also-good@example.com" {
		t.Errorf("contacts %s: the good inputs must be written and only they", got)
	}

	t.Run("an upsert reports per input too", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", `{"inputs":[
			{"id":"good@example.com","idProperty":"email","properties":{"lastname":"Ok"},"objectWriteTraceId":"u1"},
			{"id":"x@example.com","idProperty":"email","properties":{"date_of_birth":"1635535865"},"objectWriteTraceId":"u2"}]}`)
		mustStatus(t, r, 207)
		if r.get("errors.0.context.objectWriteTraceId").Raw != `["u2"]` || r.get("errors.0.errors.0.code").String() != "INVALID_DATE" {
			t.Errorf("body %s", r.body)
		}
		if r.get("results.0.new").Bool() || r.get("results.0.objectWriteTraceId").String() != "u1" {
			t.Errorf("results %s", r.get("results"))
		}
	})
	t.Run("EmailUpsertAllOrNothing fails the whole email upsert", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{EmailUpsertAllOrNothing: true})
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", `{"inputs":[
			{"id":"a@example.com","idProperty":"email","properties":{},"objectWriteTraceId":"u1"},
			{"id":"b@example.com","idProperty":"email","properties":{"nope":"x"},"objectWriteTraceId":"u2"}]}`)
		mustStatus(t, r, 400)
		if len(s.Contacts()) != 0 {
			t.Error("a contact was written")
		}
	})
}

// [O-objapis] in a plain batch one bad input fails the whole request.
func TestSandboxWithoutTraceIDsTheWholeBatchFails(t *testing.T) {
	cases := []struct {
		name     string
		path     string
		body     string
		status   int
		category string
	}{
		{"an unknown property fails a create", "/crm/v3/objects/contacts/batch/create",
			`{"inputs":[{"properties":{"email":"a@example.com"}},{"properties":{"email":"b@example.com","nosuch":"x"}}]}`, 400, "VALIDATION_ERROR"},
		{"an unknown property fails an upsert", "/crm/v3/objects/contacts/batch/upsert",
			`{"inputs":[` + upsertEmail("a@example.com", "") + `,` + upsertEmail("b@example.com", `"nosuch":"x"`) + `]}`, 400, "VALIDATION_ERROR"},
		{"a bad date fails an upsert even when the others have trace ids", "/crm/v3/objects/contacts/batch/upsert",
			`{"inputs":[{"id":"a@example.com","idProperty":"email","properties":{},"objectWriteTraceId":"t1"},` + upsertEmail("b@example.com", `"date_of_birth":"1635535865"`) + `]}`, 400, "VALIDATION_ERROR"},
		{"a conflict fails a create", "/crm/v3/objects/contacts/batch/create",
			`{"inputs":[{"properties":{"email":"a@example.com"}},{"properties":{"email":"seed@example.com"}}]}`, 409, "CONFLICT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSandbox(t, sandbox.Config{})
			mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", `{"inputs":[{"properties":{"email":"seed@example.com"}}]}`), 201)
			r := call(t, s, "POST", tc.path, tc.body)
			mustStatus(t, r, tc.status)
			if r.get("category").String() != tc.category {
				t.Errorf("category %q, want %q", r.get("category"), tc.category)
			}
			if n := len(s.Contacts()); n != 1 {
				t.Errorf("%d contacts, want only the seed: nothing of a failed batch may be written", n)
			}
		})
	}
}

// [O-search] filters, sorts, paging, total, limits.
func TestSandboxSearch(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	people := []string{
		`"email":"ada@example.com","firstname":"Ada","lastname":"Lovelace","city":"London","lifecyclestage":"customer"`,
		`"email":"alan@example.org","firstname":"Alan","lastname":"Turing","city":"London"`,
		`"email":"grace@navy.example","firstname":"Grace","lastname":"Hopper","city":"New York","lifecyclestage":"lead"`,
		`"email":"edsger@example.nl","firstname":"Edsger","lastname":"Dijkstra"`,
	}
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", inputs(len(people), func(i int) string {
		return `{"properties":{` + people[i] + `}}`
	})), 201)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/companies/batch/create", `{"inputs":[
		{"properties":{"name":"Small","numberofemployees":"9"}},
		{"properties":{"name":"Big","numberofemployees":"100"}},
		{"properties":{"name":"Mid","numberofemployees":"20"}}]}`), 201)

	search := func(typ, body string) sandboxResp {
		clock.Advance(time.Second) // stay inside the 5/s search limit
		return call(t, s, "POST", "/crm/v3/objects/"+typ+"/search", body)
	}
	names := func(r sandboxResp, prop string) string {
		var out []string
		for _, x := range r.get("results").Array() {
			out = append(out, x.Get("properties."+prop).String())
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name  string
		typ   string
		body  string
		want  string
		total int64
	}{
		{"EQ matches ignoring case", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"email","operator":"EQ","value":"ADA@example.com"}]}],"properties":["firstname"]}`, "Ada", 1},
		{"NEQ keeps the others and records without the value", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"city","operator":"NEQ","value":"London"}]}],"properties":["firstname"]}`, "Grace,Edsger", 2},
		{"IN matches any of the values", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"lastname","operator":"IN","values":["Turing","Hopper"]}]}],"properties":["firstname"]}`, "Alan,Grace", 2},
		{"HAS_PROPERTY keeps records with a value", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"lifecyclestage","operator":"HAS_PROPERTY"}]}],"properties":["firstname"]}`, "Ada,Grace", 2},
		{"NOT_HAS_PROPERTY keeps records without one", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"city","operator":"NOT_HAS_PROPERTY"}]}],"properties":["firstname"]}`, "Edsger", 1},
		{"CONTAINS_TOKEN matches a word", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"city","operator":"CONTAINS_TOKEN","value":"york"}]}],"properties":["firstname"]}`, "Grace", 1},
		{"CONTAINS_TOKEN takes a wildcard", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"email","operator":"CONTAINS_TOKEN","value":"*@example.com"}]}],"properties":["firstname"]}`, "Ada", 1},
		{"filters in a group are ANDed", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"city","operator":"EQ","value":"London"},{"propertyName":"lastname","operator":"EQ","value":"Turing"}]}],"properties":["firstname"]}`, "Alan", 1},
		{"filter groups are ORed", "contacts",
			`{"filterGroups":[{"filters":[{"propertyName":"lastname","operator":"EQ","value":"Turing"}]},{"filters":[{"propertyName":"lastname","operator":"EQ","value":"Dijkstra"}]}],"properties":["firstname"]}`, "Alan,Edsger", 2},
		{"a sort orders the results", "contacts",
			`{"sorts":[{"propertyName":"firstname","direction":"DESCENDING"}],"properties":["firstname"]}`, "Grace,Edsger,Alan,Ada", 4},
		{"numbers compare as numbers", "companies",
			`{"filterGroups":[{"filters":[{"propertyName":"numberofemployees","operator":"GT","value":"10"}]}],"sorts":[{"propertyName":"numberofemployees","direction":"ASCENDING"}],"properties":["name"]}`, "Mid,Big", 2},
		{"a numeric filter value may be a JSON number", "companies",
			`{"filterGroups":[{"filters":[{"propertyName":"numberofemployees","operator":"LTE","value":20}]}],"properties":["name"]}`, "Small,Mid", 2},
		{"a free-text query matches names", "contacts", `{"query":"hopper","properties":["firstname"]}`, "Grace", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prop := "firstname"
			if tc.typ == "companies" {
				prop = "name"
			}
			r := search(tc.typ, tc.body)
			mustStatus(t, r, 200)
			if got := names(r, prop); got != tc.want {
				t.Errorf("results %s, want %s", got, tc.want)
			}
			if got := r.get("total").Int(); got != tc.total {
				t.Errorf("total %d, want %d", got, tc.total)
			}
		})
	}

	t.Run("paging follows paging.next.after and total counts every match", func(t *testing.T) {
		var got []string
		after := ""
		for page := 0; page < 5; page++ {
			body := `{"limit":3,"sorts":[{"propertyName":"firstname","direction":"ASCENDING"}],"properties":["firstname"]`
			if after != "" {
				body += `,"after":"` + after + `"`
			}
			r := search("contacts", body+`}`)
			mustStatus(t, r, 200)
			if r.get("total").Int() != 4 {
				t.Errorf("total %d on page %d", r.get("total").Int(), page)
			}
			got = append(got, names(r, "firstname"))
			after = r.get("paging.next.after").String()
			if after == "" {
				break
			}
		}
		if strings.Join(got, "|") != "Ada,Alan,Edsger|Grace" {
			t.Errorf("pages %q", got)
		}
	})
	refusals := []struct {
		name string
		body string
	}{
		{"a limit above 200 is refused", `{"limit":201}`},
		{"paging beyond 10,000 results is refused", `{"after":"10000"}`},
		{"a body over 3,000 characters is refused", `{"query":"` + strings.Repeat("x", 3000) + `"}`},
		{"more than 6 filters in a group is refused", `{"filterGroups":[{"filters":[` + strings.TrimSuffix(strings.Repeat(`{"propertyName":"city","operator":"HAS_PROPERTY"},`, 7), ",") + `]}]}`},
		{"more than 5 filter groups is refused", `{"filterGroups":[` + strings.TrimSuffix(strings.Repeat(`{"filters":[{"propertyName":"city","operator":"HAS_PROPERTY"}]},`, 6), ",") + `]}`},
		{"more than one sort is refused", `{"sorts":[{"propertyName":"city","direction":"ASCENDING"},{"propertyName":"email","direction":"ASCENDING"}]}`},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := search("contacts", tc.body)
			mustStatus(t, r, 400)
			if r.get("category").String() != "VALIDATION_ERROR" {
				t.Errorf("category %q", r.get("category"))
			}
		})
	}
}

// [O-search] the 10,000 cap: a query's pages stop at offset 10,000.
func TestSandboxSearchStopsAtTenThousandResults(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{TenSecondlyLimit: 1000})
	for b := 0; b < 101; b++ {
		mustStatus(t, call(t, s, "POST", "/crm/v3/objects/companies/batch/create", inputs(100, func(i int) string {
			return `{"properties":{"name":"c"}}`
		})), 201)
	}
	clock.Advance(time.Second)
	r := call(t, s, "POST", "/crm/v3/objects/companies/search", `{"limit":200,"after":"9800"}`)
	mustStatus(t, r, 200)
	if r.get("total").Int() != 10100 || r.get("paging.next.after").String() != "10000" {
		t.Fatalf("total %s next %s", r.get("total"), r.get("paging.next.after"))
	}
	clock.Advance(time.Second)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/companies/search", `{"limit":200,"after":"10000"}`), 400)
}

// [O24-usage] no rate-limit headers on search; [O-search] its own 5/s limit; [SDK-retry] "secondly" message.
func TestSandboxSearchRateLimit(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	for i := 0; i < 5; i++ {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`)
		mustStatus(t, r, 200)
		for k := range r.header {
			if strings.HasPrefix(strings.ToLower(k), "x-hubspot-ratelimit") {
				t.Errorf("search response %d carries %s", i, k)
			}
		}
	}
	r := call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`)
	mustStatus(t, r, 429)
	if r.get("errorType").String() != "RATE_LIMIT" || r.get("message").String() != "You have reached your secondly limit." || r.get("policyName").String() != "SECONDLY" {
		t.Errorf("search 429 body %s", r.body)
	}
	// Searches do not spend the 10-second window.
	g := call(t, s, "GET", "/crm/v3/objects/contacts", "")
	mustStatus(t, g, 200)
	if got := g.header.Get("X-HubSpot-RateLimit-Remaining"); got != "99" {
		t.Errorf("Remaining %s after five searches, want 99", got)
	}
	clock.Advance(time.Second)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`), 200)
}

// [O-usage] the 10-second rolling window per tier; [C-429] the TEN_SECONDLY_ROLLING body.
func TestSandboxTenSecondWindowByTier(t *testing.T) {
	cases := []struct {
		name  string
		tier  string
		token string
		max   int
	}{
		{"free allows 100 per 10 s", "free", testToken, 100},
		{"starter allows 100 per 10 s", "starter", testToken, 100},
		{"professional allows 190 per 10 s", "professional", testToken, 190},
		{"enterprise allows 190 per 10 s", "enterprise", testToken, 190},
		{"the API add-on allows 250 per 10 s", "api-add-on", testToken, 250},
		{"an OAuth tier allows 110 per 10 s", "oauth", testToken, 110},
		{"an OAuth token allows 110 per 10 s whatever the tier", "enterprise", "oauth-abc", 110},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newSandbox(t, sandbox.Config{Tier: tc.tier})
			for i := 1; i <= tc.max; i++ {
				r := callAs(t, s, tc.token, "GET", "/crm/v3/objects/contacts", "")
				mustStatus(t, r, 200)
				if got, want := r.header.Get("X-HubSpot-RateLimit-Remaining"), strconv.Itoa(tc.max-i); got != want {
					t.Fatalf("request %d: Remaining %s, want %s", i, got, want)
				}
				if got := r.header.Get("X-HubSpot-RateLimit-Max"); got != strconv.Itoa(tc.max) {
					t.Fatalf("Max %s, want %d", got, tc.max)
				}
				if got := r.header.Get("X-HubSpot-RateLimit-Interval-Milliseconds"); got != "10000" {
					t.Fatalf("Interval-Milliseconds %s", got)
				}
				clock.Advance(time.Millisecond)
			}
			r := callAs(t, s, tc.token, "GET", "/crm/v3/objects/contacts", "")
			mustStatus(t, r, 429)
			if r.get("status").String() != "error" || r.get("errorType").String() != "RATE_LIMIT" ||
				r.get("policyName").String() != "TEN_SECONDLY_ROLLING" ||
				r.get("message").String() != "You have reached your ten_secondly_rolling limit." ||
				!uuidRe.MatchString(r.get("correlationId").String()) {
				t.Errorf("429 body %s", r.body)
			}
			if r.header.Get("Retry-After") != "" {
				t.Error("Retry-After sent though SendRetryAfter is off")
			}
			clock.Advance(10 * time.Second)
			mustStatus(t, callAs(t, s, tc.token, "GET", "/crm/v3/objects/contacts", ""), 200)
		})
	}
}

// [O-usage] the window rolls: requests leave it 10 s after they were made.
func TestSandboxTenSecondWindowRolls(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	get := func() sandboxResp { return call(t, s, "GET", "/crm/v3/objects/contacts", "") }
	for i := 0; i < 60; i++ {
		mustStatus(t, get(), 200)
	}
	clock.Advance(5 * time.Second)
	for i := 0; i < 40; i++ {
		mustStatus(t, get(), 200)
	}
	mustStatus(t, get(), 429) // the 101st within 10 s
	clock.Advance(5 * time.Second)
	r := get() // the first 60 have left the window
	mustStatus(t, r, 200)
	// 40 and this one: the rejected 101st spent nothing.
	if got := r.header.Get("X-HubSpot-RateLimit-Remaining"); got != "59" {
		t.Errorf("Remaining %s, want 59: a rejected request must not spend the budget", got)
	}
	t.Run("Retry-After is sent when configured", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{SendRetryAfter: true, TenSecondlyLimit: 1})
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
		r := call(t, s, "GET", "/crm/v3/objects/contacts", "")
		mustStatus(t, r, 429)
		if got := r.header.Get("Retry-After"); got != "10" {
			t.Errorf("Retry-After %q, want 10", got)
		}
	})
}

// [O-usage] the daily limit per account; [O24-usage] it resets at midnight in the account's time zone.
func TestSandboxDailyLimit(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s, clock := newSandbox(t, sandbox.Config{DailyLimit: 3, TimeZone: ny})
	// 23:59:00 in New York on 10 March 2026 is 03:59 UTC on 11 March.
	clock.t = time.Date(2026, 3, 10, 23, 59, 0, 0, ny)
	get := func(token string) sandboxResp { return callAs(t, s, token, "GET", "/crm/v3/objects/contacts", "") }
	for i := 1; i <= 3; i++ {
		r := get(testToken)
		mustStatus(t, r, 200)
		if r.header.Get("X-HubSpot-RateLimit-Daily") != "3" || r.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != strconv.Itoa(3-i) {
			t.Fatalf("Daily %s Daily-Remaining %s", r.header.Get("X-HubSpot-RateLimit-Daily"), r.header.Get("X-HubSpot-RateLimit-Daily-Remaining"))
		}
	}
	r := get("pat-na1-other") // the daily budget is the account's, shared by its apps
	mustStatus(t, r, 429)
	if r.get("policyName").String() != "DAILY" || r.get("message").String() != "You have reached your daily limit." ||
		r.get("errorType").String() != "RATE_LIMIT" || !uuidRe.MatchString(r.get("requestId").String()) {
		t.Errorf("DAILY body %s", r.body)
	}
	mustStatus(t, get("oauth-app"), 200) // OAuth calls have no daily limit
	clock.Advance(59 * time.Second)      // 23:59:59 local
	mustStatus(t, get(testToken), 429)
	clock.Advance(time.Second) // midnight in New York
	r = get(testToken)
	mustStatus(t, r, 200)
	if got := r.header.Get("X-HubSpot-RateLimit-Daily-Remaining"); got != "2" {
		t.Errorf("Daily-Remaining %s after the reset, want 2", got)
	}

	t.Run("the exhaust switch gives DAILY 429s until the local midnight", func(t *testing.T) {
		s, clock := newSandbox(t, sandbox.Config{TimeZone: ny, SendRetryAfter: true})
		clock.t = time.Date(2026, 3, 10, 20, 0, 0, 0, ny) // 00:00 UTC on the 11th: no reset in UTC terms
		mustStatus(t, call(t, s, "POST", "/_sandbox/exhaust-daily", ""), 204)
		r := call(t, s, "GET", "/crm/v3/objects/contacts", "")
		mustStatus(t, r, 429)
		if r.get("policyName").String() != "DAILY" || r.header.Get("Retry-After") != "14400" {
			t.Errorf("policy %s Retry-After %s", r.get("policyName"), r.header.Get("Retry-After"))
		}
		clock.Advance(3*time.Hour + 59*time.Minute)
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 429)
		clock.Advance(time.Minute)
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
	})
}

// [O24-usage], [O-changelog-oauth-headers] OAuth calls carry no Daily headers and have 110 per 10 s.
func TestSandboxOAuthTokens(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{Tier: "professional"})
	r := callAs(t, s, "oauth-token-1", "GET", "/crm/v3/objects/contacts", "")
	mustStatus(t, r, 200)
	if r.header.Get("X-HubSpot-RateLimit-Daily") != "" || r.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != "" {
		t.Errorf("OAuth response carries Daily headers: %v", r.header)
	}
	if r.header.Get("X-HubSpot-RateLimit-Max") != "110" {
		t.Errorf("Max %s, want 110", r.header.Get("X-HubSpot-RateLimit-Max"))
	}
	p := callAs(t, s, testToken, "GET", "/crm/v3/objects/contacts", "")
	if p.header.Get("X-HubSpot-RateLimit-Daily") != "625000" || p.header.Get("X-HubSpot-RateLimit-Max") != "190" {
		t.Errorf("private app headers: Daily %s Max %s", p.header.Get("X-HubSpot-RateLimit-Daily"), p.header.Get("X-HubSpot-RateLimit-Max"))
	}
	if p.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != "624999" {
		t.Errorf("Daily-Remaining %s: the OAuth call must not count", p.header.Get("X-HubSpot-RateLimit-Daily-Remaining"))
	}
}

// [O-usage] the burst limit is per app: two tokens have separate 10-second budgets.
func TestSandboxTokensHaveSeparateBudgets(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{Tokens: []string{"pat-a", "pat-b"}})
	for i := 0; i < 100; i++ {
		mustStatus(t, callAs(t, s, "pat-a", "GET", "/crm/v3/objects/contacts", ""), 200)
	}
	mustStatus(t, callAs(t, s, "pat-a", "GET", "/crm/v3/objects/contacts", ""), 429)
	r := callAs(t, s, "pat-b", "GET", "/crm/v3/objects/contacts", "")
	mustStatus(t, r, 200)
	if r.header.Get("X-HubSpot-RateLimit-Remaining") != "99" {
		t.Errorf("pat-b Remaining %s, want 99", r.header.Get("X-HubSpot-RateLimit-Remaining"))
	}
	if r.header.Get("X-HubSpot-RateLimit-Daily-Remaining") != strconv.Itoa(250000-101) {
		t.Errorf("Daily-Remaining %s: the day is shared by the account", r.header.Get("X-HubSpot-RateLimit-Daily-Remaining"))
	}
	t.Run("a token that is not configured gets 401", func(t *testing.T) {
		r := callAs(t, s, "pat-c", "GET", "/crm/v3/objects/contacts", "")
		mustStatus(t, r, 401)
		if r.get("status").String() != "error" || r.get("category").String() == "" || !uuidRe.MatchString(r.get("correlationId").String()) {
			t.Errorf("401 body %s", r.body)
		}
	})
	t.Run("a missing token gets 401", func(t *testing.T) {
		mustStatus(t, callAs(t, s, "", "GET", "/crm/v3/objects/contacts", ""), 401)
	})
}

// [O-assoc] v4 default associations, batch read, and [S] 500-per-page reads.
func TestSandboxAssociations(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	contacts := createContacts(t, s, 1)
	companies := createCompanies(t, s, 3)
	body := inputs(3, func(i int) string {
		return fmt.Sprintf(`{"from":{"id":%q},"to":{"id":%q}}`, contacts[0], companies[i])
	})
	r := call(t, s, "POST", "/crm/v4/associations/contacts/companies/batch/associate/default", body)
	mustStatus(t, r, 200)
	if r.get("status").String() != "COMPLETE" || r.get(`results.#(associationSpec.associationTypeId==279)#`).Get("#").Int() != 3 {
		t.Errorf("associate body %s", r.body)
	}

	t.Run("the contact lists its companies with type 279", func(t *testing.T) {
		r := call(t, s, "GET", "/crm/v4/objects/contacts/"+contacts[0]+"/associations/companies", "")
		mustStatus(t, r, 200)
		if r.get("results.#").Int() != 3 || r.get("results.0.associationTypes.0.typeId").Int() != 279 || r.get("results.0.associationTypes.0.category").String() != "HUBSPOT_DEFINED" {
			t.Errorf("body %s", r.body)
		}
	})
	t.Run("a company lists its contact with type 280", func(t *testing.T) {
		r := call(t, s, "GET", "/crm/v4/objects/company/"+companies[1]+"/associations/contact", "")
		mustStatus(t, r, 200)
		if r.get("results.0.toObjectId").String() != contacts[0] || r.get("results.0.associationTypes.0.typeId").Int() != 280 {
			t.Errorf("body %s", r.body)
		}
	})
	t.Run("reads page with limit and after", func(t *testing.T) {
		var got []string
		path := "/crm/v4/objects/contacts/" + contacts[0] + "/associations/companies?limit=2"
		for page := 0; page < 3; page++ {
			r := call(t, s, "GET", path, "")
			mustStatus(t, r, 200)
			for _, x := range r.get("results.#.toObjectId").Array() {
				got = append(got, x.String())
			}
			after := r.get("paging.next.after").String()
			if after == "" {
				break
			}
			path = "/crm/v4/objects/contacts/" + contacts[0] + "/associations/companies?limit=2&after=" + after
		}
		if strings.Join(got, ",") != strings.Join(companies, ",") {
			t.Errorf("paged %v, want %v", got, companies)
		}
	})
	t.Run("batch read returns each record's associations", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v4/associations/companies/contacts/batch/read", fmt.Sprintf(`{"inputs":[{"id":%q},{"id":%q}]}`, companies[0], companies[2]))
		mustStatus(t, r, 200)
		if r.get("results.#").Int() != 2 || r.get("results.0.to.0.toObjectId").String() != contacts[0] {
			t.Errorf("body %s", r.body)
		}
	})
	// hubspot-api-client 12.0.0 documents only 200 for batch/associate/default.
	t.Run("an association to a missing record is reported in the 200's errors", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v4/associations/contacts/companies/batch/associate/default",
			fmt.Sprintf(`{"inputs":[{"from":{"id":%q},"to":{"id":"999999"}}]}`, contacts[0]))
		mustStatus(t, r, 200)
		if r.get("numErrors").Int() != 1 {
			t.Errorf("body %s", r.body)
		}
	})
	if n := len(s.Associations()); n != 6 {
		t.Errorf("%d association directions, want 6", n)
	}
}

// [S-assoc] The batch read pages each record's associations: a record with
// more than a page answers paging.next.after, which the next input carries
// as after. 500 per page is assumed from the single-record read's limit.
func TestSandboxAssociationBatchReadPagesEachRecord(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{Tier: "enterprise"})
	company := createCompanies(t, s, 1)[0]
	var contacts []string
	for range 12 {
		r := call(t, s, "POST", "/crm/v3/objects/contacts/batch/create", inputs(100, func(i int) string {
			return fmt.Sprintf(`{"properties":{"email":"p%d-%d@example.com"}}`, len(contacts), i)
		}))
		mustStatus(t, r, 201)
		for _, res := range r.get("results").Array() {
			contacts = append(contacts, res.Get("id").String())
		}
	}
	for start := 0; start < len(contacts); start += 100 {
		mustStatus(t, call(t, s, "POST", "/crm/v4/associations/companies/contacts/batch/associate/default", inputs(100, func(i int) string {
			return fmt.Sprintf(`{"from":{"id":%q},"to":{"id":%q}}`, company, contacts[start+i])
		})), 200)
	}
	var got []string
	var pages []int
	input := fmt.Sprintf(`{"id":%q}`, company)
	for range 5 {
		r := call(t, s, "POST", "/crm/v4/associations/companies/contacts/batch/read", `{"inputs":[`+input+`]}`)
		mustStatus(t, r, 200)
		to := r.get("results.0.to.#.toObjectId").Array()
		pages = append(pages, len(to))
		for _, x := range to {
			got = append(got, x.String())
		}
		after := r.get("results.0.paging.next.after").String()
		if after == "" {
			break
		}
		input = fmt.Sprintf(`{"id":%q,"after":%q}`, company, after)
	}
	if !slices.Equal(pages, []int{500, 500, 200}) {
		t.Errorf("pages of %v associations, want 500, 500 and 200", pages)
	}
	slices.Sort(got)
	want := slices.Clone(contacts)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("paged through %d associations, want the %d contacts", len(got), len(want))
	}
	r := call(t, s, "POST", "/crm/v4/associations/companies/contacts/batch/read", fmt.Sprintf(`{"inputs":[{"id":%q,"after":"x"}]}`, company))
	mustStatus(t, r, 400)
}

// TestSandboxEventsFrom reads the events a page at a time through
// /_sandbox/events?from=, each with the time the sandbox received it, and
// starts over after a reset.
func TestSandboxEventsFrom(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	send := func(names ...string) {
		t.Helper()
		mustStatus(t, call(t, s, "POST", "/events/v3/send/batch", inputs(len(names), func(i int) string {
			return fmt.Sprintf(`{"eventName":"pe12345678_%s","email":"a@example.com","occurredAt":"2026-03-10T11:00:00.000Z","properties":{}}`, names[i])
		})), 204)
	}
	page := func(from string) (names []string, received []string, next int64) {
		t.Helper()
		r := call(t, s, "GET", "/_sandbox/events?from="+from, "")
		mustStatus(t, r, 200)
		for _, ev := range r.get("results").Array() {
			names = append(names, strings.TrimPrefix(ev.Get("eventName").String(), "pe12345678_"))
			received = append(received, ev.Get("receivedAt").String())
		}
		return names, received, r.get("next").Int()
	}

	send("a", "b")
	clock.Advance(time.Second)
	send("c")
	names, received, next := page("0")
	if !slices.Equal(names, []string{"a", "b", "c"}) || next != 3 {
		t.Fatalf("from 0: %v, next %d; want [a b c], next 3", names, next)
	}
	if want := []string{"2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z", "2026-03-10T12:00:01Z"}; !slices.Equal(received, want) {
		t.Errorf("receivedAt %v, want %v", received, want)
	}
	send("d")
	if names, _, next = page("3"); !slices.Equal(names, []string{"d"}) || next != 4 {
		t.Errorf("from 3: %v, next %d; want [d], next 4", names, next)
	}
	if names, _, next = page("4"); len(names) != 0 || next != 4 {
		t.Errorf("from 4: %v, next %d; want none, next 4", names, next)
	}
	mustStatus(t, call(t, s, "POST", "/_sandbox/reset", ""), 204)
	send("e")
	if names, _, next = page("4"); len(names) != 0 || next != 1 {
		t.Errorf("from 4 after a reset: %v, next %d; want none, next 1", names, next)
	}
	if names, _, _ = page("1"); len(names) != 0 {
		t.Errorf("from 1 after a reset: %v", names)
	}
	if names, _, _ = page(""); !slices.Equal(names, []string{"e"}) {
		t.Errorf("without from after a reset: %v, want [e]", names)
	}
	for _, bad := range []string{"-1", "x"} {
		mustStatus(t, call(t, s, "GET", "/_sandbox/events?from="+bad, ""), 400)
	}
}

// [O-events], [S] custom events: batches of 500, exempt from the general limits, 204.
func TestSandboxEvents(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	for i := 0; i < 100; i++ {
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
	}
	mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 429)

	r := call(t, s, "POST", "/events/v3/send/batch", inputs(500, func(i int) string {
		return fmt.Sprintf(`{"eventName":"pe12345678_plan_upgraded","email":"u%d@example.com","occurredAt":"2026-03-10T11:00:00.000Z","properties":{"plan":"pro","hs_url":%q}}`, i, "https://example.com/"+strings.Repeat("p", 900))
	}))
	mustStatus(t, r, 204) // exempt from the ten-secondly limit that is spent
	if r.header.Get("X-HubSpot-RateLimit-Remaining") != "" {
		t.Error("events response carries the general rate-limit headers")
	}
	mustStatus(t, call(t, s, "POST", "/events/v3/send", `{"eventName":"pe12345678_login","objectId":"1001","occurredAt":1773140400000,"properties":{}}`), 204)
	evs := s.Events()
	if len(evs) != 501 {
		t.Fatalf("%d events recorded, want 501", len(evs))
	}
	if evs[0].Email != "u0@example.com" || evs[0].Properties["plan"] != "pro" || !evs[0].OccurredAt.Equal(time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("first event %+v", evs[0])
	}
	if evs[500].ObjectID != "1001" || !evs[500].OccurredAt.Equal(time.UnixMilli(1773140400000)) {
		t.Errorf("single event %+v", evs[500])
	}
	g := call(t, s, "GET", "/_sandbox/events", "")
	if gjson.Get(g.body, "results.#").Int() != 501 {
		t.Errorf("/_sandbox/events lists %d", gjson.Get(g.body, "results.#").Int())
	}

	refusals := []struct {
		name  string
		event string
	}{
		{"a name without this portal's prefix is refused", `{"eventName":"login","email":"a@example.com","properties":{}}`},
		{"a name with capitals is refused", `{"eventName":"pe12345678_Login","email":"a@example.com","properties":{}}`},
		{"an event without an identifier is refused", `{"eventName":"pe12345678_login","properties":{}}`},
		{"a property value that is not a string is refused", `{"eventName":"pe12345678_login","email":"a@example.com","properties":{"n":1}}`},
		{"a value over 256 characters is refused", `{"eventName":"pe12345678_login","email":"a@example.com","properties":{"plan":"` + strings.Repeat("x", 257) + `"}}`},
		{"more than 50 properties are refused", `{"eventName":"pe12345678_login","email":"a@example.com","properties":{` +
			strings.TrimSuffix(strings.Repeat(`"p":"x",`, 1), ",") + func() string {
			var b strings.Builder
			for i := 0; i < 50; i++ {
				fmt.Fprintf(&b, `,"p%d":"x"`, i)
			}
			return b.String()
		}() + `}}`},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, "POST", "/events/v3/send/batch", `{"inputs":[{"eventName":"pe12345678_ok","email":"a@example.com","properties":{}},`+tc.event+`]}`)
			mustStatus(t, r, 400)
			if len(s.Events()) != 501 {
				t.Error("part of a refused batch was recorded")
			}
		})
	}
	t.Run("the send endpoints have their own 1,250 per second limit", func(t *testing.T) {
		s, clock := newSandbox(t, sandbox.Config{})
		ev := `{"eventName":"pe12345678_ping","email":"a@example.com","properties":{}}`
		for i := 0; i < 1250; i++ {
			mustStatus(t, call(t, s, "POST", "/events/v3/send", ev), 204)
		}
		mustStatus(t, call(t, s, "POST", "/events/v3/send", ev), 429)
		clock.Advance(time.Second)
		mustStatus(t, call(t, s, "POST", "/events/v3/send", ev), 204)
	})
}

// A uuid is an occurrence's identity: the first is kept, a repeat is
// refused with 409 and changes nothing, within one request too.
func TestSandboxKeepsOneOccurrencePerUUID(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	occurrence := func(name, id string) string {
		return fmt.Sprintf(`{"eventName":"pe12345678_%s","email":"a@example.com","uuid":%q,"properties":{}}`, name, id)
	}
	const first, second = "7d3c54a8-6c3e-5b6f-9f0e-1a2b3c4d5e6f", "0b9e2a41-3f8c-5d21-8a7b-6c5d4e3f2a1b"
	mustStatus(t, call(t, s, "POST", "/events/v3/send", occurrence("login", first)), 204)
	r := call(t, s, "POST", "/events/v3/send", occurrence("login", first))
	mustStatus(t, r, 409)
	if r.get("category").String() != "CONFLICT" || r.get("context.uuid.0").String() != first || !strings.Contains(r.get("message").String(), first) {
		t.Errorf("a repeated uuid is answered %s", r.body)
	}
	r = call(t, s, "POST", "/events/v3/send/batch", `{"inputs":[`+occurrence("login", second)+`,`+occurrence("login", first)+`]}`)
	mustStatus(t, r, 409)
	if !strings.HasPrefix(r.get("message").String(), "inputs[1]: ") {
		t.Errorf("the batch's refusal does not name the input: %s", r.body)
	}
	mustStatus(t, call(t, s, "POST", "/events/v3/send/batch", `{"inputs":[`+occurrence("login", second)+`,`+occurrence("login", second)+`]}`), 409)
	if n := len(s.Events()); n != 1 {
		t.Fatalf("%d occurrences after refused repeats, want 1", n)
	}
	// A uuid is unique within its event, and one not sent is made up.
	mustStatus(t, call(t, s, "POST", "/events/v3/send/batch", `{"inputs":[`+occurrence("logout", first)+`,`+occurrence("login", second)+`,`+
		`{"eventName":"pe12345678_login","email":"a@example.com","properties":{}}]}`), 204)
	evs := s.Events()
	if len(evs) != 4 || evs[0].UUID != first || evs[1].UUID != first || evs[2].UUID != second || !uuidRe.MatchString(evs[3].UUID) {
		t.Fatalf("occurrences %+v", evs)
	}
	if got := gjson.Get(call(t, s, "GET", "/_sandbox/events", "").body, "results.0.uuid").String(); got != first {
		t.Errorf("/_sandbox/events shows uuid %q", got)
	}
}

// [S], [O-lists] add-and-remove on a MANUAL list.
func TestSandboxListMemberships(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 3)
	r := call(t, s, "POST", "/crm/v3/lists", `{"name":"Trial users","objectTypeId":"0-1","processingType":"MANUAL"}`)
	mustStatus(t, r, 200)
	list := r.get("list.listId").String()

	r = call(t, s, "PUT", "/crm/v3/lists/"+list+"/memberships/add-and-remove",
		fmt.Sprintf(`{"recordIdsToAdd":[%q,%q,"999999"],"recordIdsToRemove":[]}`, ids[0], ids[1]))
	mustStatus(t, r, 200)
	if r.get("recordsIdsAdded").Raw != fmt.Sprintf(`[%q,%q]`, ids[0], ids[1]) || r.get("recordIdsMissing").Raw != `["999999"]` {
		t.Errorf("add body %s", r.body)
	}
	r = call(t, s, "PUT", "/crm/v3/lists/"+list+"/memberships/add-and-remove",
		fmt.Sprintf(`{"recordIdsToAdd":[%q,%q],"recordIdsToRemove":[%q]}`, ids[1], ids[2], ids[0]))
	mustStatus(t, r, 200)
	if r.get("recordsIdsAdded").Raw != fmt.Sprintf(`[%q]`, ids[2]) || r.get("recordIdsRemoved").Raw != fmt.Sprintf(`[%q]`, ids[0]) {
		t.Errorf("second body %s: an existing member is not added again", r.body)
	}
	members, ok := s.ListMembers(list)
	if !ok || strings.Join(members, ",") != ids[1]+","+ids[2] {
		t.Errorf("members %v", members)
	}
	r = call(t, s, "GET", "/crm/v3/lists/"+list+"/memberships", "")
	if r.get("results.#.recordId").Raw != fmt.Sprintf(`[%q,%q]`, ids[1], ids[2]) {
		t.Errorf("memberships body %s", r.body)
	}
	r = call(t, s, "GET", "/crm/v3/lists/object-type-id/0-1/name/trial%20users", "")
	if r.get("list.listId").String() != list {
		t.Errorf("by name %s", r.body)
	}
	t.Run("a DYNAMIC list's memberships cannot be changed by hand", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/lists", `{"name":"Active","objectTypeId":"0-1","processingType":"DYNAMIC"}`)
		mustStatus(t, r, 200)
		mustStatus(t, call(t, s, "PUT", "/crm/v3/lists/"+r.get("list.listId").String()+"/memberships/add-and-remove", fmt.Sprintf(`{"recordIdsToAdd":[%q]}`, ids[0])), 400)
	})
	t.Run("an unknown list is 404", func(t *testing.T) {
		mustStatus(t, call(t, s, "PUT", "/crm/v3/lists/424242/memberships/add-and-remove", `{"recordIdsToAdd":[]}`), 404)
	})
}

// [O-err] 5xx and 423; [C-429] bursts; latency.
func TestSandboxSwitches(t *testing.T) {
	get := func(t *testing.T, s *sandbox.Server) sandboxResp {
		return call(t, s, "GET", "/crm/v3/objects/contacts", "")
	}
	cases := []struct {
		name    string
		on      func(s *sandbox.Server)
		control string // the same switch over HTTP
		body    string
		want    []int
		check   func(t *testing.T, r sandboxResp)
	}{
		{"injected 503s fail the next requests, then they pass",
			func(s *sandbox.Server) { s.FailNext(2, 503) }, "/_sandbox/fail", `{"count":2,"status":503}`,
			[]int{503, 503, 200}, func(t *testing.T, r sandboxResp) {
				if r.get("status").String() != "error" || !uuidRe.MatchString(r.get("correlationId").String()) {
					t.Errorf("5xx body %s", r.body)
				}
			}},
		{"a 429 burst answers TEN_SECONDLY_ROLLING",
			func(s *sandbox.Server) { s.RateLimitBurst(3) }, "/_sandbox/ratelimit-burst", `{"count":3}`,
			[]int{429, 429, 429, 200}, func(t *testing.T, r sandboxResp) {
				if r.get("policyName").String() != "TEN_SECONDLY_ROLLING" || r.get("errorType").String() != "RATE_LIMIT" {
					t.Errorf("burst body %s", r.body)
				}
			}},
		{"a lock answers 423",
			func(s *sandbox.Server) { s.LockNext(1) }, "/_sandbox/lock", `{"count":1}`,
			[]int{423, 200}, func(t *testing.T, r sandboxResp) {
				if r.get("status").String() != "error" {
					t.Errorf("423 body %s", r.body)
				}
			}},
	}
	for _, tc := range cases {
		for _, via := range []string{"Go", "HTTP"} {
			t.Run(tc.name+" ("+via+")", func(t *testing.T) {
				s, _ := newSandbox(t, sandbox.Config{})
				if via == "Go" {
					tc.on(s)
				} else {
					mustStatus(t, callAs(t, s, "", "POST", tc.control, tc.body), 204)
				}
				for i, want := range tc.want {
					r := get(t, s)
					mustStatus(t, r, want)
					if i == 0 {
						tc.check(t, r)
					}
				}
			})
		}
	}
	t.Run("a burst also reaches search and events", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{})
		s.RateLimitBurst(2)
		mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`), 429)
		mustStatus(t, call(t, s, "POST", "/events/v3/send", `{"eventName":"pe12345678_x","email":"a@example.com","properties":{}}`), 429)
	})
	t.Run("latency delays each request", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{})
		mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/latency", `{"ms":30}`), 204)
		start := time.Now()
		mustStatus(t, get(t, s), 200)
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("answered in %v, want at least 30ms", d)
		}
		s.ClearFaults()
		start = time.Now()
		mustStatus(t, get(t, s), 200)
		if d := time.Since(start); d >= 30*time.Millisecond {
			t.Errorf("answered in %v after ClearFaults", d)
		}
	})
	t.Run("reset clears data, limits and switches", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 2})
		createContacts(t, s, 1)
		s.LockNext(5)
		mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/reset", ""), 204)
		r := get(t, s)
		mustStatus(t, r, 200)
		if len(s.Contacts()) != 0 || r.header.Get("X-HubSpot-RateLimit-Remaining") != "1" {
			t.Errorf("after reset: %d contacts, Remaining %s", len(s.Contacts()), r.header.Get("X-HubSpot-RateLimit-Remaining"))
		}
	})
}

func TestSandboxStats(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 2})
	call(t, s, "GET", "/crm/v3/objects/contacts", "")
	call(t, s, "GET", "/crm/v3/objects/companies", "")
	call(t, s, "GET", "/crm/v3/objects/contacts", "") // 429
	call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`)
	callAs(t, s, "", "GET", "/crm/v3/objects/contacts", "") // 401
	call(t, s, "GET", "/no/such/endpoint", "")              // 429 too: the window is spent
	r := callAs(t, s, "", "GET", "/_sandbox/stats", "")
	mustStatus(t, r, 200)
	var stats struct {
		Total     int                       `json:"total"`
		Endpoints map[string]map[string]int `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(r.body), &stats); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{
		"GET /crm/v3/objects/{objectType}":         {"200": 2, "429": 1, "401": 1},
		"POST /crm/v3/objects/{objectType}/search": {"200": 1},
		"GET (unmatched)":                          {"429": 1},
	}
	if !reflect.DeepEqual(stats.Endpoints, want) || stats.Total != 6 {
		t.Errorf("stats %s, want %v and total 6", r.body, want)
	}
	if got := s.Stats()["GET /crm/v3/objects/{objectType}"][200]; got != 2 {
		t.Errorf("Stats() GET list 200 = %d", got)
	}
}

// [O-props], [S] the property catalogue and property creation.
func TestSandboxProperties(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{TenSecondlyLimit: 1000})
	r := call(t, s, "GET", "/crm/v3/properties/contacts", "")
	mustStatus(t, r, 200)
	for _, name := range []string{"email", "firstname", "lastname", "phone", "company", "website", "jobtitle", "lifecyclestage", "city", "state", "zip", "country", "address", "date_of_birth", "hs_lead_status", "createdate", "lastmodifieddate"} {
		if !r.get(`results.#(name=="` + name + `")`).Exists() {
			t.Errorf("contacts catalogue lacks %s", name)
		}
	}
	if r.get(`results.#(name=="date_of_birth").type`).String() != "date" || r.get(`results.#(name=="createdate").type`).String() != "datetime" {
		t.Error("date_of_birth must be a date and createdate a datetime")
	}
	if got := r.get(`results.#(name=="lifecyclestage").options.#.value`).Raw; got != `["subscriber","lead","marketingqualifiedlead","salesqualifiedlead","opportunity","customer","evangelist","other"]` {
		t.Errorf("lifecyclestage options %s", got)
	}
	r = call(t, s, "GET", "/crm/v3/properties/companies", "")
	if r.get(`results.#(name=="numberofemployees").type`).String() != "number" || r.get(`results.#(name=="domain").hasUniqueValue`).Bool() {
		t.Error("companies: numberofemployees must be a number and domain not unique")
	}

	mustStatus(t, call(t, s, "POST", "/crm/v3/properties/contacts/groups", `{"name":"switchyard","label":"Switchyard"}`), 201)
	mustStatus(t, call(t, s, "POST", "/crm/v3/properties/contacts/groups", `{"name":"switchyard","label":"Switchyard"}`), 409)
	cases := []struct {
		name string
		body string
		want int
	}{
		{"a property in the new group is created", `{"name":"plan","label":"Plan","type":"string","fieldType":"text","groupName":"switchyard"}`, 201},
		{"the same name again is a conflict", `{"name":"plan","label":"Plan","type":"string","fieldType":"text","groupName":"switchyard"}`, 409},
		{"a property without a label is refused", `{"name":"x1","type":"string","fieldType":"text","groupName":"switchyard"}`, 400},
		{"a property without a groupName is refused", `{"name":"x2","label":"X","type":"string","fieldType":"text"}`, 400},
		{"an unknown type is refused", `{"name":"x3","label":"X","type":"text","fieldType":"text","groupName":"switchyard"}`, 400},
		{"an unknown fieldType is refused", `{"name":"x4","label":"X","type":"string","fieldType":"input","groupName":"switchyard"}`, 400},
		{"an unknown group is refused", `{"name":"x5","label":"X","type":"string","fieldType":"text","groupName":"nope"}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustStatus(t, call(t, s, "POST", "/crm/v3/properties/contacts", tc.body), tc.want)
		})
	}
	t.Run("an object takes at most 10 unique properties", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			mustStatus(t, call(t, s, "POST", "/crm/v3/properties/contacts",
				fmt.Sprintf(`{"name":"uid%d","label":"U%d","type":"string","fieldType":"text","groupName":"switchyard","hasUniqueValue":true}`, i, i)), 201)
		}
		mustStatus(t, call(t, s, "POST", "/crm/v3/properties/contacts",
			`{"name":"uid10","label":"U10","type":"string","fieldType":"text","groupName":"switchyard","hasUniqueValue":true}`), 400)
	})
	t.Run("a created property can be written and read back", func(t *testing.T) {
		mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/upsert", inputs(1, func(int) string { return upsertEmail("p@example.com", `"plan":"pro"`) })), 200)
		r := call(t, s, "GET", "/crm/v3/objects/contacts/p@example.com?idProperty=email&properties=plan,email", "")
		mustStatus(t, r, 200)
		if r.get("properties.plan").String() != "pro" {
			t.Errorf("body %s", r.body)
		}
	})
	if _, ok := sandbox.DefaultProperties("companies"); !ok {
		t.Error("no default companies catalogue")
	}
}

// [S] reads: get by id or idProperty, list paging, batch read with missing ids.
func TestSandboxReads(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 5)
	r := call(t, s, "GET", "/crm/v3/objects/contacts/"+ids[2], "")
	mustStatus(t, r, 200)
	if r.get("properties.email").String() != "user2@example.com" {
		t.Errorf("get body %s", r.body)
	}
	mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts/999999", ""), 404)

	var got []string
	path := "/crm/v3/objects/contacts?limit=2"
	for page := 0; page < 5; page++ {
		r := call(t, s, "GET", path, "")
		mustStatus(t, r, 200)
		for _, x := range r.get("results.#.id").Array() {
			got = append(got, x.String())
		}
		after := r.get("paging.next.after").String()
		if after == "" {
			break
		}
		path = "/crm/v3/objects/contacts?limit=2&after=" + after
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("listed %v, want %v", got, ids)
	}

	r = call(t, s, "POST", "/crm/v3/objects/contacts/batch/read", `{"idProperty":"email","properties":["email"],"inputs":[{"id":"user1@example.com"},{"id":"nobody@example.com"}]}`)
	mustStatus(t, r, 207)
	if r.get("results.0.id").String() != ids[1] || r.get("errors.0.context.ids").Raw != `["nobody@example.com"]` {
		t.Errorf("batch read body %s", r.body)
	}
}

// [O-props] a value starting with ";" appends to a multi-checkbox; "" clears a value.
func TestSandboxMultiCheckboxAppendAndClear(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	id := createCompanies(t, s, 1)[0]
	update := func(props string) {
		t.Helper()
		mustStatus(t, call(t, s, "POST", "/crm/v3/objects/companies/batch/update", fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{%s}}]}`, id, props)), 200)
	}
	update(`"hs_additional_domains":"a.example"`)
	update(`"hs_additional_domains":";b.example;c.example"`)
	if got := s.Companies()[0].Properties["hs_additional_domains"]; got != "a.example;b.example;c.example" {
		t.Errorf("hs_additional_domains %q", got)
	}
	update(`"domain":""`)
	if _, ok := s.Companies()[0].Properties["domain"]; ok {
		t.Error("an empty value did not clear domain")
	}
	r := call(t, s, "POST", "/crm/v3/objects/companies/search", `{"filterGroups":[{"filters":[{"propertyName":"domain","operator":"NOT_HAS_PROPERTY"}]}]}`)
	if r.get("total").Int() != 1 {
		t.Errorf("a cleared value still counts as present: %s", r.body)
	}
}

// [O-search] "it may take a few moments for newly created or updated CRM
// objects to appear in search results": created records and updated values
// both lag; reads do not.
func TestSandboxSearchLag(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{SearchLag: 3 * time.Second})
	ids := createContacts(t, s, 2)
	r := call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`)
	if r.get("total").Int() != 0 {
		t.Errorf("fresh records are visible at once: %s", r.body)
	}
	clock.Advance(3 * time.Second)
	r = call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`)
	if r.get("total").Int() != 2 {
		t.Errorf("records still hidden after the lag: %s", r.body)
	}

	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update",
		fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"firstname":"Ada"}}]}`, ids[0])), 200)
	byName := `{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"EQ","value":"Ada"}]}],"properties":["firstname"]}`
	if r := call(t, s, "POST", "/crm/v3/objects/contacts/search", byName); r.get("total").Int() != 0 {
		t.Errorf("an updated value is matched at once: %s", r.body)
	}
	if r := call(t, s, "GET", "/crm/v3/objects/contacts/"+ids[0]+"?properties=firstname", ""); r.get("properties.firstname").String() != "Ada" {
		t.Errorf("a read does not see the update: %s", r.body)
	}
	all := call(t, s, "POST", "/crm/v3/objects/contacts/search", `{"properties":["firstname"]}`)
	if all.get("total").Int() != 2 || all.get("results.0.properties.firstname").Type != gjson.Null {
		t.Errorf("search within the lag shows the record as it was before the update: %s", all.body)
	}
	clock.Advance(3 * time.Second)
	if r := call(t, s, "POST", "/crm/v3/objects/contacts/search", byName); r.get("total").Int() != 1 || r.get("results.0.id").String() != ids[0] {
		t.Errorf("the updated value is not matched after the lag: %s", r.body)
	}
}

// [O-props] a hasUniqueValue property identifies a record "in the same way
// you could use hs_object_id"; [S] upserts by it create a missing record
// and update an existing one, so concurrent upserts of one value make one
// record, however far behind search is ([O-search]). Another record cannot
// take a value that one already holds ([C-conflict]).
func TestSandboxUpsertsByAUniquePropertyMakeOneRecord(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{SearchLag: time.Hour})
	mustStatus(t, call(t, s, "POST", "/crm/v3/properties/companies",
		`{"name":"switchyard_domain","label":"Domain (switchyard)","type":"string","fieldType":"text","groupName":"companyinformation","hasUniqueValue":true}`), 201)
	upsert := `{"inputs":[{"id":"acme.example","idProperty":"switchyard_domain","properties":{"domain":"acme.example","name":"Acme %d"},"objectWriteTraceId":"0"}]}`

	var wg sync.WaitGroup
	news := make(chan bool, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, s, "POST", "/crm/v3/objects/companies/batch/upsert", fmt.Sprintf(upsert, i))
			if r.code != 200 {
				t.Errorf("upsert %d: %d %s", i, r.code, r.body)
				return
			}
			news <- r.get("results.0.new").Bool()
		}()
	}
	wg.Wait()
	close(news)
	created := 0
	for n := range news {
		if n {
			created++
		}
	}
	cs := s.Companies()
	if len(cs) != 1 || created != 1 || cs[0].Properties["switchyard_domain"] != "acme.example" || cs[0].Properties["domain"] != "acme.example" {
		t.Fatalf("20 concurrent upserts of one value: %d reported new, companies %+v; want one", created, cs)
	}
	if r := call(t, s, "POST", "/crm/v3/objects/companies/search",
		`{"filterGroups":[{"filters":[{"propertyName":"domain","operator":"EQ","value":"acme.example"}]}]}`); r.get("total").Int() != 0 {
		t.Errorf("search sees the company within the lag: %s", r.body)
	}

	t.Run("a create with a value another record holds is a CONFLICT", func(t *testing.T) {
		r := call(t, s, "POST", "/crm/v3/objects/companies/batch/create",
			`{"inputs":[{"properties":{"name":"Twin","switchyard_domain":"acme.example"}}]}`)
		mustStatus(t, r, 409)
		if got, want := r.get("message").String(), "Company already exists. Existing ID: "+cs[0].ID; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	})
	t.Run("an update to a value another record holds is a CONFLICT", func(t *testing.T) {
		other := createCompanies(t, s, 1)[0]
		r := call(t, s, "POST", "/crm/v3/objects/companies/batch/update",
			fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"switchyard_domain":"acme.example"}}]}`, other))
		mustStatus(t, r, 409)
	})
	t.Run("a value freed by its record can be taken", func(t *testing.T) {
		mustStatus(t, call(t, s, "POST", "/crm/v3/objects/companies/batch/update",
			fmt.Sprintf(`{"inputs":[{"id":%q,"properties":{"switchyard_domain":"acme.example.old"}}]}`, cs[0].ID)), 200)
		r := call(t, s, "POST", "/crm/v3/objects/companies/batch/upsert", fmt.Sprintf(upsert, 99))
		mustStatus(t, r, 200)
		if !r.get("results.0.new").Bool() || r.get("results.0.id").String() == cs[0].ID {
			t.Errorf("the upsert did not create a record for the freed value: %s", r.body)
		}
	})
}

// The sandbox serves real HTTP: a client sees HubSpot's statuses, headers and bodies.
func TestSandboxOverHTTP(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{Tokens: []string{"pat-na1-x"}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL+"/events/v3/send", strings.NewReader(`{"eventName":"pe12345678_x","email":"a@example.com","properties":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer pat-na1-x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", resp.StatusCode)
	}
	resp, err = srv.Client().Get(srv.URL + "/crm/v3/properties/contacts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d without a token, want 401", resp.StatusCode)
	}
	if len(s.Events()) != 1 {
		t.Errorf("%d events, want 1", len(s.Events()))
	}
}

func TestSandboxConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  sandbox.Config
		ok   bool
	}{
		{"the zero config is valid", sandbox.Config{}, true},
		{"every documented tier is valid", sandbox.Config{Tier: "api-add-on"}, true},
		{"an unknown tier is refused", sandbox.Config{Tier: "gold"}, false},
		{"a negative limit is refused", sandbox.Config{DailyLimit: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// [O-events-def] (the define-events guide): label and name rules, at most
// 50 custom properties, the default properties, adding a property;
// [O-events] fullyQualifiedName is pe{HubID}_{name}. The 201, 404 and 409
// statuses are the sandbox's choice: HubSpot does not document them.
func TestSandboxEventDefinitions(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{Tier: "professional", HubID: 4242})
	mustStatus(t, call(t, s, "GET", "/events/v3/event-definitions/order_completed?includeProperties=true", ""), http.StatusNotFound)

	created := call(t, s, "POST", "/events/v3/event-definitions",
		`{"name":"order_completed","label":"Order Completed","primaryObject":"CONTACT","includeDefaultProperties":true,
		  "propertyDefinitions":[{"name":"total","label":"total","type":"string"}]}`)
	mustStatus(t, created, http.StatusCreated)
	if got := created.get("fullyQualifiedName").String(); got != "pe4242_order_completed" {
		t.Fatalf("fullyQualifiedName %q", got)
	}
	read := call(t, s, "GET", "/events/v3/event-definitions/order_completed?includeProperties=true", "")
	mustStatus(t, read, http.StatusOK)
	if !read.get(`properties.#(name=="total")`).Exists() || !read.get(`properties.#(name=="hs_city")`).Exists() {
		t.Fatalf("properties: %s", read.get("properties").Raw)
	}
	mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions", `{"name":"order_completed","label":"Again"}`), http.StatusConflict)

	for _, bad := range []string{
		`{"name":"Order-Completed","label":"L"}`,                 // lowercase letters, digits, underscores
		`{"name":"1st","label":"L"}`,                             // starts with a letter
		`{"name":"` + strings.Repeat("a", 51) + `","label":"L"}`, // at most 50
		`{"name":"ok","label":""}`,                               // label required
		`{"name":"ok","label":"L","primaryObject":"PLANET"}`,     // CONTACT, COMPANY, DEAL, TICKET
		`{"name":"ok","label":"L","propertyDefinitions":[{"name":"p","label":"p","type":"color"}]}`,
		`{"name":"ok","label":"L","propertyDefinitions":[{"name":"p","label":"p","type":"enumeration"}]}`, // options needed
	} {
		mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions", bad), http.StatusBadRequest)
	}

	mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions/order_completed/property", `{"name":"coupon","label":"Coupon","type":"string"}`), http.StatusCreated)
	mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions/order_completed/property", `{"name":"coupon","label":"Coupon","type":"string"}`), http.StatusConflict)
	mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions/nope/property", `{"name":"x","label":"x","type":"string"}`), http.StatusNotFound)
	for i := 2; i < 50; i++ { // total and coupon make 2 of the 50
		mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions/order_completed/property", fmt.Sprintf(`{"name":"p%d","label":"p","type":"string"}`, i)), http.StatusCreated)
	}
	mustStatus(t, call(t, s, "POST", "/events/v3/event-definitions/order_completed/property", `{"name":"one_too_many","label":"p","type":"string"}`), http.StatusBadRequest)
}

// [O-err] 502 and 504 when processing limits are met, 503 while HubSpot is
// unavailable: a storm fails every request for a while, whatever the
// endpoint, with the statuses in turn.
func TestSandboxFailFor(t *testing.T) {
	for _, via := range []string{"Go", "HTTP"} {
		t.Run(via, func(t *testing.T) {
			s, clock := newSandbox(t, sandbox.Config{})
			if via == "Go" {
				s.FailFor(time.Minute, 500, 502, 503, 504)
			} else {
				mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/fail-for", `{"ms":60000,"statuses":[500,502,503,504]}`), 204)
			}
			var got []int
			for i := 0; i < 5; i++ {
				got = append(got, call(t, s, "GET", "/crm/v3/objects/contacts", "").code)
			}
			got = append(got, call(t, s, "POST", "/crm/v3/objects/contacts/search", `{}`).code,
				call(t, s, "POST", "/events/v3/send", `{"eventName":"pe12345678_x","email":"a@example.com","properties":{}}`).code)
			if want := []int{500, 502, 503, 504, 500, 502, 503}; !reflect.DeepEqual(got, want) {
				t.Fatalf("statuses %v, want %v", got, want)
			}
			clock.Advance(59 * time.Second)
			mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 504)
			clock.Advance(time.Second)
			mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
		})
	}
	t.Run("ClearFaults ends it", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{})
		s.FailFor(time.Hour)
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 500)
		s.ClearFaults()
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
	})
	t.Run("bad controls are refused", func(t *testing.T) {
		s, _ := newSandbox(t, sandbox.Config{})
		for _, body := range []string{`{}`, `{"ms":1000,"statuses":[429]}`, `{"ms":-1}`} {
			mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/fail-for", body), 400)
		}
		mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts", ""), 200)
	})
}

// A request whose answer comes after the caller's timeout still took
// effect, as HubSpot carries on with a request whose caller went away.
func TestSandboxSlowAnswers(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	send := func(client *http.Client, email string) (int, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/crm/v3/objects/contacts/batch/upsert", strings.NewReader(inputs(1, func(int) string { return upsertEmail(email, "") })))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	impatient := &http.Client{Timeout: 50 * time.Millisecond}

	mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/slow", `{"ms":300,"ratio":1}`), 204)
	if _, err := send(impatient, "slow@example.com"); err == nil {
		t.Fatal("a 300ms answer came within a 50ms timeout")
	}
	if len(s.Contacts()) != 1 {
		t.Fatalf("%d contacts after a request answered late, want 1: it was applied", len(s.Contacts()))
	}

	// Half the answers are late, every other one, starting with the first
	// to each path.
	s.SlowAnswers(300*time.Millisecond, 0.5)
	var late []int
	for i := 0; i < 6; i++ {
		if code, err := send(impatient, fmt.Sprintf("half%d@example.com", i)); err != nil {
			late = append(late, i)
		} else if code != 200 {
			t.Fatalf("status %d, want 200", code)
		}
	}
	if !reflect.DeepEqual(late, []int{0, 2, 4}) || len(s.Contacts()) != 7 {
		t.Fatalf("answers %v of 6 late (want 0, 2 and 4), %d contacts (want 7)", late, len(s.Contacts()))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/crm/v3/objects/companies", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if resp, err := impatient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the first request to another path was answered in time")
	}

	s.ClearFaults()
	if code, err := send(impatient, "fast@example.com"); err != nil || code != 200 {
		t.Fatalf("after ClearFaults: %d, %v", code, err)
	}
	mustStatus(t, callAs(t, s, "", "POST", "/_sandbox/slow", `{"ms":10,"ratio":1.5}`), 400)
}
