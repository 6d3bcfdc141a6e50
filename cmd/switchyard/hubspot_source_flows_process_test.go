package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/internal/hubspot/signature"
)

// flowSecret is the client secret the sandbox signs the flows' webhooks
// with.
const flowSecret = "app-client-secret"

// sourceFlow is `switchyard serve` with a hubspot source crm-in on a
// `switchyard hubspot-sandbox` run as its own process, which sends its
// signed webhooks to serve, and a webhook destination to a receiver
// standing for the app.
type sourceFlow struct {
	t    *testing.T
	addr string // serve's
	base string // the sandbox's URL
	app  *webhooktest.Server
	srv  *server
}

// startSourceFlow starts the sandbox, with sandboxArgs added to (and
// overriding) its flags, and serve, with the source settings mappings.
func startSourceFlow(t *testing.T, mappings string, sandboxArgs ...string) *sourceFlow {
	t.Helper()
	addr, sandboxAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"hubspot-sandbox", "--tier", "free", "--hub-id", "777",
		"--webhook-url", "http://" + addr + "/hubspot/webhooks/crm-in", "--client-secret", flowSecret,
		"--webhook-retry-delays", "200ms,500ms,1s,2s"}, sandboxArgs...)
	startReady(t, sandboxAddr, "/_sandbox/stats", args...)
	f := &sourceFlow{t: t, addr: addr, base: "http://" + sandboxAddr, app: webhooktest.NewServer(t)}
	cfgPath := writeConfig(t, hubspotSourceConfig(f.base, flowSecret, f.app.URL, mappings, ""))
	f.srv = start(t, addr, "serve", "--config", cfgPath, "--data-dir", t.TempDir())
	return f
}

// counter reads one of serve's counters, 0 while it is not reported.
func (f *sourceFlow) counter(series string) float64 {
	v, _ := scrapeCounter(f.addr, series)
	return v
}

// changes is the series of the source's changes of objectType with outcome.
func changes(objectType, outcome string) string {
	return `switchyard_hubspot_source_changes_total{source="crm-in",object_type="` + objectType + `",outcome="` + outcome + `"}`
}

// waitCounter waits until the series counts more than before.
func (f *sourceFlow) waitCounter(series string, before float64) {
	f.t.Helper()
	eventuallyTrueWithin(f.t, 20*time.Second, fmt.Sprintf("%s above %v", series, before), func() bool { return f.counter(series) > before })
}

// firstNameChange is a webhook body of one notification, as the sandbox
// sends them: a person changed the firstname of contact id to value now.
func firstNameChange(eventID int, id, value string) string {
	return fmt.Sprintf(`[{"eventId":%d,"subscriptionId":1,"portalId":777,"appId":1160452,"occurredAt":%d,`+
		`"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%s,"propertyName":"firstname",`+
		`"propertyValue":%q,"changeSource":"CRM_UI","sourceId":"userId:1"}]`, eventID, time.Now().UnixMilli(), id, value)
}

// knownContact has the app identify userID with email, which teaches the
// source the user and makes the contact through the hubspot destination;
// it returns the contact's id once the destination's write is counted as
// an echo.
func (f *sourceFlow) knownContact(userID, email, firstName string) string {
	f.t.Helper()
	echoes := f.counter(changes("contacts", "echo"))
	post(f.t, f.addr, "/v1/identify", "k", `{"userId":"`+userID+`","traits":{"email":"`+email+`","firstName":"`+firstName+`"}}`)
	id := waitForContact(f.t, f.base, email, firstName)
	f.waitCounter(changes("contacts", "echo"), echoes)
	return id
}

// api calls the sandbox's HubSpot API with the source's token and returns
// the answer, failing the test unless it is a 2xx.
func (f *sourceFlow) api(method, path, body string) gjson.Result {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer pat-e2e")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		f.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return gjson.ParseBytes(raw)
}

// webhook posts notifications to the source's webhook path signed with
// secret at ts, as HubSpot signs them, and returns the status.
func (f *sourceFlow) webhook(secret string, ts time.Time, notifications string) int {
	f.t.Helper()
	uri := "http://" + f.addr + "/hubspot/webhooks/crm-in"
	req, _ := http.NewRequest(http.MethodPost, uri, strings.NewReader(notifications))
	for k, v := range signature.Headers(secret, http.MethodPost, uri, []byte(notifications), ts) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// calls returns the calls the app got from the source that match keep.
func (f *sourceFlow) calls(keep func(gjson.Result) bool) []gjson.Result {
	var out []gjson.Result
	for _, c := range sourceCalls(f.app, "crm-in") {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// waitCall waits for the app to get a call from the source that matches
// keep and returns the newest such call.
func (f *sourceFlow) waitCall(what string, keep func(gjson.Result) bool) gjson.Result {
	f.t.Helper()
	var found []gjson.Result
	eventuallyTrueWithin(f.t, 20*time.Second, "the app gets "+what, func() bool {
		found = f.calls(keep)
		return len(found) > 0
	})
	return found[len(found)-1]
}

// traitNames are the names of a call's traits.
func traitNames(c gjson.Result) []string {
	var out []string
	c.Get("traits").ForEach(func(k, _ gjson.Result) bool {
		out = append(out, k.String())
		return true
	})
	return out
}

// TestHubSpotSourceCompanyEditReachesItsUsers: a person's edit of a
// company reaches each of its associated known users as a group call with
// the mapped traits only, the groupId from company_id_property when it is
// set, else the company's domain; the unknown contact gets nothing.
func TestHubSpotSourceCompanyEditReachesItsUsers(t *testing.T) {
	for _, tc := range []struct {
		name, idProperty, wantGroupID string
	}{
		{"company_id_property", "app_company_id", "acct-1"},
		{"domain", "", "acme.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mappings := contactMappings + "      companies: {name: name, industry: industry}\n"
			if tc.idProperty != "" {
				mappings += "      company_id_property: " + tc.idProperty + "\n"
			}
			f := startSourceFlow(t, mappings)
			f.api(http.MethodPost, "/crm/v3/properties/companies",
				`{"name":"app_company_id","label":"App company id","type":"string","fieldType":"text","groupName":"companyinformation"}`)
			ada := f.knownContact("u-ada", "ada@example.com", "Ada")
			bob := f.knownContact("u-bob", "bob@example.com", "Bob")
			carol := sandboxEdit(t, f.base, "contacts", `{"properties":{"email":"carol@example.com","firstname":"Carol"}}`)

			link := func(ids ...string) string {
				var out []string
				for _, id := range ids {
					out = append(out, `{"toObjectType":"contacts","toObjectId":"`+id+`"}`)
				}
				return `[` + strings.Join(out, ",") + `]`
			}
			acme := sandboxEdit(t, f.base, "companies", `{"properties":{"name":"Acme","domain":"acme.example","industry":"ACCOUNTING","app_company_id":"acct-1"},"associations":`+link(ada, bob, carol)+`}`)
			for _, user := range []string{"u-ada", "u-bob"} {
				f.waitCall("the group of "+user+" with Acme", func(c gjson.Result) bool {
					return c.Get("type").String() == "group" && c.Get("userId").String() == user && c.Get("traits.name").String() == "Acme"
				})
			}

			// The edit.
			sandboxEdit(t, f.base, "companies/"+acme, `{"properties":{"name":"Acme Corp","industry":"AIRLINES_AVIATION"}}`)
			for _, user := range []string{"u-ada", "u-bob"} {
				c := f.waitCall("the group of "+user+" with the edit", func(c gjson.Result) bool {
					return c.Get("type").String() == "group" && c.Get("userId").String() == user && c.Get("traits.name").String() == "Acme Corp"
				})
				if c.Get("groupId").String() != tc.wantGroupID || c.Get("traits.industry").String() != "AIRLINES_AVIATION" {
					t.Errorf("the group of %s: %s; want groupId %s and the edited industry", user, c.Raw, tc.wantGroupID)
				}
				if names := traitNames(c); len(names) != 2 {
					t.Errorf("the group of %s has traits %v, want only name and industry", user, names)
				}
				if c.Get("_switchyard.hubspot.objectType").String() != "companies" || c.Get("_switchyard.hubspot.objectId").String() != acme ||
					c.Get("context.externalIds.0.id").String() != acme {
					t.Errorf("the group of %s does not say which company it came from: %s", user, c.Raw)
				}
			}
			for _, c := range f.calls(func(c gjson.Result) bool { return true }) {
				if u := c.Get("userId").String(); u != "u-ada" && u != "u-bob" {
					t.Errorf("a call for a user the app does not know: %s", c.Raw)
				}
				if c.Get("type").String() != "group" {
					t.Errorf("a company's changes made a %s call: %s", c.Get("type"), c.Raw)
				}
			}
			if tc.idProperty == "" {
				return
			}

			// With company_id_property set, a company without it is no group
			// of the app's.
			before := f.counter(changes("companies", "no_group_id"))
			sandboxEdit(t, f.base, "companies", `{"properties":{"name":"Stray","domain":"stray.example"},"associations":`+link(ada)+`}`)
			f.waitCounter(changes("companies", "no_group_id"), before)
			if stray := f.calls(func(c gjson.Result) bool { return c.Get("traits.name").String() == "Stray" }); len(stray) != 0 {
				t.Errorf("a company without %s made calls: %v", tc.idProperty, stray)
			}
		})
	}
}

// TestHubSpotSourceDealStageReachesItsContact: a person moves a deal to
// another stage; its associated contact's user gets an identify with the
// deal's mapped fields, typed, as traits.
func TestHubSpotSourceDealStageReachesItsContact(t *testing.T) {
	f := startSourceFlow(t, contactMappings+"      deals: {dealstage: deal_stage, amount: deal_amount}\n")
	ada := f.knownContact("u-ada", "ada@example.com", "Ada")
	deal := sandboxEdit(t, f.base, "deals", `{"properties":{"dealname":"Big one","pipeline":"default","dealstage":"appointmentscheduled","amount":"1000"},`+
		`"associations":[{"toObjectType":"contacts","toObjectId":"`+ada+`"}]}`)
	fromDeal := func(stage string) func(gjson.Result) bool {
		return func(c gjson.Result) bool {
			return c.Get("_switchyard.hubspot.objectType").String() == "deals" && c.Get("traits.deal_stage").String() == stage
		}
	}
	f.waitCall("the identify of the new deal", fromDeal("appointmentscheduled"))

	sandboxEdit(t, f.base, "deals/"+deal, `{"properties":{"dealstage":"closedwon"}}`)
	c := f.waitCall("the identify of the deal's new stage", fromDeal("closedwon"))
	if c.Get("type").String() != "identify" || c.Get("userId").String() != "u-ada" {
		t.Errorf("the deal's stage reached the app as %s, want an identify of u-ada", c.Raw)
	}
	if amount := c.Get("traits.deal_amount"); amount.Type != gjson.Number || amount.Float() != 1000 {
		t.Errorf("traits.deal_amount = %s, want the number 1000", amount.Raw)
	}
	if names := traitNames(c); len(names) != 2 {
		t.Errorf("the identify has traits %v, want only deal_stage and deal_amount", names)
	}
	if c.Get("_switchyard.hubspot.objectId").String() != deal || c.Get("context.externalIds.0.id").String() != deal {
		t.Errorf("the identify does not say which deal it came from: %s", c.Raw)
	}
	if n := len(f.calls(func(c gjson.Result) bool { return c.Get("userId").String() != "u-ada" })); n != 0 {
		t.Errorf("%d calls for other users", n)
	}
}

// TestHubSpotSourceMergeEmitsTheSurvivor: merging a contact into the known
// user's contact (through the API, as an integration would) emits the
// merged record for the user; a late notification of a merged-away id
// resolves to the merged record; the deletions of the merged-away ids emit
// nothing.
func TestHubSpotSourceMergeEmitsTheSurvivor(t *testing.T) {
	f := startSourceFlow(t, contactMappings)
	ada := f.knownContact("u-ada", "ada@example.com", "Ada")
	unknown := f.counter(changes("contacts", "unknown_user"))
	other := sandboxEdit(t, f.base, "contacts", `{"properties":{"email":"augusta@example.com","firstname":"Augusta","lifecyclestage":"customer"}}`)
	f.waitCounter(changes("contacts", "unknown_user"), unknown)

	handled := f.counter(changes("contacts", "deleted")) + f.counter(changes("contacts", "echo"))
	merged := f.api(http.MethodPost, "/crm/v3/objects/contacts/merge", `{"primaryObjectId":"`+ada+`","objectIdToMerge":"`+other+`"}`).Get("id").String()
	if merged == "" || merged == ada || merged == other {
		t.Fatalf("the merge made record %q of %s and %s", merged, ada, other)
	}
	ofMerged := func(c gjson.Result) bool { return c.Get("_switchyard.hubspot.objectId").String() == merged }
	c := f.waitCall("the merged record", ofMerged)
	if c.Get("type").String() != "identify" || c.Get("userId").String() != "u-ada" || c.Get("traits.first_name").String() != "Ada" ||
		c.Get("traits.lifecycle_stage").String() != "customer" || c.Get("context.externalIds.0.id").String() != merged {
		t.Errorf("the merge reached the app as %s; want the identify of u-ada with the merged record", c.Raw)
	}
	// The merge's deletions, made with the source's token, are counted as
	// our own changes or as deletions, and emit nothing.
	eventuallyTrueWithin(t, 20*time.Second, "both merged-away ids' deletions counted", func() bool {
		return f.counter(changes("contacts", "deleted"))+f.counter(changes("contacts", "echo")) >= handled+2
	})

	// A notification of the merged-away id, late as HubSpot may send one,
	// reads the merged record and emits it for the user again: the same
	// version of it, so the same messageId, which the app does not get
	// twice.
	emitted, notFound := f.counter(changes("contacts", "emitted")), f.counter(changes("contacts", "not_found"))
	before := len(f.calls(ofMerged))
	if status := f.webhook(flowSecret, time.Now(), firstNameChange(900001, other, "Augusta")); status != http.StatusOK {
		t.Fatalf("the late notification: %d", status)
	}
	f.waitCounter(changes("contacts", "emitted"), emitted)
	if f.counter(changes("contacts", "not_found")) != notFound {
		t.Errorf("the merged-away id %s was not found", other)
	}
	time.Sleep(time.Second) // the router would have delivered a new call
	if got := len(f.calls(ofMerged)); got != before {
		t.Errorf("the app got the merged record %d times more", got-before)
	}
	for _, c := range f.calls(func(gjson.Result) bool { return true }) {
		if c.Get("type").String() != "identify" || c.Get("userId").String() != "u-ada" || !ofMerged(c) {
			t.Errorf("the app got a call other than the merged record's identify: %s", c.Raw)
		}
	}
}

// TestHubSpotSourcePrivacyDeletionForgetsTheContact: after a contact's
// privacy deletion the source forgets it and its user: a late
// notification of it and a new contact with its email emit nothing, and
// both are counted.
func TestHubSpotSourcePrivacyDeletionForgetsTheContact(t *testing.T) {
	f := startSourceFlow(t, contactMappings)
	ada := f.knownContact("u-ada", "ada@example.com", "Ada")
	sandboxEdit(t, f.base, "contacts/"+ada, `{"properties":{"firstname":"Augusta"}}`)
	f.waitCall("the edit", func(c gjson.Result) bool { return c.Get("traits.first_name").String() == "Augusta" })

	forgotten := f.counter(changes("contacts", "forgotten"))
	f.api(http.MethodPost, "/crm/v3/objects/contacts/gdpr-delete", `{"objectId":"`+ada+`"}`)
	f.waitCounter(changes("contacts", "forgotten"), forgotten)
	emitted := len(sourceCalls(f.app, "crm-in"))

	// A notification of the deleted contact, arriving late.
	notFound := f.counter(changes("contacts", "not_found"))
	if status := f.webhook(flowSecret, time.Now(), firstNameChange(900002, ada, "Augusta")); status != http.StatusOK {
		t.Fatalf("the late notification: %d", status)
	}
	f.waitCounter(changes("contacts", "not_found"), notFound)

	// A person makes a new contact with the forgotten user's email and edits
	// it: the user is no longer known.
	unknown := f.counter(changes("contacts", "unknown_user"))
	again := sandboxEdit(t, f.base, "contacts", `{"properties":{"email":"ada@example.com","firstname":"Ada"}}`)
	f.waitCounter(changes("contacts", "unknown_user"), unknown)
	unknown = f.counter(changes("contacts", "unknown_user"))
	sandboxEdit(t, f.base, "contacts/"+again, `{"properties":{"firstname":"Ada","lifecyclestage":"customer"}}`)
	f.waitCounter(changes("contacts", "unknown_user"), unknown)
	time.Sleep(time.Second) // a batch's calls follow its counts
	if n := len(sourceCalls(f.app, "crm-in")); n != emitted {
		t.Errorf("the app got %d calls from the source after the privacy deletion\n%s", n-emitted, f.srv.logs())
	}
}

// TestHubSpotSourceRefusesForgedAndStaleWebhooks: webhooks signed with
// another secret or at a time over 5 minutes ago get 401, are counted and
// store nothing, whether the sandbox sends them or they are signed here.
func TestHubSpotSourceRefusesForgedAndStaleWebhooks(t *testing.T) {
	f := startSourceFlow(t, contactMappings, "--webhook-retry-delays", "")
	ada := f.knownContact("u-ada", "ada@example.com", "Ada")
	const (
		notifications = `switchyard_hubspot_source_notifications_total{source="crm-in"}`
		mismatch      = `switchyard_hubspot_source_webhook_refused_total{source="crm-in",reason="mismatch"}`
		stale         = `switchyard_hubspot_source_webhook_refused_total{source="crm-in",reason="stale"}`
		unauthorized  = `switchyard_hubspot_source_webhook_requests_total{source="crm-in",result="unauthorized"}`
	)
	stored := f.counter(notifications)
	switches := func(body string) {
		resp, err := http.Post(f.base+"/_sandbox/webhooks/switches", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST /_sandbox/webhooks/switches %s: %d", body, resp.StatusCode)
		}
	}
	dropped := func() int64 { return sandboxGet(t, f.base, "/_sandbox/webhooks").Get("stats.dropped").Int() }

	for _, tc := range []struct{ switches, firstName, refused string }{
		{`{"wrongSecret":true}`, "Forged", mismatch},
		{`{"staleTimestamp":true}`, "Stale", stale},
	} {
		refused, gone := f.counter(tc.refused), dropped()
		switches(tc.switches)
		sandboxEdit(t, f.base, "contacts/"+ada, `{"properties":{"firstname":"`+tc.firstName+`"}}`)
		f.waitCounter(tc.refused, refused)
		eventuallyTrueWithin(t, 20*time.Second, "the sandbox drops the refused notification", func() bool { return dropped() > gone })
		if last := sandboxGet(t, f.base, "/_sandbox/webhooks").Get("stats.lastError").String(); !strings.Contains(last, "401") {
			t.Errorf("%s: the sandbox's last failure is %q, want a 401", tc.switches, last)
		}
	}
	switches(`{}`)

	// Signed here: with another secret, and at a time 6 minutes ago.
	body := firstNameChange(900003, ada, "Signed")
	refusedBefore := f.counter(unauthorized)
	if status := f.webhook("not-the-secret", time.Now(), body); status != http.StatusUnauthorized {
		t.Errorf("a webhook signed with another secret: %d, want 401", status)
	}
	if status := f.webhook(flowSecret, time.Now().Add(-6*time.Minute), body); status != http.StatusUnauthorized {
		t.Errorf("a webhook signed 6 minutes ago: %d, want 401", status)
	}
	if got := f.counter(unauthorized); got != refusedBefore+2 {
		t.Errorf("unauthorized requests counted %v, want %v", got, refusedBefore+2)
	}
	if got := f.counter(notifications); got != stored {
		t.Errorf("the refused webhooks stored %v notifications", got-stored)
	}
	if calls := sourceCalls(f.app, "crm-in"); len(calls) != 0 {
		t.Fatalf("a refused webhook reached the app: %s", calls[0].Raw)
	}

	// Once the webhooks are signed right again, the next edit gets through
	// alone.
	sandboxEdit(t, f.base, "contacts/"+ada, `{"properties":{"firstname":"Augusta"}}`)
	c := f.waitCall("the edit signed right", func(gjson.Result) bool { return true })
	if calls := sourceCalls(f.app, "crm-in"); len(calls) != 1 || c.Get("traits.first_name").String() != "Augusta" {
		t.Errorf("the app got %d calls from the source, the last %s; want the one edit signed right", len(calls), c.Raw)
	}
}

// TestHubSpotSourceMatchesByAnIDProperty: with match: app_user_id a
// contact is the user its app_user_id names. With only_known_users: false
// a user the app has not sent yet gets its identify too; by default only
// the users the app has sent do. A contact without the property is nobody.
func TestHubSpotSourceMatchesByAnIDProperty(t *testing.T) {
	for _, tc := range []struct {
		name, setting string
		newUserEmits  bool
	}{
		{"only_known_users_false", "      only_known_users: false\n", true},
		{"only_known_users_default", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startSourceFlow(t, contactMappings+"      match: app_user_id\n"+tc.setting)
			f.api(http.MethodPost, "/crm/v3/properties/contacts",
				`{"name":"app_user_id","label":"App user id","type":"string","fieldType":"text","groupName":"contactinformation"}`)
			ada := f.knownContact("u-ada", "ada@example.com", "Ada")

			// The app's user, once a person gives the contact its id.
			sandboxEdit(t, f.base, "contacts/"+ada, `{"properties":{"app_user_id":"u-ada","firstname":"Augusta"}}`)
			c := f.waitCall("the identify of u-ada", func(c gjson.Result) bool { return c.Get("userId").String() == "u-ada" })
			if c.Get("traits.first_name").String() != "Augusta" || c.Get("traits.app_user_id").Exists() {
				t.Errorf("the identify of u-ada: %s", c.Raw)
			}

			// A user the app has not sent.
			unknown := f.counter(changes("contacts", "unknown_user"))
			sandboxEdit(t, f.base, "contacts", `{"properties":{"email":"newt@example.com","app_user_id":"u-newt","firstname":"Newt"}}`)
			if tc.newUserEmits {
				c := f.waitCall("the identify of u-newt", func(c gjson.Result) bool { return c.Get("userId").String() == "u-newt" })
				if c.Get("traits.first_name").String() != "Newt" {
					t.Errorf("the identify of u-newt: %s", c.Raw)
				}
			} else {
				f.waitCounter(changes("contacts", "unknown_user"), unknown)
			}

			// A contact without app_user_id, though its email is a known
			// user's.
			unknown = f.counter(changes("contacts", "unknown_user"))
			sandboxEdit(t, f.base, "contacts/"+ada, `{"properties":{"app_user_id":""}}`)
			f.waitCounter(changes("contacts", "unknown_user"), unknown)

			users := map[string]int{}
			for _, c := range sourceCalls(f.app, "crm-in") {
				users[c.Get("userId").String()]++
			}
			want := map[string]int{"u-ada": 1}
			if tc.newUserEmits {
				want["u-newt"] = 1
			}
			if fmt.Sprint(users) != fmt.Sprint(want) {
				t.Errorf("the app got identifies of %v, want %v", users, want)
			}
		})
	}
}
