package sandbox_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// The tests in this file check the read side a HubSpot source uses; each
// names the section of shared/reference/hubspot-source.md and the source
// tag of the fact it checks.

func createDeal(t *testing.T, s *sandbox.Server, props string) string {
	t.Helper()
	r := call(t, s, "POST", "/crm/v3/objects/deals/batch/create", `{"inputs":[{"properties":{`+props+`}}]}`)
	mustStatus(t, r, 201)
	return r.get("results.0.id").String()
}

// §3.2 [O-search] deals' default properties; §6 [O24-assoc-types] deal to
// contact is type 3, contact to deal 4, deal to company 341, company to
// deal 342; [S-assoc] per-record and batch association reads.
func TestSandboxDeals(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	contact := createContacts(t, s, 1)[0]
	company := createCompanies(t, s, 1)[0]
	deal := createDeal(t, s, `"dealname":"Big","dealstage":"qualifiedtobuy","amount":"1200.5","pipeline":"default"`)

	r := call(t, s, "GET", "/crm/v3/objects/0-3/"+deal, "")
	mustStatus(t, r, 200)
	for _, p := range []string{"dealname", "dealstage", "amount", "pipeline", "createdate", "hs_lastmodifieddate", "hs_object_id"} {
		if !r.get("properties." + p).Exists() {
			t.Errorf("default read lacks %s: %s", p, r.body)
		}
	}
	bad := call(t, s, "POST", "/crm/v3/objects/deals/batch/create", `{"inputs":[{"properties":{"dealstage":"nosuchstage"}}]}`)
	mustStatus(t, bad, 400)

	mustStatus(t, call(t, s, "PUT", "/crm/v4/objects/deals/"+deal+"/associations/default/contacts/"+contact, ""), 200)
	mustStatus(t, call(t, s, "PUT", "/crm/v4/objects/deals/"+deal+"/associations/default/companies/"+company, ""), 200)
	for _, c := range []struct{ path, wantID, wantType string }{
		{"/crm/v4/objects/deals/" + deal + "/associations/contacts", contact, "3"},
		{"/crm/v4/objects/contacts/" + contact + "/associations/deals", deal, "4"},
		{"/crm/v4/objects/deals/" + deal + "/associations/companies", company, "341"},
		{"/crm/v4/objects/companies/" + company + "/associations/deals", deal, "342"},
	} {
		r := call(t, s, "GET", c.path, "")
		mustStatus(t, r, 200)
		if r.get("results.0.toObjectId").String() != c.wantID || r.get("results.0.associationTypes.0.typeId").String() != c.wantType {
			t.Errorf("%s: %s, want %s with type %s", c.path, r.body, c.wantID, c.wantType)
		}
	}
	r = call(t, s, "POST", "/crm/v4/associations/contacts/deals/batch/read", `{"inputs":[{"id":"`+contact+`"}]}`)
	mustStatus(t, r, 200)
	if r.get("results.0.to.0.toObjectId").String() != deal {
		t.Errorf("batch read of contact to deal: %s", r.body)
	}
}

// §3.1 [S-crm], [O-objapis]: batch/read of up to 100 ids answers the asked
// properties with the id and dates every read carries, 207 with
// OBJECT_NOT_FOUND for missing ids ([C-207]), 400 above 100 inputs, and
// propertiesWithHistory shows each value with its source.
func TestSandboxBatchReadForASource(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 2)
	deal := createDeal(t, s, `"dealname":"D","amount":"5"`)

	r := call(t, s, "POST", "/crm/v3/objects/deals/batch/read", `{"properties":["amount"],"propertiesWithHistory":[],"inputs":[{"id":"`+deal+`"}]}`)
	mustStatus(t, r, 200)
	got := []string{}
	r.get("results.0.properties").ForEach(func(k, _ gjson.Result) bool { got = append(got, k.String()); return true })
	if strings.Join(got, ",") != "amount,createdate,hs_lastmodifieddate,hs_object_id" {
		t.Errorf("deal properties %v, want the asked amount with createdate, hs_lastmodifieddate and hs_object_id", got)
	}
	r = call(t, s, "POST", "/crm/v3/objects/contacts/batch/read", `{"properties":["email"],"inputs":[{"id":"`+ids[0]+`"},{"id":"424242"}]}`)
	mustStatus(t, r, 207)
	if !r.get("results.0.properties.lastmodifieddate").Exists() || r.get("results.0.properties.hs_lastmodifieddate").Exists() {
		t.Errorf("a contact's read carries lastmodifieddate, not hs_lastmodifieddate: %s", r.body)
	}
	if r.get("errors.0.category").String() != "OBJECT_NOT_FOUND" || r.get("errors.0.context.ids").Raw != `["424242"]` ||
		r.get("errors.0.message").String() != "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid." {
		t.Errorf("207 errors: %s", r.body)
	}
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/read", inputs(101, func(i int) string { return `{"id":"1"}` })), 400)

	clock.Advance(time.Minute)
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/contacts/"+ids[0], `{"properties":{"firstname":"Rep"}}`), 200)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", `{"inputs":[{"id":"`+ids[0]+`","properties":{"firstname":"App"}}]}`), 200)
	r = call(t, s, "POST", "/crm/v3/objects/contacts/batch/read", `{"properties":[],"propertiesWithHistory":["firstname"],"inputs":[{"id":"`+ids[0]+`"}]}`)
	h := r.get("results.0.propertiesWithHistory.firstname")
	if h.Get("#").Int() != 2 || h.Get("0.value").String() != "App" || h.Get("0.sourceType").String() != "INTEGRATION" ||
		h.Get("1.value").String() != "Rep" || h.Get("1.sourceType").String() != "CRM_UI" || h.Get("1.sourceId").String() != "userId:45678" {
		t.Errorf("history, newest first, with sources: %s", h.Raw)
	}
}

// §3.3 [O-contacts], [S-crm]: list-all pages at most 100 records by
// paging.next.after; archived records are listed only with archived=true.
func TestSandboxListAllForFullSync(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	for b := 0; b < 3; b++ {
		createCompanies(t, s, 90)
	}
	var got int
	path := "/crm/v3/objects/companies?limit=500&properties=name"
	for pages := 1; ; pages++ {
		r := call(t, s, "GET", path, "")
		mustStatus(t, r, 200)
		n := int(r.get("results.#").Int())
		if n > 100 {
			t.Fatalf("a page of %d records, limit is 100", n)
		}
		got += n
		after := r.get("paging.next.after").String()
		if after == "" {
			if pages != 3 {
				t.Errorf("%d pages for 270 records, want 3", pages)
			}
			break
		}
		path = "/crm/v3/objects/companies?limit=100&properties=name&after=" + after
	}
	if got != 270 {
		t.Errorf("listed %d records, want 270", got)
	}
}

// §3.2 [O-search], [C-85019]: catch-up searches contacts by
// lastmodifieddate and companies and deals by hs_lastmodifieddate, with
// range filters and an ascending sort, 200 per page; a filter on a
// contact's hs_lastmodifieddate finds nothing; search lags (Config.SearchLag).
func TestSandboxSearchByLastModified(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{SearchLag: 2 * time.Second, TenSecondlyLimit: 1000})
	start := clock.Now()
	ids := createContacts(t, s, 3)
	deal := createDeal(t, s, `"dealname":"D"`)
	clock.Advance(time.Minute)
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/contacts/"+ids[1], `{"properties":{"firstname":"Later"}}`), 200)
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/deals/"+deal, `{"properties":{"dealstage":"closedwon"}}`), 200)
	edited := clock.Now()

	search := func(typ, prop, op, value, high string) sandboxResp {
		t.Helper()
		clock.Advance(200 * time.Millisecond) // the search limit is 5/s
		body := fmt.Sprintf(`{"filterGroups":[{"filters":[{"propertyName":%q,"operator":%q,"value":%q,"highValue":%q}]}],"sorts":[{"propertyName":%q,"direction":"ASCENDING"}],"limit":200}`,
			prop, op, value, high, prop)
		r := call(t, s, "POST", "/crm/v3/objects/"+typ+"/search", body)
		mustStatus(t, r, 200)
		return r
	}
	ms := func(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }
	if r := search("contacts", "lastmodifieddate", "GTE", ms(start), ""); r.get("total").Int() != 3 || r.get("results.2.id").String() != ids[2] {
		t.Errorf("within the lag the edit is not seen yet: %s", r.body)
	}
	clock.Advance(2 * time.Second)
	r := search("contacts", "lastmodifieddate", "GTE", ms(edited), "")
	if r.get("total").Int() != 1 || r.get("results.0.id").String() != ids[1] {
		t.Errorf("GTE the edit: %s", r.body)
	}
	r = search("contacts", "lastmodifieddate", "GTE", ms(start), "")
	if r.get("results.#.id").String() != fmt.Sprintf(`["%s","%s","%s"]`, ids[0], ids[2], ids[1]) {
		t.Errorf("ascending by lastmodifieddate: %s", r.get("results.#.id"))
	}
	if r := search("contacts", "lastmodifieddate", "LT", ms(edited), ""); r.get("total").Int() != 2 {
		t.Errorf("LT the edit: %s", r.body)
	}
	if r := search("contacts", "lastmodifieddate", "BETWEEN", ms(start), ms(start.Add(time.Second))); r.get("total").Int() != 2 {
		t.Errorf("BETWEEN: %s", r.body)
	}
	if r := search("contacts", "lastmodifieddate", "LTE", edited.Format(time.RFC3339Nano), ""); r.get("total").Int() != 3 {
		t.Errorf("LTE an ISO 8601 time: %s", r.body)
	}
	if r := search("contacts", "hs_lastmodifieddate", "GTE", ms(start), ""); r.get("total").Int() != 0 {
		t.Errorf("a contact search on hs_lastmodifieddate finds records: %s", r.body)
	}
	if r := search("deals", "hs_lastmodifieddate", "GTE", ms(edited), ""); r.get("total").Int() != 1 || r.get("results.0.properties.dealstage").String() != "closedwon" {
		t.Errorf("deals by hs_lastmodifieddate: %s", r.body)
	}
}

// §5 [O-cl-merge]: contacts merge into a new record with a new id; reads of
// both old ids answer it; the primary's values win, the merged record's
// fill the gaps; hs_merged_object_ids lists every id merged in, chained
// merges included ([O-kb-merge], [C-fivetran168]); associations move to it
// ([O-cl-merge]); the journal has a merge and a deletion of each id merged
// away, and no propertyChange ([C-amp]).
func TestSandboxMerge(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 3)
	company := createCompanies(t, s, 1)[0]
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", inputs(2, func(i int) string {
		return fmt.Sprintf(`{"id":%q,"properties":{"firstname":"F%d","lastname":"L%d"}}`, ids[i], i, i)
	})), 200)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", `{"inputs":[{"id":"`+ids[1]+`","properties":{"jobtitle":"CTO"}},{"id":"`+ids[0]+`","properties":{"lastname":""}}]}`), 200)
	mustStatus(t, call(t, s, "PUT", "/crm/v4/objects/contacts/"+ids[1]+"/associations/default/companies/"+company, ""), 200)
	_, from := s.Changes(0)

	r := call(t, s, "POST", "/crm/v3/objects/contacts/merge", fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, ids[0], ids[1]))
	mustStatus(t, r, 200)
	merged := r.get("id").String()
	if merged == ids[0] || merged == ids[1] {
		t.Fatalf("the merged record kept an old id: %s", r.body)
	}
	for _, old := range ids[:2] {
		r := call(t, s, "GET", "/crm/v3/objects/contacts/"+old+"?properties=firstname,lastname,jobtitle,email,hs_merged_object_ids", "")
		mustStatus(t, r, 200)
		if r.get("id").String() != merged || r.get("properties.firstname").String() != "F0" || r.get("properties.lastname").String() != "L1" ||
			r.get("properties.jobtitle").String() != "CTO" || r.get("properties.email").String() != "user0@example.com" {
			t.Errorf("read of %s: %s", old, r.body)
		}
	}
	if n := len(s.Contacts()); n != 2 {
		t.Errorf("%d contacts after merging two of three, want 2", n)
	}
	r = call(t, s, "GET", "/crm/v4/objects/contacts/"+merged+"/associations/companies", "")
	if r.get("results.0.toObjectId").String() != company {
		t.Errorf("the merged record lost the association: %s", r.body)
	}

	changes, _ := s.Changes(from)
	var kinds []string
	for _, c := range changes {
		kinds = append(kinds, fmt.Sprintf("%s %d", c.Kind, c.ObjectID))
	}
	want := []string{"merge " + merged, "deletion " + ids[1], "deletion " + ids[0]}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("journal %v, want %v", kinds, want)
	}
	if m := changes[0]; fmt.Sprint(m.PrimaryObjectID) != ids[0] || fmt.Sprint(m.MergedObjectIDs) != "["+ids[1]+"]" || fmt.Sprint(m.NewObjectID) != merged ||
		m.NumberOfPropertiesMoved != 2 || m.ChangeSource != "INTEGRATION" {
		t.Errorf("merge change %+v", m)
	}

	r = call(t, s, "POST", "/crm/v3/objects/contacts/merge", fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, ids[2], merged))
	mustStatus(t, r, 200)
	again := r.get("id").String()
	r = call(t, s, "GET", "/crm/v3/objects/contacts/"+ids[1]+"?properties=hs_merged_object_ids", "")
	if r.get("id").String() != again || r.get("properties.hs_merged_object_ids").String() != strings.Join([]string{ids[0], ids[1], ids[2], merged}, ";") {
		t.Errorf("after a chained merge: %s", r.body)
	}
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/merge", fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, again, ids[0])), 400)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/merge", `{"primaryObjectId":"1","objectIdToMerge":"2"}`), 404)

	keep, _ := newSandbox(t, sandbox.Config{MergeKeepsPrimaryID: true})
	kids := createCompanies(t, keep, 2)
	r = call(t, keep, "POST", "/crm/v3/objects/companies/merge", fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, kids[0], kids[1]))
	if r.get("id").String() != kids[0] {
		t.Errorf("MergeKeepsPrimaryID: %s", r.body)
	}
}

// §5 [O-contacts], [O-kb-restore], [C-19838]: an archived record leaves
// reads and search, is listed with archived=true, keeps its modified date,
// and is journaled as a deletion.
func TestSandboxArchive(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{})
	ids := createCompanies(t, s, 2)
	before := call(t, s, "GET", "/crm/v3/objects/companies/"+ids[0], "").get("properties.hs_lastmodifieddate").String()
	clock.Advance(time.Minute)
	mustStatus(t, call(t, s, "DELETE", "/crm/v3/objects/companies/"+ids[0], ""), 204)
	mustStatus(t, call(t, s, "GET", "/crm/v3/objects/companies/"+ids[0], ""), 404)
	mustStatus(t, call(t, s, "DELETE", "/crm/v3/objects/companies/"+ids[0], ""), 404)
	if r := call(t, s, "POST", "/crm/v3/objects/companies/search", `{}`); r.get("total").Int() != 1 {
		t.Errorf("search sees the archived record: %s", r.body)
	}
	if r := call(t, s, "GET", "/crm/v3/objects/companies", ""); r.get("results.#").Int() != 1 {
		t.Errorf("the default list shows the archived record: %s", r.body)
	}
	r := call(t, s, "GET", "/crm/v3/objects/companies?archived=true&properties=hs_lastmodifieddate", "")
	if r.get("results.#").Int() != 1 || r.get("results.0.id").String() != ids[0] || r.get("results.0.properties.hs_lastmodifieddate").String() != before {
		t.Errorf("archived=true: %s (modified date before archiving %s)", r.body, before)
	}
	changes, _ := s.Changes(0)
	if last := changes[len(changes)-1]; last.Kind != sandbox.ChangeDeletion || fmt.Sprint(last.ObjectID) != ids[0] || last.ObjectType != "companies" || last.ObjectTypeID != "0-2" {
		t.Errorf("last change %+v", last)
	}
}

// §5 [S-crm], [O-kb-permdelete], [O24-wh]: gdpr-delete removes a contact at
// once, with its associations, answers 204 (also for an unknown email,
// which HubSpot blocklists), and is journaled as privacyDeletion and
// deletion.
func TestSandboxGDPRDelete(t *testing.T) {
	s, _ := newSandbox(t, sandbox.Config{})
	ids := createContacts(t, s, 2)
	company := createCompanies(t, s, 1)[0]
	mustStatus(t, call(t, s, "PUT", "/crm/v4/objects/contacts/"+ids[0]+"/associations/default/companies/"+company, ""), 200)
	_, from := s.Changes(0)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/gdpr-delete", `{"objectId":"user0@example.com","idProperty":"email"}`), 204)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/gdpr-delete", `{"objectId":"nobody@example.com","idProperty":"email"}`), 204)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/gdpr-delete", `{"objectId":"999999"}`), 404)
	mustStatus(t, call(t, s, "GET", "/crm/v3/objects/contacts/"+ids[0], ""), 404)
	if r := call(t, s, "GET", "/crm/v3/objects/contacts?archived=true", ""); r.get("results.#").Int() != 0 {
		t.Errorf("a privacy deletion went to the recycling bin: %s", r.body)
	}
	if r := call(t, s, "GET", "/crm/v4/objects/companies/"+company+"/associations/contacts", ""); r.get("results.#").Int() != 0 {
		t.Errorf("the association outlived the contact: %s", r.body)
	}
	changes, _ := s.Changes(from)
	if len(changes) != 2 || changes[0].Kind != sandbox.ChangePrivacyDeletion || changes[1].Kind != sandbox.ChangeDeletion ||
		fmt.Sprint(changes[0].ObjectID) != ids[0] || fmt.Sprint(changes[1].ObjectID) != ids[0] {
		t.Errorf("journal %+v", changes)
	}
}

// §1.3 [O24-wh]: a person's edit in the UI is journaled with changeSource
// CRM_UI and sourceId userId:N ([C-prismatic]); an API write with
// INTEGRATION and the app's id ([C] "changeSource":"INTEGRATION" with
// "sourceId" equal to the appId), so a source tells its own writes apart;
// a creation, one propertyChange per changed value, and association
// changes on both sides ([O24-wh]).
func TestSandboxEditsAndChangeJournal(t *testing.T) {
	s, clock := newSandbox(t, sandbox.Config{AppIDs: map[string]int64{"pat-other": 777}})
	r := call(t, s, "POST", "/_sandbox/edit/contacts", `{"properties":{"email":"rep@example.com","firstname":"Ann"}}`)
	mustStatus(t, r, 201)
	contact := r.get("id").String()
	created := r.get("properties.lastmodifieddate").String()
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/contacts", `{"properties":{"email":"rep@example.com"}}`), 409)
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/contacts/999999", `{"properties":{"firstname":"X"}}`), 404)
	mustStatus(t, call(t, s, "POST", "/_sandbox/edit/contacts/"+contact, `{"properties":{"lastmodifieddate":"2020-01-01"}}`), 400)

	clock.Advance(time.Second)
	r = call(t, s, "POST", "/_sandbox/edit/contacts/"+contact, `{"properties":{"firstname":"Ann","lastname":"Lee"}}`)
	mustStatus(t, r, 200)
	if r.get("properties.lastmodifieddate").String() == created {
		t.Errorf("an edit did not stamp lastmodifieddate: %s", r.body)
	}
	r = call(t, s, "POST", "/_sandbox/edit/deals", `{"properties":{"dealname":"D","dealstage":"contractsent"},"associations":[{"toObjectType":"contacts","toObjectId":"`+contact+`"}]}`)
	mustStatus(t, r, 201)
	deal := r.get("id").String()
	mustStatus(t, callAs(t, s, "pat-other", "POST", "/crm/v3/objects/contacts/batch/update", `{"inputs":[{"id":"`+contact+`","properties":{"lastname":"Li"}}]}`), 200)
	mustStatus(t, call(t, s, "POST", "/crm/v3/objects/contacts/batch/update", `{"inputs":[{"id":"`+contact+`","properties":{"lastname":""}}]}`), 200)

	changes, next := s.Changes(0)
	var got []string
	for _, c := range changes {
		line := fmt.Sprintf("%s %s %d %s", c.ChangeSource, c.Kind, c.ObjectID, c.SourceID)
		switch c.Kind {
		case sandbox.ChangePropertyChange:
			line += " " + c.Property + "=" + c.Value
		case sandbox.ChangeAssociationChange:
			line += fmt.Sprintf(" %s %d %d", c.AssociationType, c.ToObjectID, c.AssociationTypeID)
		}
		got = append(got, line)
	}
	want := []string{
		"CRM_UI creation " + contact + " userId:45678",
		"CRM_UI propertyChange " + contact + " userId:45678 email=rep@example.com",
		"CRM_UI propertyChange " + contact + " userId:45678 firstname=Ann",
		"CRM_UI propertyChange " + contact + " userId:45678 lastname=Lee",
		"CRM_UI creation " + deal + " userId:45678",
		"CRM_UI propertyChange " + deal + " userId:45678 dealname=D",
		"CRM_UI propertyChange " + deal + " userId:45678 dealstage=contractsent",
		"CRM_UI associationChange " + deal + " userId:45678 DEAL_TO_CONTACT " + contact + " 3",
		"CRM_UI associationChange " + contact + " userId:45678 CONTACT_TO_DEAL " + deal + " 4",
		"INTEGRATION propertyChange " + contact + " 777 lastname=Li",
		"INTEGRATION propertyChange " + contact + " 1160452 lastname=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if next != len(changes) || changes[0].ObjectTypeID != "0-1" || changes[4].ObjectTypeID != "0-3" || changes[9].AppID != 777 {
		t.Errorf("next %d, changes %+v", next, changes)
	}
	if more, n := s.Changes(next); len(more) != 0 || n != next {
		t.Errorf("Changes(next) = %v, %d", more, n)
	}

	added := s.ChangesAdded()
	select {
	case <-added:
		t.Fatal("ChangesAdded is closed before a change")
	default:
	}
	mustStatus(t, call(t, s, "DELETE", "/crm/v3/objects/deals/"+deal, ""), 204)
	select {
	case <-added:
	case <-time.After(time.Second):
		t.Fatal("ChangesAdded is not closed by a change")
	}
	r = call(t, s, "GET", fmt.Sprintf("/_sandbox/changes?from=%d", next), "")
	if r.get("results.#").Int() != 1 || r.get("results.0.kind").String() != "deletion" || r.get("next").Int() != int64(next+1) {
		t.Errorf("/_sandbox/changes: %s", r.body)
	}
}
