package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
)

// openAPIModel parses the embedded document as OpenAPI 3.1 and checks it
// against the OpenAPI 3.1 specification's schema.
func openAPIModel(t *testing.T) (libopenapi.Document, *v3.Document) {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPI)
	if err != nil {
		t.Fatalf("parsing openapi.json: %v", err)
	}
	if v := doc.GetSpecInfo().Version; !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("building the OpenAPI model: %v", err)
	}
	return doc, &model.Model
}

func TestOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	doc, _ := openAPIModel(t)
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	if ok, problems := v.ValidateDocument(); !ok {
		for _, p := range problems {
			t.Errorf("openapi.json: %s: %s (line %d)", p.Message, p.Reason, p.SpecLine)
		}
	}
}

// documentedOperations returns "METHOD path" for every operation of the
// document.
func documentedOperations(model *v3.Document) []string {
	var ops []string
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// servedOperations returns "METHOD path" for every route the app serves,
// less the HEAD routes Fiber adds to each GET route, which HTTP implies. A
// route from Config.Routes is named by the documented path template it
// matches, such as /hubspot/webhooks/{source} for /hubspot/webhooks/:source.
// Pages (prefix routes) and streams (stream routes), such as the delivery
// page under /ui, are left out: they answer a browser with HTML, assets and
// server-sent events behind the admin token, and are not the API the
// document describes.
func servedOperations(g *Gateway, documented []string) []string {
	var ops []string
	for _, r := range g.App().GetRoutes(true) {
		if r.Method == http.MethodHead || g.isPage(r.Path) {
			continue
		}
		ops = append(ops, r.Method+" "+templateOf(r.Path, documented))
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

// templateOf returns the documented path template path matches, segment by
// segment ({name} matching any one segment), or path itself.
func templateOf(path string, documented []string) string {
	segments := strings.Split(path, "/")
	for _, op := range documented {
		_, template, _ := strings.Cut(op, " ")
		if !strings.Contains(template, "{") {
			continue
		}
		parts := strings.Split(template, "/")
		if len(parts) != len(segments) {
			continue
		}
		match := true
		for i, part := range parts {
			if !(strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") && segments[i] != "") && part != segments[i] {
				match = false
				break
			}
		}
		if match {
			return template
		}
	}
	return path
}

// webhookRoute stands for the HubSpot sources' receivers, the route that
// switchyard serve adds with Config.Routes.
var webhookRoute = Route{Method: http.MethodPost, Path: "/hubspot/webhooks/:source", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"success":true}`)
})}

// syncRoutes stand for the admin endpoint of the hubspot sources' syncs,
// the routes switchyard serve adds with Config.Routes; they answer as it
// does for a source it does not sync.
var syncRoutes = []Route{
	{Method: http.MethodPost, Path: "/admin/sources/:source/sync", Handler: http.HandlerFunc(noSuchSource)},
	{Method: http.MethodGet, Path: "/admin/sources/:source/sync", Handler: http.HandlerFunc(noSuchSource)},
}

func noSuchSource(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `{"success":false,"code":"not_found","message":"no such source","error":"no such source"}`)
}

func TestOpenAPIDocumentsEveryRouteAndNoOther(t *testing.T) {
	_, model := openAPIModel(t)
	f := newFixture(t, Config{Routes: append([]Route{webhookRoute, pageRoute}, syncRoutes...), StreamRoutes: []StreamRoute{newTestStream().route()}})
	documented := documentedOperations(model)
	served := servedOperations(f.gw, documented)
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("%s is served but not in openapi.json", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("%s is in openapi.json but not served", op)
		}
	}
	for _, r := range f.gw.App().GetRoutes(true) {
		if r.Method == http.MethodHead && !f.gw.isPage(r.Path) && !slices.Contains(served, http.MethodGet+" "+r.Path) {
			t.Errorf("HEAD %s is served without a GET", r.Path)
		}
	}
	if len(served) < len(routes)+4 {
		t.Fatalf("the app serves %d operations, fewer than the %d Tracking API routes and 4 operational ones", len(served), len(routes))
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	f := newFixture(t, Config{})
	resp, err := f.gw.App().Test(httptest.NewRequest(http.MethodGet, "/openapi.json", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openAPI) {
		t.Fatalf("GET /openapi.json: %d %s, %d bytes; want 200 application/json with the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// failingLog refuses every write and every check.
type failingLog struct{ queue.Log }

func (failingLog) Publish(context.Context, ...queue.Message) error { return io.ErrClosedPipe }
func (failingLog) Check(context.Context) error                     { return io.ErrClosedPipe }

// TestResponsesFollowOpenAPIDocument sends requests that get each answer
// the gateway gives and checks every answer against the document: status,
// content type, headers and body.
func TestResponsesFollowOpenAPIDocument(t *testing.T) {
	doc, _ := openAPIModel(t)
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	ok := newFixture(t, Config{MaxBatchMessages: 2})
	failing := newFixtureWithLog(t, Config{}, failingLog{closedLog(t)})
	routed := newFixture(t, Config{Routes: append([]Route{webhookRoute}, syncRoutes...)})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"type":"identify","userId":"u"}`))
	zw.Close()

	cases := []struct {
		name   string
		f      *fixture
		req    *http.Request
		status int
	}{
		{"identify", ok, newRequest("/v1/identify", `{"userId":"u","traits":{"email":"a@example.com"}}`, basic(testKey+":")), 200},
		{"track with the key in the body", ok, newRequest("/v1/t", `{"writeKey":"`+testKey+`","anonymousId":"a","event":"E"}`, ""), 200},
		{"gzip identify", ok, gzipRequest("/v1/identify", gz.Bytes()), 200},
		{"batch with an invalid message", ok, newRequest("/v1/batch", `{"batch":[{"type":"track","userId":"u"}]}`, basic(testKey)), 200},
		{"import", ok, newRequest("/v1/import", `{"batch":[]}`, basic(testKey)), 200},
		{"invalid message", ok, newRequest("/v1/track", `{"userId":"u"}`, basic(testKey)), 400},
		{"invalid JSON", ok, newRequest("/v1/page", `{"userId":`, basic(testKey)), 400},
		{"not an object", ok, newRequest("/v1/screen", `[1]`, basic(testKey)), 400},
		{"no batch array", ok, newRequest("/v1/b", `{"batch":{}}`, basic(testKey)), 400},
		{"too many messages", ok, newRequest("/v1/batch", `{"batch":[{},{},{}]}`, basic(testKey)), 400},
		{"message too large", ok, newRequest("/v1/group", `{"userId":"u","groupId":"g","traits":{"pad":"`+strings.Repeat("x", 40<<10)+`"}}`, basic(testKey)), 400},
		{"unsupported encoding", ok, withHeader(newRequest("/v1/alias", `{}`, basic(testKey)), "Content-Encoding", "br"), 400},
		{"wrong key", ok, newRequest("/v1/alias", `{"userId":"u","previousId":"p"}`, basic("wrong:")), 401},
		{"no key", ok, newRequest("/v1/batch", `{"batch":[]}`, ""), 401},
		{"log refuses", failing, newRequest("/v1/track", `{"userId":"u","event":"E"}`, basic(testKey)), 503},
		{"healthz", ok, httptest.NewRequest(http.MethodGet, "/healthz", nil), 200},
		{"readyz", ok, httptest.NewRequest(http.MethodGet, "/readyz", nil), 200},
		{"readyz with the log down", failing, httptest.NewRequest(http.MethodGet, "/readyz", nil), 503},
		{"metrics", ok, httptest.NewRequest(http.MethodGet, "/metrics", nil), 200},
		{"openapi.json", ok, httptest.NewRequest(http.MethodGet, "/openapi.json", nil), 200},
		{"a route from the config", routed, withHeader(httptest.NewRequest(http.MethodPost, "/hubspot/webhooks/crm-in", strings.NewReader(`[]`)), "Content-Type", "application/json"), 200},
		{"a sync of a source not synced", routed, withHeader(httptest.NewRequest(http.MethodPost, "/admin/sources/crm-in/sync", strings.NewReader(`{"full":true}`)), "Content-Type", "application/json"), 404},
		{"the progress of a source not synced", routed, httptest.NewRequest(http.MethodGet, "/admin/sources/crm-in/sync", nil), 404},
		{"a source not configured", ok, withHeader(httptest.NewRequest(http.MethodPost, "/hubspot/webhooks/crm-in", strings.NewReader(`[]`)), "Content-Type", "application/json"), 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkAgainstDocument(t, v, c.f, c.req, c.status)
		})
	}

	t.Run("overloaded", func(t *testing.T) {
		base, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		blocking := &blockingLog{Log: base, entered: make(chan struct{}, 1), release: make(chan struct{})}
		f := newFixtureWithLog(t, Config{MaxInFlight: 1}, blocking)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.post(t, "/v1/track", `{"userId":"u","event":"first"}`)
		}()
		<-blocking.entered
		checkAgainstDocument(t, v, f, newRequest("/v1/track", `{"userId":"u","event":"second"}`, basic(testKey)), 429)
		close(blocking.release)
		wg.Wait()
	})
}

// checkAgainstDocument serves req, wants status and validates the response
// against the document.
func checkAgainstDocument(t *testing.T, v validator.Validator, f *fixture, req *http.Request, status int) {
	t.Helper()
	resp, err := f.gw.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.URL.Path, resp.StatusCode, status, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, problems := v.ValidateHttpResponse(req, resp); !ok {
		for _, p := range problems {
			t.Errorf("%s %s answered %d %s: %s: %s", req.Method, req.URL.Path, resp.StatusCode, body, p.Message, p.Reason)
		}
	}
}

func gzipRequest(path string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", basic(testKey+":"))
	return req
}

func withHeader(req *http.Request, name, value string) *http.Request {
	req.Header.Set(name, value)
	return req
}

// TestUnknownMethodsGetJSONErrors checks that a method Fiber does not know
// gets the answer of a known one: 405 with Allow on a served path, 404
// elsewhere, both in the JSON error form.
func TestUnknownMethodsGetJSONErrors(t *testing.T) {
	f := newFixture(t, Config{})
	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"QUERY", "/v1/track", 405, "method_not_allowed", "POST"},
		{"QUERY", "/V1/Track/", 405, "method_not_allowed", "POST"},
		{"QUERY", "/healthz", 405, "method_not_allowed", "GET, HEAD"},
		{"QUERY", "/nowhere", 404, "not_found", ""},
		{http.MethodPut, "/v1/batch", 405, "method_not_allowed", "POST"},
		{http.MethodPost, "/metrics", 405, "method_not_allowed", "GET, HEAD"},
	}
	for _, c := range cases {
		r := f.do(t, httptest.NewRequest(c.method, c.path, nil))
		if r.status != c.status || r.body.Get("code").String() != c.code || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %s, Allow %q; want %d %s, Allow %q", c.method, c.path, r.status, r.body.Raw, r.header.Get("Allow"), c.status, c.code, c.allow)
		}
		if c.status == 405 && !strings.HasSuffix(r.body.Get("message").String(), "use "+c.allow) {
			t.Errorf("%s %s: message %q does not name the methods to use", c.method, c.path, r.body.Get("message").String())
		}
	}
}
