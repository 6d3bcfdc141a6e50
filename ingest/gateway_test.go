package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/config"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	"github.com/switchyard/switchyard/queue/queuetest"
)

const testKey = "wk_test_123"

// received is the gateway's clock in these tests.
var received = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type fixture struct {
	gw  *Gateway
	log queue.Log
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir(), Partitions: 4}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return newFixtureWithLog(t, cfg, log)
}

func newFixtureWithLog(t *testing.T, cfg Config, log queue.Log) *fixture {
	t.Helper()
	if cfg.Sources == nil {
		cfg.Sources = []Source{{Name: "web", WriteKeys: []string{testKey}}, {Name: "backend", WriteKeys: []string{"wk_backend"}}}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return received }
	}
	gw, err := New(cfg, log, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{gw: gw, log: log}
}

type response struct {
	status int
	header http.Header
	body   gjson.Result
}

func (f *fixture) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := f.gw.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: gjson.ParseBytes(raw)}
}

func (f *fixture) post(t *testing.T, path, body string) response {
	t.Helper()
	return f.do(t, newRequest(path, body, basic(testKey+":")))
}

func newRequest(path, body, authorization string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

func basic(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

// readAll returns every message of a topic as JSON, in offset order per
// partition.
func readAll(t *testing.T, log queue.Log, topic string) []gjson.Result {
	t.Helper()
	var out []gjson.Result
	for _, m := range queuetest.ReadAll(t, log, topic) {
		out = append(out, gjson.ParseBytes(m.Value))
	}
	return out
}

func wantStatus(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body.Raw)
	}
	if code != "" && r.body.Get("code").String() != code {
		t.Fatalf("code %q, want %q; body %s", r.body.Get("code").String(), code, r.body.Raw)
	}
	if status == 200 && r.body.Raw != `{"success":true}` {
		t.Fatalf("body %s, want {\"success\":true}", r.body.Raw)
	}
	if status != 200 && (r.body.Get("success").Bool() || r.body.Get("message").String() == "") {
		t.Fatalf("error body %s lacks success:false and a message", r.body.Raw)
	}
}

func TestEveryRouteStoresItsCallType(t *testing.T) {
	single := map[string]string{
		"/v1/identify": "identify", "/v1/track": "track", "/v1/page": "page",
		"/v1/screen": "screen", "/v1/group": "group", "/v1/alias": "alias",
		"/v1/i": "identify", "/v1/t": "track", "/v1/p": "page",
		"/v1/s": "screen", "/v1/g": "group", "/v1/a": "alias",
	}
	f := newFixture(t, Config{})
	for path, typ := range single {
		body := fmt.Sprintf(`{"userId":"u-%s","previousId":"p","event":"E","groupId":"g","messageId":"m-%s"}`, typ, path)
		wantStatus(t, f.post(t, path, body), 200, "")
	}
	for _, path := range []string{"/v1/batch", "/v1/import", "/v1/b"} {
		body := fmt.Sprintf(`{"batch":[{"type":"track","userId":"u","event":"E","messageId":"m-%s"}]}`, path)
		wantStatus(t, f.post(t, path, body), 200, "")
	}
	got := map[string]string{}
	for _, m := range readAll(t, f.log, "events") {
		got[strings.TrimPrefix(m.Get("messageId").String(), "m-")] = m.Get("type").String()
	}
	for path, typ := range single {
		if got[path] != typ {
			t.Errorf("%s stored type %q, want %q", path, got[path], typ)
		}
	}
	for _, path := range []string{"/v1/batch", "/v1/import", "/v1/b"} {
		if got[path] != "track" {
			t.Errorf("%s: batch message not stored (got %q)", path, got[path])
		}
	}
}

func TestAuthForms(t *testing.T) {
	body := `{"userId":"u1","event":"E"}`
	tests := []struct {
		name   string
		auth   string
		body   string
		status int
		source string
	}{
		{"a Basic username with the trailing colon is accepted", basic(testKey + ":"), body, 200, "web"},
		{"a Basic username without a colon is accepted", basic(testKey), body, 200, "web"},
		{"a lowercase basic scheme is accepted", "basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":")), body, 200, "web"},
		{"writeKey in the body is accepted without a header", "", `{"userId":"u1","event":"E","writeKey":"wk_backend"}`, 200, "backend"},
		{"the key picks its own source", basic("wk_backend:"), body, 200, "backend"},
		{"an unknown Basic key is refused", basic("nope:"), body, 401, ""},
		{"an unknown body key is refused", "", `{"userId":"u1","event":"E","writeKey":"nope"}`, 401, ""},
		{"a request without any key is refused", "", body, 401, ""},
		{"a Bearer token alone is not a write key", "Bearer " + testKey, body, 401, ""},
		{"Bearer plus writeKey in the body is accepted", "Bearer oauth-token", `{"userId":"u1","event":"E","writeKey":"` + testKey + `"}`, 200, "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			r := f.do(t, newRequest("/v1/track", tt.body, tt.auth))
			if tt.status == 401 {
				wantStatus(t, r, 401, "unauthorized")
				if n := len(readAll(t, f.log, "events")); n != 0 {
					t.Fatalf("%d messages stored for a refused request", n)
				}
				return
			}
			wantStatus(t, r, 200, "")
			msgs := readAll(t, f.log, "events")
			if len(msgs) != 1 {
				t.Fatalf("stored %d messages, want 1", len(msgs))
			}
			if got := msgs[0].Get("_switchyard.source").String(); got != tt.source {
				t.Fatalf("source %q, want %q", got, tt.source)
			}
			if msgs[0].Get("writeKey").Exists() {
				t.Fatalf("the write key was stored: %s", msgs[0].Raw)
			}
		})
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestGzipBodies(t *testing.T) {
	f := newFixture(t, Config{})
	req := httptest.NewRequest(http.MethodPost, "/v1/b", bytes.NewReader(gzipped(t, `{"batch":[{"type":"identify","userId":"u1","traits":{"Plan Type":"pro"}}]}`)))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", basic(testKey+":"))
	wantStatus(t, f.do(t, req), 200, "")
	msgs := readAll(t, f.log, "events")
	if len(msgs) != 1 || msgs[0].Get(`traits.Plan Type`).String() != "pro" {
		t.Fatalf("stored %v", msgs)
	}

	t.Run("a body that is not gzip is refused", func(t *testing.T) {
		req := newRequest("/v1/batch", `{"batch":[]}`, basic(testKey+":"))
		req.Header.Set("Content-Encoding", "gzip")
		wantStatus(t, f.do(t, req), 400, "invalid_body")
	})
	t.Run("an unknown encoding is refused", func(t *testing.T) {
		req := newRequest("/v1/batch", `{"batch":[]}`, basic(testKey+":"))
		req.Header.Set("Content-Encoding", "br")
		wantStatus(t, f.do(t, req), 400, "invalid_body")
	})
	t.Run("a decompression bomb is cut off at the limit", func(t *testing.T) {
		bomb := gzipped(t, `{"batch":[{"type":"track","userId":"u","event":"`+strings.Repeat("A", 50<<20)+`"}]}`)
		if len(bomb) > 100<<10 {
			t.Fatalf("the bomb is %d bytes compressed", len(bomb))
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(bomb))
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Authorization", basic(testKey+":"))
		r := f.do(t, req)
		wantStatus(t, r, 400, "request_too_large")
		if !strings.Contains(r.body.Get("message").String(), "512000") {
			t.Fatalf("the error does not name the limit: %s", r.body.Raw)
		}
	})
}

func TestChunkedBodyOverRealHTTP(t *testing.T) {
	f := newFixture(t, Config{})
	addr := listen(t, f)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chunks := []string{`{"batch":[{"type":"track","userId":"u1",`, `"event":"Chunked"}]}`}
	req := "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(testKey+":") +
		"\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, c := range chunks {
		req += fmt.Sprintf("%x\r\n%s\r\n", len(c), c)
	}
	req += "0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if msgs := readAll(t, f.log, "events"); len(msgs) != 1 || msgs[0].Get("event").String() != "Chunked" {
		t.Fatalf("stored %v", msgs)
	}
}

func listen(t *testing.T, f *fixture) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	ln := srv.Listener
	go f.gw.App().Listener(ln)
	t.Cleanup(func() { f.gw.App().Shutdown() })
	return ln.Addr().String()
}

func TestLimits(t *testing.T) {
	f := newFixture(t, Config{})
	big := strings.Repeat("x", 33<<10)
	tests := []struct {
		name, path, body, code, names string
	}{
		{"a single call over 32 KB is refused", "/v1/track", `{"userId":"u","event":"E","properties":{"p":"` + big + `"}}`, "message_too_large", "32768"},
		{"a batch message over 32 KB is refused", "/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"E","properties":{"p":"` + big + `"}}]}`, "message_too_large", "32768"},
		{"a batch over 500 KB is refused", "/v1/batch", `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"`+strings.Repeat("y", 20<<10)+`"},`, 26), ",") + `]}`, "request_too_large", "512000"},
		{"a batch of more than 2500 messages is refused", "/v1/batch", `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"E"},`, 2501), ",") + `]}`, "batch_too_large", "2500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.post(t, tt.path, tt.body)
			wantStatus(t, r, 400, tt.code)
			if !strings.Contains(r.body.Get("message").String(), tt.names) {
				t.Fatalf("the error does not name the limit %s: %s", tt.names, r.body.Raw)
			}
		})
	}
	t.Run("a batch of exactly 2500 messages is accepted", func(t *testing.T) {
		body := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"E"},`, 2500), ",") + `]}`
		wantStatus(t, f.post(t, "/v1/batch", body), 200, "")
	})
	t.Run("a body far over the limit is refused from its Content-Length", func(t *testing.T) {
		conn, err := net.Dial("tcp", listen(t, f))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(testKey+":") +
			"\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n"
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || gjson.GetBytes(raw, "code").String() != "request_too_large" || !strings.Contains(string(raw), "512000") {
			t.Fatalf("status %d body %s", resp.StatusCode, raw)
		}
	})
	if n := len(readAll(t, f.log, "events")); n != 2500 {
		t.Fatalf("stored %d messages, want only the 2500 of the accepted batch", n)
	}
}

func TestMalformedJSON(t *testing.T) {
	f := newFixture(t, Config{})
	for _, body := range []string{`{"batch":[`, `not json`, `[1,2]`, ``} {
		wantStatus(t, f.post(t, "/v1/batch", body), 400, "invalid_json")
		wantStatus(t, f.post(t, "/v1/track", body), 400, "invalid_json")
	}
	wantStatus(t, f.post(t, "/v1/batch", `{"batch":{}}`), 400, "invalid_batch")
}

func TestEnvelopeMerge(t *testing.T) {
	f := newFixture(t, Config{})
	body := `{
	  "batch": [
	    {"type":"track","userId":"u1","event":"E","messageId":"m1",
	     "context":{"ip":"9.9.9.9","library":{"name":"mine","version":"1"}},
	     "integrations":{"HubSpot":false}},
	    {"type":"identify","anonymousId":"a1","messageId":"m2","traits":{"Plan Type":"pro","plan type":"free","gone":null},"odd":[1,{"x":null}]}
	  ],
	  "context":{"library":{"name":"analytics-go","version":"3.0.0"},"locale":"en-GB"},
	  "integrations":{"All":true,"HubSpot":true},
	  "messageId":"batch-1",
	  "sentAt":"2026-11-22T11:59:59Z"
	}`
	wantStatus(t, f.post(t, "/v1/batch", body), 200, "")
	msgs := readAll(t, f.log, "events")
	byID := map[string]gjson.Result{}
	for _, m := range msgs {
		byID[m.Get("messageId").String()] = m
	}
	m1, m2 := byID["m1"], byID["m2"]
	checks := []struct {
		name string
		got  string
		want string
	}{
		{"the message's own context values win", m1.Get("context.library.name").String(), "mine"},
		{"the message's own ip wins", m1.Get("context.ip").String(), "9.9.9.9"},
		{"envelope context keys fill in", m1.Get("context.locale").String(), "en-GB"},
		{"the message's own integrations win", m1.Get("integrations.HubSpot").Raw, "false"},
		{"envelope integrations fill in", m1.Get("integrations.All").Raw, "true"},
		{"a message without context gets the envelope's", m2.Get("context.library.name").String(), "analytics-go"},
		{"a message without context gets the request ip", m2.Get("context.ip").String(), "0.0.0.0"},
		{"a message without integrations gets the envelope's", m2.Get("integrations.HubSpot").Raw, "true"},
		{"trait keys are kept byte for byte", m2.Get(`traits.Plan Type`).String() + "|" + m2.Get(`traits.plan type`).String(), "pro|free"},
		{"null traits are kept", m2.Get("traits.gone").Raw, "null"},
		{"unknown keys are kept as sent", m2.Get("odd").Raw, `[1,{"x":null}]`},
		{"the envelope sentAt serves messages without one", m2.Get("sentAt").String(), "2026-11-22T11:59:59Z"},
		{"the source name is recorded", m2.Get("_switchyard.source").String(), "web"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestTimestampsAndSkewCorrection(t *testing.T) {
	f := newFixture(t, Config{})
	// The client's clock is 1 hour behind: it stamped the call at 10:59:50 and
	// sent it at 10:59:59; we received it at 12:00:00.
	body := `{"batch":[
	  {"type":"track","userId":"u","event":"E","messageId":"skewed","timestamp":"2026-11-22T10:59:50Z"},
	  {"type":"track","userId":"u","event":"E","messageId":"own-sentAt","timestamp":"2026-11-22T11:59:58.500+01:00","sentAt":"2026-11-22T11:59:59+01:00"},
	  {"type":"track","userId":"u","event":"E","messageId":"no-timestamp"},
	  {"type":"track","userId":"u","event":"E","messageId":"nanos","timestamp":"2026-11-22T10:59:58.346734997Z"}
	],"sentAt":"2026-11-22T10:59:59Z"}`
	wantStatus(t, f.post(t, "/v1/batch", body), 200, "")
	byID := map[string]gjson.Result{}
	for _, m := range readAll(t, f.log, "events") {
		byID[m.Get("messageId").String()] = m
	}
	tests := []struct {
		id, field, want string
	}{
		{"skewed", "timestamp", "2026-11-22T11:59:51.000Z"},
		{"skewed", "originalTimestamp", "2026-11-22T10:59:50Z"},
		{"skewed", "receivedAt", "2026-11-22T12:00:00.000Z"},
		{"skewed", "sentAt", "2026-11-22T10:59:59Z"},
		{"own-sentAt", "timestamp", "2026-11-22T11:59:59.500Z"},
		{"own-sentAt", "sentAt", "2026-11-22T11:59:59+01:00"},
		{"no-timestamp", "timestamp", "2026-11-22T12:00:00.000Z"},
		{"no-timestamp", "originalTimestamp", "2026-11-22T12:00:00.000Z"},
		{"nanos", "timestamp", "2026-11-22T11:59:59.346Z"},
		{"nanos", "originalTimestamp", "2026-11-22T10:59:58.346734997Z"},
	}
	for _, tt := range tests {
		if got := byID[tt.id].Get(tt.field).String(); got != tt.want {
			t.Errorf("%s.%s = %q, want %q", tt.id, tt.field, got, tt.want)
		}
	}
}

func TestGeneratedMessageID(t *testing.T) {
	f := newFixture(t, Config{})
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"E"}`), 200, "")
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":""}`), 200, "")
	msgs := readAll(t, f.log, "events")
	if len(msgs) != 2 {
		t.Fatalf("stored %d, want 2", len(msgs))
	}
	a, b := msgs[0].Get("messageId").String(), msgs[1].Get("messageId").String()
	if len(a) != 36 || len(b) != 36 || a == b {
		t.Fatalf("generated ids %q and %q, want two distinct UUIDs", a, b)
	}
	r := f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":"`+strings.Repeat("m", 101)+`"}`)
	wantStatus(t, r, 400, "invalid_message")
	if !strings.Contains(r.body.Get("message").String(), "100") {
		t.Fatalf("the reason does not name the limit: %s", r.body.Raw)
	}
}

// The limit counts characters, as the spec's maxLength does, and a
// messageId that is not a string is refused rather than replaced.
func TestMessageIDMustBeAStringOfAtMost100Characters(t *testing.T) {
	f := newFixture(t, Config{})
	long := strings.Repeat("é", 100) // 200 bytes
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":"`+long+`"}`), 200, "")
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":null}`), 200, "")
	for _, id := range []string{`{}`, `[]`, `true`, `7`} {
		r := f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":`+id+`}`)
		wantStatus(t, r, 400, "invalid_message")
		if !strings.Contains(r.body.Get("message").String(), "messageId") {
			t.Fatalf("messageId %s: the reason does not name messageId: %s", id, r.body.Raw)
		}
	}
	msgs := readAll(t, f.log, "events")
	if len(msgs) != 2 || msgs[0].Get("messageId").String() != long || len(msgs[1].Get("messageId").String()) != 36 {
		t.Fatalf("stored %v, want the 100-character id and a generated one", msgs)
	}
}

func TestInvalidMessages(t *testing.T) {
	f := newFixture(t, Config{})
	t.Run("a single call with an invalid message gets 400 with the reason", func(t *testing.T) {
		r := f.post(t, "/v1/track", `{"userId":"u1"}`)
		wantStatus(t, r, 400, "invalid_message")
		if !strings.Contains(r.body.Get("message").String(), "event") {
			t.Fatalf("the reason does not mention event: %s", r.body.Raw)
		}
	})
	t.Run("an invalid message in a batch goes to the dead letters and the rest is stored", func(t *testing.T) {
		body := `{"batch":[
		  {"type":"track","userId":"u1","event":"Good","messageId":"good-1"},
		  {"type":"track","userId":"u1","messageId":"no-event"},
		  {"type":"identify","messageId":"no-ids"},
		  {"type":"purchase","userId":"u1","messageId":"bad-type"},
		  {"type":"track","userId":"u1","event":"E","messageId":"bad-time","timestamp":"yesterday"},
		  "not an object",
		  {"type":"track","userId":"u1","event":"Good","messageId":"good-2"}
		]}`
		wantStatus(t, f.post(t, "/v1/batch", body), 200, "")
		var stored []string
		for _, m := range readAll(t, f.log, "events") {
			stored = append(stored, m.Get("messageId").String())
		}
		if strings.Join(stored, ",") != "good-1,good-2" {
			t.Fatalf("stored %v, want good-1,good-2", stored)
		}
		reasons := map[string]string{}
		for _, d := range readAll(t, f.log, "dlq") {
			if d.Get("stage").String() != "gateway" || d.Get("source").String() != "web" || d.Get("failedAt").String() == "" {
				t.Errorf("dead letter lacks stage, source or failedAt: %s", d.Raw)
			}
			id := d.Get("message.messageId").String()
			if id == "" {
				id = d.Get("message").Raw
			}
			reasons[id] = d.Get("reason").String()
		}
		want := map[string]string{
			"no-event":        "event",
			"no-ids":          "anonymousId",
			"bad-type":        `unknown message type "purchase"`,
			"bad-time":        `timestamp "yesterday"`,
			`"not an object"`: "not a JSON object",
		}
		for id, part := range want {
			if !strings.Contains(reasons[id], part) {
				t.Errorf("dead letter for %s: reason %q, want it to contain %q", id, reasons[id], part)
			}
		}
		if len(reasons) != len(want) {
			t.Errorf("got %d dead letters, want %d: %v", len(reasons), len(want), reasons)
		}
	})
}

func TestDuplicateMessageIDsStoredOnce(t *testing.T) {
	now := received
	f := newFixture(t, Config{DedupeWindow: config.Duration(time.Hour), Now: func() time.Time { return now }})
	batch := `{"batch":[{"type":"track","userId":"u","event":"E","messageId":"dup-1"},{"type":"track","userId":"u","event":"E","messageId":"dup-1"},{"type":"track","userId":"u","event":"E","messageId":"dup-2"}]}`
	wantStatus(t, f.post(t, "/v1/batch", batch), 200, "")
	wantStatus(t, f.post(t, "/v1/batch", batch), 200, "") // the SDK retries the whole batch
	if n := len(readAll(t, f.log, "events")); n != 2 {
		t.Fatalf("stored %d, want 2 (dup-1 and dup-2 once each)", n)
	}
	// Another source may use the same id.
	wantStatus(t, f.do(t, newRequest("/v1/track", `{"userId":"u","event":"E","messageId":"dup-1"}`, basic("wk_backend:"))), 200, "")
	if n := len(readAll(t, f.log, "events")); n != 3 {
		t.Fatalf("stored %d, want 3: the same id from another source is another message", n)
	}
	// After the window the id is new again.
	now = now.Add(time.Hour + time.Second)
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"E","messageId":"dup-1"}`), 200, "")
	if n := len(readAll(t, f.log, "events")); n != 4 {
		t.Fatalf("stored %d, want 4 after the window", n)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, Config{CORSOrigins: []string{"https://shop.example"}})
	req := httptest.NewRequest(http.MethodOptions, "/v1/t", nil)
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	r := f.do(t, req)
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("preflight from an allowed origin: status %d, allow-origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
	req = httptest.NewRequest(http.MethodOptions, "/v1/t", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if r := f.do(t, req); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("an origin outside the list was allowed: %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

// closedLog is a log that can no longer take writes.
func closedLog(t *testing.T) queue.Log {
	log, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	log.Close()
	return log
}

func TestUnavailableLogGets503NeverOK(t *testing.T) {
	f := newFixtureWithLog(t, Config{}, closedLog(t))
	r := f.post(t, "/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"E"}]}`)
	wantStatus(t, r, 503, "unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	ready := f.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if ready.status != 503 {
		t.Fatalf("/readyz answered %d with a closed log", ready.status)
	}
	if h := f.do(t, httptest.NewRequest(http.MethodGet, "/healthz", nil)); h.status != 200 {
		t.Fatalf("/healthz answered %d", h.status)
	}
}

// blockingLog holds every Publish until release is closed.
type blockingLog struct {
	queue.Log
	entered chan struct{}
	release chan struct{}
}

func (b *blockingLog) Publish(ctx context.Context, msgs ...queue.Message) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Log.Publish(ctx, msgs...)
}

func TestOverloadIsShedWith429(t *testing.T) {
	base, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	blocking := &blockingLog{Log: base, entered: make(chan struct{}, 1), release: make(chan struct{})}
	f := newFixtureWithLog(t, Config{MaxInFlight: 1}, blocking)
	var wg sync.WaitGroup
	wg.Add(1)
	var first response
	go func() {
		defer wg.Done()
		first = f.post(t, "/v1/track", `{"userId":"u","event":"first"}`)
	}()
	<-blocking.entered
	r := f.post(t, "/v1/track", `{"userId":"u","event":"second"}`)
	wantStatus(t, r, 429, "overloaded")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	close(blocking.release)
	wg.Wait()
	wantStatus(t, first, 200, "")
	if msgs := readAll(t, base, "events"); len(msgs) != 1 || msgs[0].Get("event").String() != "first" {
		t.Fatalf("stored %v, want only the first", msgs)
	}
}

func TestMessagesOfOneUserShareAPartition(t *testing.T) {
	f := newFixture(t, Config{})
	var batch []string
	for i := 0; i < 50; i++ {
		batch = append(batch, fmt.Sprintf(`{"type":"track","userId":"user-%d","event":"E%d"}`, i%5, i))
	}
	wantStatus(t, f.post(t, "/v1/batch", `{"batch":[`+strings.Join(batch, ",")+`]}`), 200, "")
	ctx := context.Background()
	r, err := f.log.Read(ctx, "events", queue.Position{Kind: queue.First})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	partitionOf := map[string]int{}
	last := map[string]int{}
	for i := 0; i < 50; i++ {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		user := string(m.Key)
		if p, ok := partitionOf[user]; ok && p != m.Partition {
			t.Fatalf("%s in partitions %d and %d", user, p, m.Partition)
		}
		partitionOf[user] = m.Partition
		var n int
		fmt.Sscanf(gjson.GetBytes(m.Value, "event").String(), "E%d", &n)
		if prev, ok := last[user]; ok && n < prev {
			t.Fatalf("%s: E%d after E%d", user, n, prev)
		}
		last[user] = n
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		key  string
	}{
		{"no sources", Config{}, "sources"},
		{"a source without keys", Config{Sources: []Source{{Name: "a"}}}, "sources[0].write_keys"},
		{"a key used twice", Config{Sources: []Source{{Name: "a", WriteKeys: []string{"k"}}, {Name: "b", WriteKeys: []string{"k"}}}}, "sources[1].write_keys[0]"},
		{"the same topic twice", Config{Sources: []Source{{Name: "a", WriteKeys: []string{"k"}}}, DLQTopic: "events"}, "log.dlq_topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.key) {
				t.Fatalf("error %v, want it to start with %s", err, tt.key)
			}
		})
	}
}

// TestRoutesAloneMakeAGateway checks that a gateway without write-key
// sources serves its extra routes, with the gateway's 405 for other methods,
// and refuses Tracking API calls for want of a key.
func TestRoutesAloneMakeAGateway(t *testing.T) {
	f := newFixture(t, Config{Sources: []Source{}, Routes: []Route{webhookRoute}})
	if r := f.do(t, newRequest("/hubspot/webhooks/crm-in", `[]`, "")); r.status != 200 || !r.body.Get("success").Bool() {
		t.Fatalf("the route answered %d %s", r.status, r.body.Raw)
	}
	if r := f.do(t, httptest.NewRequest(http.MethodGet, "/hubspot/webhooks/other", nil)); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET on the route: %d, Allow %q; want 405, Allow POST", r.status, r.header.Get("Allow"))
	}
	if r := f.do(t, httptest.NewRequest("QUERY", "/hubspot/webhooks/other", nil)); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("QUERY on the route: %d, Allow %q; want 405, Allow POST", r.status, r.header.Get("Allow"))
	}
	if r := f.do(t, httptest.NewRequest("QUERY", "/hubspot/webhooks/other/deeper", nil)); r.status != 404 {
		t.Fatalf("QUERY under the route: %d, want 404", r.status)
	}
	if r := f.do(t, newRequest("/v1/track", `{"userId":"u","event":"E"}`, basic(testKey))); r.status != 401 {
		t.Fatalf("a track without sources got %d, want 401", r.status)
	}
}

func TestRouteErrors(t *testing.T) {
	h := webhookRoute.Handler
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"no method", []Route{{Path: "/x", Handler: h}}, "method"},
		{"a relative path", []Route{{Method: "POST", Path: "x", Handler: h}}, "the path"},
		{"under the Tracking API", []Route{{Method: "POST", Path: "/v1/x", Handler: h}}, "the path"},
		{"no handler", []Route{{Method: "POST", Path: "/x"}}, "no handler"},
		{"served twice", []Route{{Method: "POST", Path: "/x", Handler: h}, {Method: "POST", Path: "/X/", Handler: h}}, "served twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Routes: tt.routes}.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestStoredMessagesAreValidJSON(t *testing.T) {
	f := newFixture(t, Config{})
	wantStatus(t, f.post(t, "/v1/identify", `{"userId":"ü\"s\u0000er","traits":{"emoji":"🎉"},"context":{}}`), 200, "")
	stored := readAll(t, f.log, "events")
	if len(stored) != 1 {
		t.Fatalf("%d messages stored, want 1", len(stored))
	}
	for _, m := range stored {
		if !json.Valid([]byte(m.Raw)) {
			t.Fatalf("stored invalid JSON: %s", m.Raw)
		}
		if m.Get("userId").String() != "ü\"s\x00er" {
			t.Fatalf("userId changed: %s", m.Get("userId").Raw)
		}
	}
}

// fullLog refuses every Publish as a log whose disk is full does.
type fullLog struct{ queue.Log }

func (fullLog) Publish(context.Context, ...queue.Message) error {
	return fmt.Errorf("%w: %w: 1024 bytes free", queue.ErrUnavailable, queue.ErrFull)
}

func TestFullLogGets503NamingTheDisk(t *testing.T) {
	f := newFixtureWithLog(t, Config{}, fullLog{closedLog(t)})
	r := f.post(t, "/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"E"}]}`)
	wantStatus(t, r, 503, "log_full")
	if !strings.Contains(r.body.Get("message").String(), "disk is full") {
		t.Fatalf("503 body does not say the disk is full: %s", r.body.Raw)
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

// heldLog fails its first Publish but, like a log whose write is still in
// flight when the caller gives up, keeps the messages it was given; later
// Publishes succeed and are copied.
type heldLog struct {
	queue.Log
	calls         int
	held, written []queue.Message
}

func (l *heldLog) Publish(_ context.Context, msgs ...queue.Message) error {
	l.calls++
	if l.calls == 1 {
		l.held = msgs
		return fmt.Errorf("%w: timed out", queue.ErrUnavailable)
	}
	for _, m := range msgs {
		m.Value = bytes.Clone(m.Value)
		l.written = append(l.written, m)
	}
	return nil
}

// TestAFailedPublishsBytesAreNotReused: the gateway reuses a request's
// buffer for later requests only once the log has its messages; after a
// failed publish the log may still be writing from it, so later requests
// must not write over it.
func TestAFailedPublishsBytesAreNotReused(t *testing.T) {
	log := &heldLog{}
	f := newFixtureWithLog(t, Config{}, log)
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"first","event":"First","messageId":"m-1","properties":{"padding":"`+strings.Repeat("p", 200)+`"}}`), 503, "unavailable")
	held := string(log.held[0].Value)
	for i := range 20 {
		r := f.post(t, "/v1/track", fmt.Sprintf(`{"userId":"later-%d","event":"Later %d","messageId":"m-later-%d"}`, i, i, i))
		if r.status != 200 {
			t.Fatalf("request %d: status %d: %s", i, r.status, r.body.Raw)
		}
	}
	if got := string(log.held[0].Value); got != held {
		t.Fatalf("the failed publish's message changed after later requests:\n was %s\n now %s", held, got)
	}
	if len(log.written) != 20 {
		t.Fatalf("the log has %d messages; want 20", len(log.written))
	}
	for i, m := range log.written {
		if !strings.Contains(string(m.Value), fmt.Sprintf(`"later-%d"`, i)) {
			t.Fatalf("message %d is %s", i, m.Value)
		}
	}
}

// hangingLog never stores anything: each Publish waits for its context to
// end and reports the deadline it had.
type hangingLog struct {
	queue.Log
	deadlines chan time.Time
}

func (h *hangingLog) Publish(ctx context.Context, msgs ...queue.Message) error {
	deadline, _ := ctx.Deadline()
	h.deadlines <- deadline
	<-ctx.Done()
	return ctx.Err()
}

func TestPublishThatOutlastsTheTimeoutIsAnswered503(t *testing.T) {
	base, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	hanging := &hangingLog{Log: base, deadlines: make(chan time.Time, 2)}
	const timeout = 300 * time.Millisecond
	f := newFixtureWithLog(t, Config{PublishTimeout: config.Duration(timeout)}, hanging)
	for i := 0; i < 2; i++ {
		start := time.Now()
		r := f.post(t, "/v1/track", `{"userId":"u","event":"e"}`)
		took := time.Since(start)
		wantStatus(t, r, 503, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		deadline := <-hanging.deadlines
		if left := deadline.Sub(start); left < timeout || left > timeout+deadlineStep+100*time.Millisecond {
			t.Fatalf("the publish had %s to run, want %s to %s more", left, timeout, deadlineStep)
		}
		if took < timeout {
			t.Fatalf("answered after %s, before the publish timeout of %s", took, timeout)
		}
	}
}

func TestPublishesOfOneStepShareAContext(t *testing.T) {
	d := publishDeadlines{timeout: time.Second}
	start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	first := d.context(start)
	if d.context(start.Add(deadlineStep-time.Nanosecond)) != first {
		t.Fatal("a publish within the step got a context of its own")
	}
	next := d.context(start.Add(deadlineStep))
	if next == first {
		t.Fatal("a publish after the step got the step's context")
	}
	if got, _ := next.Deadline(); !got.Equal(start.Add(deadlineStep + deadlineStep + time.Second)) {
		t.Fatalf("deadline %s, want the step's end plus the timeout", got)
	}
}
