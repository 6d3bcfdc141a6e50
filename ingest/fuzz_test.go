package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

// FuzzDecodeBody checks that decoding never returns more than the limit and
// that gzip bodies round-trip.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"batch":[]}`), false, 64)
	f.Add([]byte(`{"batch":[{"type":"track"}]}`), true, 16)
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00}, false, 100)
	f.Fuzz(func(t *testing.T, body []byte, compress bool, limit int) {
		if limit <= 0 || limit > 1<<20 {
			return
		}
		raw, encoding := body, ""
		if compress {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			raw, encoding = b.Bytes(), "gzip"
		}
		out, err := decodeBody([]byte(encoding), raw, limit)
		if err != nil {
			if len(body) <= limit {
				t.Fatalf("a %d-byte body under the %d limit was refused: %v", len(body), limit, err)
			}
			return
		}
		if len(out) > limit {
			t.Fatalf("decoded %d bytes over the %d limit", len(out), limit)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("decoded %q, want %q", out, body)
		}
		// Arbitrary bytes declared as gzip must fail cleanly or stay in the limit.
		if out, err := decodeBody([]byte("gzip"), body, limit); err == nil && len(out) > limit {
			t.Fatalf("raw bytes as gzip decoded %d bytes over the limit", len(out))
		}
	})
}

// FuzzPrepare checks the envelope merge and enrichment: whatever the message
// and envelope, an accepted message is valid JSON, keeps the message's own
// context and integrations values, and carries the gateway's fields.
func FuzzPrepare(f *testing.F) {
	f.Add(`{"type":"track","userId":"u","event":"E","context":{"ip":"1.2.3.4"}}`, `{"library":{"name":"x"}}`, `{"All":false}`, `2026-11-22T10:00:00Z`)
	f.Add(`{"type":"identify","anonymousId":"a","traits":{"a b":null},"timestamp":"2026-11-22T10:00:00.123456789+02:00"}`, `null`, `{}`, ``)
	f.Add(`{"type":"group","userId":1,"groupId":"g","context":"bad"}`, `{"ip":"x"}`, `[]`, `nope`)
	gw, err := New(Config{Sources: []Source{{Name: "s", WriteKeys: []string{"k"}}}}, nil, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg, envContext, envIntegrations, envSentAt string) {
		if !gjson.Valid(msg) || !gjson.Valid(envContext) || !gjson.Valid(envIntegrations) {
			return
		}
		req := request{source: "s", receivedAt: received, ip: "127.0.0.1",
			context: gjson.Parse(envContext), integrations: gjson.Parse(envIntegrations)}
		if envSentAt != "" {
			quoted, _ := json.Marshal(envSentAt)
			req.sentAt = gjson.ParseBytes(quoted)
		}
		out, err := prepareOne(gw, gjson.Parse(msg), &req)
		if err != nil {
			return
		}
		if !json.Valid(out.value) {
			t.Fatalf("invalid JSON out of %s: %s", msg, out.value)
		}
		got := gjson.ParseBytes(out.value)
		in := gjson.Parse(msg)
		for _, obj := range []string{"context", "integrations"} {
			in.Get(obj).ForEach(func(k, v gjson.Result) bool {
				if got.Get(obj+"."+gjson.Escape(k.Str)).Raw != v.Raw {
					t.Fatalf("%s.%s changed from %s to %s", obj, k.Str, v.Raw, got.Get(obj+"."+gjson.Escape(k.Str)).Raw)
				}
				return true
			})
		}
		for _, field := range []string{"messageId", "timestamp", "originalTimestamp", "receivedAt", "_switchyard.source"} {
			if !got.Get(field).Exists() {
				t.Fatalf("%s missing from %s", field, out.value)
			}
		}
		if got.Get("writeKey").Exists() {
			t.Fatalf("writeKey kept in %s", out.value)
		}
	})
}

// capturingLog records what the gateway publishes.
type capturingLog struct {
	queue.Log
	msgs []queue.Message
}

func (l *capturingLog) Publish(_ context.Context, msgs ...queue.Message) error {
	// Publish holds nothing of msgs once it returns, as a log may not.
	for _, m := range msgs {
		m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
		headers := make([]queue.Header, len(m.Headers))
		for i, h := range m.Headers {
			headers[i] = queue.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
		}
		m.Headers = headers
		l.msgs = append(l.msgs, m)
	}
	return nil
}

// FuzzStoredMessagesReadAlike posts any body to a single-call or the batch
// route and checks that every message the gateway stores, accepted or dead
// letter, is UTF-8 with no key repeated in any object, and that gjson and
// encoding/json read the same value from it.
func FuzzStoredMessagesReadAlike(f *testing.F) {
	f.Add(false, []byte("{\"userId\":\"u\xff\xfe\",\"event\":\"e\"}"))
	f.Add(false, []byte(`{"userId":"u","userId":"v","event":"e","properties":{"a":[{"b":1,"b":2}]}}`))
	f.Add(true, []byte(`{"batch":[{"type":"track","userId":"u","event":"e","user\u0049d":"v"},{"type":"track"}],"context":{"a":1,"a":"\ud800"}}`))
	f.Add(true, []byte("{\"batch\":[{\"type\":\"identify\",\"userId\":\"\\u00e9\xc3\",\"traits\":{\"n\":1e400}}],\"batch\":[]}"))
	f.Add(true, []byte(`{"batch":[{"type":"track","userId":"u","event":"e","integrations":{"All":false}},{"type":"track","userId":"v","event":"e"}],"integrations":{"hook":true}}`))
	f.Add(false, []byte(`{"anonymousId":"a","event":"e","integrations":null,"messageId":"m-1"}`))
	log := &capturingLog{}
	gw, err := New(Config{Sources: []Source{{Name: "s", WriteKeys: []string{"k"}}}, Now: func() time.Time { return received }},
		log, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, batch bool, body []byte) {
		path := "/v1/track"
		if batch {
			path = "/v1/batch"
		}
		log.msgs = log.msgs[:0]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.SetBasicAuth("k", "")
		resp, err := gw.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, m := range log.msgs {
			if !utf8.Valid(m.Value) {
				t.Fatalf("stored bytes that are not UTF-8: %q", m.Value)
			}
			viaJSON, err := decodeStrictly(m.Value)
			if err != nil {
				t.Fatalf("encoding/json reads %q differently: %v", m.Value, err)
			}
			if viaGJSON := gjsonValue(gjson.ParseBytes(m.Value)); !reflect.DeepEqual(viaJSON, viaGJSON) {
				t.Fatalf("%q reads as\n%#v with encoding/json,\n%#v with gjson", m.Value, viaJSON, viaGJSON)
			}
			if m.Topic == "events" {
				checkEventHeader(t, m)
			}
		}
	})
}

// checkEventHeader checks that a stored event's schemas.EventHeader and its
// key say what the event's fields do.
func checkEventHeader(t *testing.T, m queue.Message) {
	t.Helper()
	raw, ok := queue.HeaderValue(m.Headers, schemas.EventHeaderKey)
	if !ok {
		t.Fatalf("%s: no event header", m.Value)
	}
	h, err := schemas.ParseEventHeader(raw)
	if err != nil {
		t.Fatalf("%s: event header %x: %v", m.Value, raw, err)
	}
	ev := schemas.NewEvent(m.Value)
	if h.MessageID != ev.MessageID() || h.Source != ev.Source() || !h.ReceivedAt.Equal(ev.ReceivedAt()) ||
		h.HasIntegrations != ev.Get("integrations").Exists() || string(m.Key) != ev.Key() {
		t.Fatalf("%s: event header %+v and key %q; the fields say messageId %q, source %q, receivedAt %v, integrations %s, key %q",
			m.Value, h, m.Key, ev.MessageID(), ev.Source(), ev.ReceivedAt(), ev.Get("integrations").Raw, ev.Key())
	}
}

// decodeStrictly reads one JSON value with encoding/json, keeping numbers as
// written, and fails on a key repeated in an object.
func decodeStrictly(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value: %v", err)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := key.(string)
			if _, ok := obj[k]; ok {
				return nil, fmt.Errorf("the key %q is repeated", k)
			}
			if obj[k], err = decodeValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token()
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return tok, nil
}

// gjsonValue is r as decodeStrictly returns it, read with gjson.
func gjsonValue(r gjson.Result) any {
	switch {
	case r.IsObject():
		obj := map[string]any{}
		r.ForEach(func(k, v gjson.Result) bool {
			obj[k.Str] = gjsonValue(v)
			return true
		})
		return obj
	case r.IsArray():
		arr := []any{}
		r.ForEach(func(_, v gjson.Result) bool {
			arr = append(arr, gjsonValue(v))
			return true
		})
		return arr
	}
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return json.Number(r.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	}
	return nil
}

// FuzzScanJSON holds scanBody to encoding/json: the same texts are valid,
// and a key repeated in an object is found as a decoder walking the tokens
// finds it. The text passes through validUTF8 first, as every body does in
// the gateway: encoding/json reads each invalid byte as U+FFFD, so two keys
// of different invalid bytes are one key to it.
func FuzzScanJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e\u00e9\n"}}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`,
		`[1,-0.5e+3,0,-0]`, `{"a\u0062":1,"ab":2}`, `01`, `1.`, `{"a":1,}`, `[1 2]`, `"\x01"`, `tru`, ` {} `,
		`{"a":"\ud800"}`, `-`, `1e`, `{"a" 1}`, `[`, `{"":{"":{}}}`,
		`{"batch":[{"type":"track","n":-1.5e3,"s":"a\"b","o":{"x":[1]}},[],3,{}],"context":{"k":true}}`,
		`{"writeKey":"k","batch":[ { "a" : null } , "x" ]}`, ` {"a\u0062":{"batch":[{"c":1}]}} `,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		text = string(validUTF8([]byte(text)))
		valid, repeated, tooDeep := scanBody(text, false, &scanned{})
		if tooDeep {
			return
		}
		if want := json.Valid([]byte(text)); valid != want {
			t.Fatalf("scanBody says valid %v, encoding/json %v: %q", valid, want, text)
		}
		if valid {
			if want := repeatsAKey(t, text); repeated != want {
				t.Fatalf("scanBody says a key repeats %v, the decoder %v: %q", repeated, want, text)
			}
		}
		if valid && !repeated {
			checkScanBody(t, text)
		}
	})
}

// checkScanBody holds what scanBody collects to what gjson reads of the
// same text: the root's fields, the batch's messages and their fields.
func checkScanBody(t *testing.T, text string) {
	var got scanned
	scanBody(text, true, &got)
	root := gjson.Parse(text)
	if got.rootObject != root.IsObject() {
		t.Fatalf("rootObject %v, gjson says %v: %q", got.rootObject, root.IsObject(), text)
	}
	if !root.IsObject() {
		return
	}
	fieldsOf := func(v gjson.Result) []string {
		var out []string
		v.ForEach(func(k, v gjson.Result) bool {
			out = append(out, fmt.Sprintf("%s|%s|%d|%s|%s|%v", k.Raw, k.Str, v.Type, v.Raw, v.Str, v.Num))
			return true
		})
		return out
	}
	collected := func(fs []schemas.Field) []string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%s|%s|%d|%s|%s|%v", f.RawKey, f.Key, f.Value.Type, f.Value.Raw, f.Value.Str, f.Value.Num))
		}
		return out
	}
	if w, g := fieldsOf(root), collected(got.root); !reflect.DeepEqual(w, g) {
		t.Fatalf("root fields\n got %q\nwant %q\nof %q", g, w, text)
	}
	batch := root.Get("batch")
	if !batch.IsArray() {
		if len(got.messages) != 0 {
			t.Fatalf("%d messages of no batch array: %q", len(got.messages), text)
		}
		return
	}
	want := batch.Array()
	if len(want) != len(got.messages) {
		t.Fatalf("%d messages, gjson reads %d: %q", len(got.messages), len(want), text)
	}
	for i, m := range got.messages {
		if m.value.Raw != want[i].Raw || m.value.IsObject() != want[i].IsObject() {
			t.Fatalf("message %d is %q, gjson reads %q", i, m.value.Raw, want[i].Raw)
		}
		if m.value.IsObject() {
			if w, g := fieldsOf(want[i]), collected(m.fields); !reflect.DeepEqual(w, g) {
				t.Fatalf("message %d's fields\n got %q\nwant %q\nof %q", i, g, w, text)
			}
		}
	}
}

// repeatsAKey walks valid JSON text's tokens and reports whether an object
// has a key twice.
func repeatsAKey(t *testing.T, text string) bool {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	// valueDone marks the value of the innermost object's current key read.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatalf("decoding valid JSON %q: %v", text, err)
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch {
		case tok == json.Delim('}') || tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		case top != nil && top.keys != nil && top.wantKey:
			key := tok.(string)
			if top.keys[key] {
				return true
			}
			top.keys[key], top.wantKey = true, false
		case tok == json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
		case tok == json.Delim('['):
			stack = append(stack, &frame{})
		default:
			valueDone()
		}
	}
}

// prepareOne prepares one message read on its own, as scanBody would have
// collected its fields.
func prepareOne(gw *Gateway, item gjson.Result, req *request) (prepared, error) {
	var fields []schemas.Field
	item.ForEach(func(k, v gjson.Result) bool {
		fields = append(fields, schemas.Field{RawKey: k.Raw, Key: k.Str, Value: v})
		return true
	})
	return gw.prepare(item, fields, req)
}
