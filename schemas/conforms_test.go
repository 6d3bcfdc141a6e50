package schemas

import (
	"testing"

	"github.com/tidwall/gjson"
)

// The messages SDKs send must take the fast path, or it is dead weight.
func TestConformsAcceptsWhatSDKsSend(t *testing.T) {
	for _, msg := range []string{
		`{"type":"identify","userId":"u1","messageId":"m","timestamp":"2026-11-22T19:01:32.346734997Z","traits":{"email":"a@b.c"},"context":{"library":{"name":"analytics-go"}},"receivedAt":"2026-11-22T19:01:33.000Z","_switchyard":{"source":"web"}}`,
		`{"type":"track","anonymousId":"a","userId":null,"event":"Order Completed","properties":{},"integrations":{},"sentAt":"2026-11-22T20:01:32.346+01:00"}`,
		`{"type":"page","userId":"u","name":"Pricing","category":null,"properties":{"url":"https://x"}}`,
		`{"type":"screen","userId":"u","name":"Home"}`,
		`{"type":"group","userId":"u","groupId":"acme","traits":{}}`,
		`{"type":"alias","userId":"u","previousId":"anon"}`,
	} {
		if !conforms(gjson.Parse(msg)) {
			t.Errorf("the fast path refused %s", msg)
		}
	}
}

// FuzzConformsNeverAcceptsWhatTheSchemaRefuses holds the fast path to the
// schemas: whenever conforms says yes, the full schema validation must too.
func FuzzConformsNeverAcceptsWhatTheSchemaRefuses(f *testing.F) {
	v, err := NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"type":"track","userId":"u","event":"E","timestamp":"2026-11-22T19:01:32Z"}`,
		`{"type":"alias","userId":"u","previousId":"p"}`,
		`{"type":"group","anonymousId":"a","groupId":"g","context":{}}`,
		`{"type":"page","userId":"u","name":null,"timestamp":"2026-02-30T10:00:00+24:00"}`,
		`{"type":"identify","userId":"u","messageId":"ééééééééééééééééééééééééééééééééééééééééééééééééééééé"}`,
		`{"type":"screen","userId":"u","sentAt":"2026-12-31T23:59:60.123456789-23:59"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if !gjson.Valid(msg) {
			return
		}
		parsed := gjson.Parse(msg)
		if parsed.IsObject() {
			var fields []Field
			parsed.ForEach(func(k, v gjson.Result) bool {
				fields = append(fields, Field{RawKey: k.Raw, Key: k.Str, Value: v})
				return true
			})
			if conformsFields(fields) != conforms(parsed) {
				t.Fatalf("conformsFields says %v, conforms %v: %s", conformsFields(fields), conforms(parsed), msg)
			}
		}
		if conforms(parsed) {
			if err := v.validateWithSchema(parsed); err != nil {
				t.Fatalf("the fast path accepted what the schema refuses (%v): %s", err, msg)
			}
		}
	})
}

func TestIsDateTime(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"2026-11-22T19:01:32Z", true},
		{"2026-11-22T19:01:32.5Z", true},
		{"2026-11-22T19:01:32.346734997Z", true},
		{"2026-11-22T19:01:32+05:30", true},
		{"2026-11-22T19:01:32.0000000001Z", false},
		{"2026-11-22t19:01:32Z", false},
		{"2026-02-30T19:01:32Z", false},
		{"2026-11-22T24:01:32Z", false},
		{"2026-11-22T19:01:32+24:00", false},
		{"2026-11-22T19:01:32", false},
		{"2026-11-22 19:01:32Z", false},
		{"yesterday", false},
	}
	for _, tt := range tests {
		if got := isDateTime(tt.s); got != tt.want {
			t.Errorf("isDateTime(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
