package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
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
		out, err := gw.prepare(gjson.Parse(msg), &req)
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
