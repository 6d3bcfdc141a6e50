package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// fakeTester answers a dry run the way the HubSpot destination shapes one:
// the identifies of each pair of calls upserted in one request, every trait
// becoming its lower-cased name, traits starting with a digit skipped.
type fakeTester struct {
	dests []string
	got   [][]json.RawMessage
}

func (f *fakeTester) Destinations() []string { return f.dests }

func (f *fakeTester) DryRun(_ context.Context, dest string, calls []json.RawMessage) (TesterResult, error) {
	f.got = append(f.got, calls)
	var res TesterResult
	for start := 0; start < len(calls); start += 2 {
		b := TesterBatch{First: start, Last: min(len(calls), start+2) - 1}
		var inputs []map[string]any
		for _, raw := range calls[start : b.Last+1] {
			var c struct {
				Type   string
				UserID string `json:"userId"`
				Traits map[string]any
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return res, err
			}
			call := TesterCall{Result: "delivered"}
			props := map[string]any{}
			keys := make([]string, 0, len(c.Traits))
			for k := range c.Traits {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if k[0] >= '0' && k[0] <= '9' {
					call.Mapping = append(call.Mapping, TesterMapping{Object: "contacts", Key: k, Skipped: "cannot be a property name"})
					continue
				}
				props[strings.ToLower(k)] = fmt.Sprint(c.Traits[k])
				call.Mapping = append(call.Mapping, TesterMapping{Object: "contacts", Key: k, Property: strings.ToLower(k), Value: fmt.Sprint(c.Traits[k])})
			}
			if c.Type == "identify" {
				inputs = append(inputs, map[string]any{"id": c.Traits["email"], "idProperty": "email", "properties": props})
			}
			res.Calls = append(res.Calls, call)
		}
		if len(inputs) > 0 {
			body, _ := json.Marshal(map[string]any{"inputs": inputs})
			b.Requests = append(b.Requests, TesterRequest{Method: "POST", Path: "/crm/v3/objects/contacts/batch/upsert", Body: body})
		}
		res.Batches = append(res.Batches, b)
	}
	return res, nil
}

func newTesterServer(t *testing.T, tester Tester) (*Handler, *httptest.Server) {
	t.Helper()
	h, err := New(Config{AdminToken: testToken, Metrics: newTestMetrics().reg, Context: t.Context(), Tester: tester})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h.(*Handler), srv
}

// postCalls posts calls to the tester as htmx does, with the session and
// its CSRF token, and returns the status and the fragment.
func postCalls(t *testing.T, h *Handler, base, dest, calls string) (int, string) {
	t.Helper()
	cookie := login(t, base)
	s, _ := h.auth.parseSession(cookie.Value)
	resp := do(t, noRedirect(), "POST", base+"/ui/tester", url.Values{"csrf": {h.auth.csrfToken(s)}, "destination": {dest}, "calls": {calls}},
		map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, "Origin": base, "HX-Request": "true"})
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestTesterRefusesWithoutAuthAndCSRF(t *testing.T) {
	f := &fakeTester{dests: []string{"hubspot"}}
	h, srv := newTesterServer(t, f)
	cookie := login(t, srv.URL)
	s, _ := h.auth.parseSession(cookie.Value)
	csrf := h.auth.csrfToken(s)
	ck := cookie.Name + "=" + cookie.Value
	form := url.Values{"destination": {"hubspot"}, "calls": {`{"type":"identify","userId":"u1"}`}}
	withCSRF := url.Values{"csrf": {csrf}, "destination": form["destination"], "calls": form["calls"]}
	c := noRedirect()
	for _, tc := range []struct {
		name, method string
		form         url.Values
		hdr          map[string]string
		want         int
	}{
		{"page without a session", "GET", nil, nil, http.StatusSeeOther},
		{"run without a session", "POST", withCSRF, nil, 401},
		{"run with a wrong bearer token", "POST", form, map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"run with a forged cookie", "POST", withCSRF, map[string]string{"Cookie": sessionCookie + "=forged.value"}, 401},
		{"run without the CSRF token", "POST", form, map[string]string{"Cookie": ck}, 403},
		{"run from another site", "POST", withCSRF, map[string]string{"Cookie": ck, "Origin": "http://evil.example"}, 403},
		{"run from a cross-site fetch", "POST", withCSRF, map[string]string{"Cookie": ck, "Sec-Fetch-Site": "cross-site"}, 403},
		{"page with the session", "GET", nil, map[string]string{"Cookie": ck}, 200},
		{"run with the session and its CSRF token", "POST", withCSRF, map[string]string{"Cookie": ck, "Origin": srv.URL}, 200},
	} {
		resp := do(t, c, tc.method, srv.URL+"/ui/tester", tc.form, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if len(f.got) != 1 {
		t.Errorf("the dry run ran %d times, want once (only the allowed run)", len(f.got))
	}
}

func TestTesterShowsTheRequestsAndTheTraitTable(t *testing.T) {
	f := &fakeTester{dests: []string{"hubspot", "hubspot-eu"}}
	h, srv := newTesterServer(t, f)
	identify := `{"type":"identify","userId":"u1","traits":{"email":"ada@example.com","First":"Ada <b>","2fa":true}}`
	status, body := postCalls(t, h, srv.URL, "hubspot-eu", identify)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, want := range []string{
		`<span class="method">POST</span> <code class="path">/crm/v3/objects/contacts/batch/upsert</code>`,
		`&#34;idProperty&#34;: &#34;email&#34;`,
		`<tr data-key="First">`, `<code>first</code>`, `Ada &lt;b&gt;`,
		`<tr data-key="2fa" class="skipped">`, `cannot be a property name`,
		`Batch 1: call 1, 1 request`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the fragment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<html") {
		t.Error("an htmx post got a whole page, want the fragment")
	}

	// A batch body of three calls: two batches, calls numbered as pasted.
	batch := `{"batch":[` + identify + `,{"type":"identify","userId":"u2","traits":{"email":"b@example.com"}},{"type":"track","userId":"u2","event":"Clicked"}]}`
	status, body = postCalls(t, h, srv.URL, "hubspot", batch)
	if status != 200 || !strings.Contains(body, "Batch 1: calls 1–2, 1 request") || !strings.Contains(body, "Batch 2: call 3, 0 requests") {
		t.Errorf("a batch body: status %d\n%s", status, body)
	}
	// An array works too, and a plain form post gets the whole page.
	cookie := login(t, srv.URL)
	s, _ := h.auth.parseSession(cookie.Value)
	resp := do(t, noRedirect(), "POST", srv.URL+"/ui/tester", url.Values{"csrf": {h.auth.csrfToken(s)}, "destination": {"hubspot"}, "calls": {"[" + identify + "]"}},
		map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, "Origin": srv.URL})
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<html") || !strings.Contains(string(page), "/crm/v3/objects/contacts/batch/upsert") {
		t.Errorf("a plain form post: status %d\n%s", resp.StatusCode, page)
	}
}

func TestTesterExplainsBadInput(t *testing.T) {
	f := &fakeTester{dests: []string{"hubspot"}}
	h, srv := newTesterServer(t, f)
	for _, tc := range []struct {
		name, dest, calls string
		want              string
	}{
		{"nothing", "hubspot", "  ", "Paste one or more Segment calls"},
		{"broken JSON", "hubspot", "{\"type\":\"identify\",\n \"userId\": u1}", "The input is not valid JSON: line 2, column 12: invalid character"},
		{"cut short", "hubspot", `{"type":"identify"`, "it ends before the value does"},
		{"two values", "hubspot", `{"type":"identify"} {"type":"track"}`, "paste several calls as an array"},
		{"a string", "hubspot", `"identify"`, "neither a call"},
		{"an array of numbers", "hubspot", `[1,2]`, "Call 1 is not a JSON object."},
		{"a batch that is not an array", "hubspot", `{"batch":{"type":"identify"}}`, `&#34;batch&#34; is not an array of calls`},
		{"an empty array", "hubspot", `[]`, "holds no call"},
		{"an unknown destination", "crm", `{"type":"identify","userId":"u1"}`, `&#34;crm&#34; is not a destination with a dry run; choose one of hubspot.`},
		{"a call the gateway refuses", "hubspot", `{"type":"identify","traits":{"email":"a@example.com"}}`, "The gateway would refuse this call:"},
	} {
		status, body := postCalls(t, h, srv.URL, tc.dest, tc.calls)
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
			t.Errorf("%s: status %d, want 422 and %q in\n%s", tc.name, status, tc.want, body)
		}
	}
	if len(f.got) != 0 {
		t.Errorf("bad input reached the dry run: %s", f.got)
	}

	// Of a valid and an invalid call, only the valid one runs; both are
	// reported under the numbers they were pasted with.
	status, body := postCalls(t, h, srv.URL, "hubspot", `[{"type":"identify"},{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}]`)
	if status != 200 || len(f.got) != 1 || len(f.got[0]) != 1 {
		t.Fatalf("status %d, dry runs %s", status, f.got)
	}
	if !strings.Contains(body, `<section class="call" data-call="1">`) || !strings.Contains(body, "would refuse") || !strings.Contains(body, "Batch 1: call 2, 1 request") {
		t.Errorf("a valid and an invalid call:\n%s", body)
	}
}

func TestTesterWithoutADryRunSaysSo(t *testing.T) {
	h, srv := newTesterServer(t, nil)
	status, body := postCalls(t, h, srv.URL, "", `{"type":"identify","userId":"u1"}`)
	if status != http.StatusNotFound || !strings.Contains(body, "No destination has a dry run") {
		t.Errorf("status %d: %s", status, body)
	}
}
