package ingest

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/schemas"
	"github.com/tidwall/gjson"
)

func TestDeadLettersHoldNoWriteKey(t *testing.T) {
	f := newFixture(t, Config{})
	body := `{"writeKey":"` + testKey + `","batch":[
	  {"type":"track","userId":"u1","event":"Good","messageId":"good","writeKey":"` + testKey + `"},
	  {"type":"track","userId":"u1","messageId":"no-event","writeKey":"` + testKey + `"},
	  {"type":"identify","messageId":"no-ids","writeKey":"wk_backend","traits":{"plan":"pro"}}
	]}`
	wantStatus(t, f.do(t, newRequest("/v1/batch", body, "")), 200, "")
	letters := readAll(t, f.log, "dlq")
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	for _, d := range letters {
		if strings.Contains(d.Raw, testKey) || strings.Contains(d.Raw, "wk_backend") || d.Get("message.writeKey").Exists() {
			t.Fatalf("a dead letter holds a write key: %s", d.Raw)
		}
	}
	if got := letters[0].Get("message.traits.plan").String() + letters[1].Get("message.traits.plan").String(); got != "pro" {
		t.Fatalf("the dead letters lost the rest of the message: %s, %s", letters[0].Raw, letters[1].Raw)
	}
	for _, m := range readAll(t, f.log, "events") {
		if strings.Contains(m.Raw, testKey) {
			t.Fatalf("a stored message holds the write key: %s", m.Raw)
		}
	}
}

func TestInvalidUTF8BecomesTheReplacementCharacter(t *testing.T) {
	f := newFixture(t, Config{})
	wantStatus(t, f.post(t, "/v1/track", "{\"userId\":\"u\xff\xfe\",\"event\":\"e\",\"properties\":{\"n\xc3\":\"caf\xc3\xa9\"}}"), 200, "")
	body := "{\"batch\":[{\"type\":\"track\",\"userId\":\"bad\",\"messageId\":\"m\xff\"}],\"context\":{\"app\":\"\xed\xa0\x80\"}}"
	wantStatus(t, f.post(t, "/v1/batch", body), 200, "")

	stored := readAll(t, f.log, "events")
	if len(stored) != 1 {
		t.Fatalf("%d messages stored, want 1", len(stored))
	}
	m := stored[0]
	if got := m.Get("userId").String(); got != "u\uFFFD" {
		t.Fatalf("userId %q, want %q", got, "u\uFFFD")
	}
	if got := m.Get("properties.n\uFFFD").String(); got != "café" {
		t.Fatalf("properties %s: the key's bad byte was not replaced or the valid value changed", m.Get("properties").Raw)
	}
	letters := readAll(t, f.log, "dlq")
	if len(letters) != 1 || letters[0].Get("message.messageId").String() != "m\uFFFD" {
		t.Fatalf("dead letters %v, want the batch message with messageId m\uFFFD", letters)
	}
	for _, v := range append(stored, letters...) {
		if !utf8.ValidString(v.Raw) {
			t.Fatalf("stored bytes that are not UTF-8: %q", v.Raw)
		}
		var decoded any
		if err := json.Unmarshal([]byte(v.Raw), &decoded); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", v.Raw, err)
		}
	}
}

func TestRepeatedKeysKeepTheirLastValue(t *testing.T) {
	f := newFixture(t, Config{})
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","userId":"v","event":"e","properties":{"a":1,"b":[{"x":1,"x":{"y":1,"y":2}}],"a":2},"user\u0049d":"w"}`), 200, "")
	body := `{"batch":[{"type":"track","userId":"u2","event":"e","messageId":"m2"}],
	  "context":{"app":{"name":"first"},"app":{"name":"last"}},"batch":[{"type":"track","userId":"ignored","event":"e"}]}`
	wantStatus(t, f.post(t, "/v1/batch", body), 200, "")

	stored := readAll(t, f.log, "events")
	if len(stored) != 2 {
		t.Fatalf("%d messages stored, want 2: %v", len(stored), stored)
	}
	byUser := map[string]string{}
	for _, m := range stored {
		byUser[m.Get("userId").String()] = m.Raw
		if strings.Count(m.Raw, `"userId"`)+strings.Count(m.Raw, `"user\u0049d"`) != 1 {
			t.Fatalf("userId kept more than once: %s", m.Raw)
		}
	}
	single := byUser["w"]
	if single == "" {
		t.Fatalf("the last userId did not win: %v", byUser)
	}
	want := `"properties":{"a":2,"b":[{"x":{"y":2}}]}`
	if !strings.Contains(single, want) {
		t.Fatalf("stored %s, want it to hold %s", single, want)
	}
	if byUser["ignored"] == "" {
		t.Fatalf("the last batch array was not the one stored: %v", byUser)
	}
	if strings.Contains(byUser["ignored"], "first") || !strings.Contains(byUser["ignored"], `"app":{"name":"last"}`) {
		t.Fatalf("the envelope's repeated context key: %s", byUser["ignored"])
	}
}

func TestBodiesNestedTooDeeplyAreRefused(t *testing.T) {
	f := newFixture(t, Config{})
	// nested returns properties whose innermost object is at depth 1+n.
	nested := func(n int) string {
		return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
	}
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"e","properties":`+nested(maxDepth-1)+`}`), 200, "")
	r := f.post(t, "/v1/track", `{"userId":"u","event":"e","properties":`+nested(maxDepth)+`}`)
	wantStatus(t, r, 400, "invalid_json")
	if !strings.Contains(r.body.Get("message").String(), "64 levels") {
		t.Fatalf("the error does not name the limit: %s", r.body.Raw)
	}
	r = f.post(t, "/v1/batch", `{"batch":[`+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)+`]}`)
	wantStatus(t, r, 400, "invalid_json")
}

// timeValue writes what time.Format writes, for any time.
func TestTimeValueWritesTimeLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		at := time.Unix(rng.Int64N(400_000_000_000)-100_000_000_000, rng.Int64N(1e9)).In(time.FixedZone("x", int(rng.Int64N(86400))-43200))
		got := timeValue(at)
		want := at.UTC().Format(timeLayout)
		if got.Str != want || got.Raw != quote(want) || got.Type != gjson.String {
			t.Fatalf("timeValue(%v) = %q (raw %s), want %q", at, got.Str, got.Raw, want)
		}
	}
}

// TestTheClientIPIsAddedOnlyWhereNoIPIs: the gateway adds the client's ip to
// a context that has none, however the context writes its keys, and keeps
// one the message or its batch gives, escaped or not.
func TestTheClientIPIsAddedOnlyWhereNoIPIs(t *testing.T) {
	ip := &schemas.Field{RawKey: `"ip"`, Key: "ip", Value: stringValue("1.2.3.4")}
	for _, tc := range []struct{ own, fallback, want string }{
		{`{"library":{"name":"x"}}`, ``, `1.2.3.4`},
		{`{"ip":"9.9.9.9"}`, ``, `9.9.9.9`},
		{`{"i\u0070":"9.9.9.9"}`, ``, `9.9.9.9`},
		{`{"note":"ip","page":{"ip":"inner"}}`, ``, `1.2.3.4`},
		{`{"a":1}`, `{"ip":"8.8.8.8"}`, `8.8.8.8`},
		{`{"a":"\\"}`, `{"b":2}`, `1.2.3.4`},
		{``, `{"\u0069p":"7.7.7.7"}`, `7.7.7.7`},
	} {
		own, fallback := gjson.Parse(tc.own), gjson.Parse(tc.fallback)
		if tc.own == "" {
			own = gjson.Result{}
		}
		if tc.fallback == "" {
			fallback = gjson.Result{}
		}
		got := mergeObject(own, fallback, ip)
		var ips []string
		got.ForEach(func(k, v gjson.Result) bool {
			if k.Str == "ip" {
				ips = append(ips, v.Str)
			}
			return true
		})
		if len(ips) != 1 || ips[0] != tc.want {
			t.Errorf("own %s, batch %s: merged %s, ips %q; want one, %q", tc.own, tc.fallback, got.Raw, ips, tc.want)
		}
	}
}
