package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// A company with more associated contacts than one page of the v4 batch
// read holds is read through every page ([S-assoc]: a record's paging.next.after
// is sent back with its id).
func TestAssociationsFollowEveryPage(t *testing.T) {
	h := newHarnessWith(t, func(c *sandbox.Config) { c.Tier = "enterprise" }, nil)
	companies := h.call(http.MethodPost, "/crm/v3/objects/companies/batch/create", "our-token",
		`{"inputs":[{"properties":{"name":"Acme","domain":"acme.example"}},{"properties":{"name":"Other","domain":"other.example"}}]}`).Get("results.#.id").Array()
	company, other := companies[0].String(), companies[1].String()
	var contacts []string
	for batch := range 12 {
		inputs := make([]string, 100)
		for i := range inputs {
			inputs[i] = fmt.Sprintf(`{"properties":{"email":"p%d-%d@example.com"}}`, batch, i)
		}
		r := h.call(http.MethodPost, "/crm/v3/objects/contacts/batch/create", "our-token", `{"inputs":[`+strings.Join(inputs, ",")+`]}`)
		ids := r.Get("results.#.id").Array()
		links := make([]string, len(ids))
		for i, id := range ids {
			contacts = append(contacts, id.String())
			links[i] = fmt.Sprintf(`{"from":{"id":%q},"to":{"id":%q}}`, company, id.String())
		}
		h.call(http.MethodPost, "/crm/v4/associations/companies/contacts/batch/associate/default", "our-token", `{"inputs":[`+strings.Join(links, ",")+`]}`)
	}
	h.call(http.MethodPost, "/crm/v4/associations/companies/contacts/batch/associate/default", "our-token",
		fmt.Sprintf(`{"inputs":[{"from":{"id":%q},"to":{"id":%q}}]}`, other, contacts[0]))

	got, err := h.proc.hubspot.associations(context.Background(), "companies", "contacts", []string{company, other})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(contacts)
	slices.Sort(got[company])
	if !slices.Equal(got[company], contacts) {
		t.Errorf("read %d of the company's %d contacts", len(got[company]), len(contacts))
	}
	if !slices.Equal(got[other], contacts[:1]) {
		t.Errorf("the other company's contacts: %v", got[other])
	}
}
