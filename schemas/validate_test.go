package schemas

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		msg    string
		reason string // substring of the reason; "" means valid
	}{
		{"an identify with a userId is valid", `{"type":"identify","userId":"u1","traits":{"Plan Type":"pro","x":null}}`, ""},
		{"an identify with only an anonymousId is valid", `{"type":"identify","anonymousId":"a1"}`, ""},
		{"a numeric userId is valid", `{"type":"identify","userId":42}`, ""},
		{"a track with an event is valid", `{"type":"track","userId":"u1","event":"Signed Up","properties":{}}`, ""},
		{"a page without a name is valid", `{"type":"page","anonymousId":"a1"}`, ""},
		{"a screen is valid", `{"type":"screen","userId":"u1","name":"Home"}`, ""},
		{"a group with a groupId is valid", `{"type":"group","userId":"u1","groupId":"g1"}`, ""},
		{"an alias with userId and previousId is valid", `{"type":"alias","userId":"u1","previousId":"a1"}`, ""},
		{"timestamps with nine fractional digits are valid", `{"type":"track","userId":"u","event":"e","timestamp":"2026-11-22T19:01:32.346734997Z"}`, ""},
		{"unknown keys are allowed", `{"type":"track","userId":"u","event":"e","_metadata":{"nodeVersion":"20"}}`, ""},

		{"a message without a type is invalid", `{"userId":"u1"}`, "missing message type"},
		{"an unknown type is invalid", `{"type":"purchase","userId":"u1"}`, `unknown message type "purchase"`},
		{"a message without userId or anonymousId is invalid", `{"type":"identify","traits":{}}`, "userId"},
		{"an empty userId does not count as an id", `{"type":"identify","userId":"","anonymousId":null}`, "anonymousId"},
		{"a track without an event is invalid", `{"type":"track","userId":"u1"}`, "event"},
		{"a track with an empty event is invalid", `{"type":"track","userId":"u1","event":""}`, "/event"},
		{"a group without a groupId is invalid", `{"type":"group","userId":"u1"}`, "groupId"},
		{"an alias without a previousId is invalid", `{"type":"alias","userId":"u1"}`, "previousId"},
		{"an alias without a userId is invalid", `{"type":"alias","anonymousId":"a","previousId":"p"}`, "userId"},
		{"a timestamp that does not parse is invalid", `{"type":"track","userId":"u","event":"e","timestamp":"yesterday"}`, "/timestamp"},
		{"a messageId over 100 characters is invalid", `{"type":"track","userId":"u","event":"e","messageId":"` + strings.Repeat("m", 101) + `"}`, "/messageId"},
		{"traits that are not an object are invalid", `{"type":"identify","userId":"u","traits":"pro"}`, "/traits"},
		{"a JSON array is not a message", `[1,2]`, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate([]byte(tt.msg))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got valid", tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("want an error containing %q, got %q", tt.reason, err.Error())
			}
		})
	}
}

func TestEventKeyPrefersUserID(t *testing.T) {
	tests := []struct {
		name, msg, key string
	}{
		{"the userId is the key when present", `{"userId":"u1","anonymousId":"a1"}`, "u1"},
		{"the anonymousId is the key without a userId", `{"userId":null,"anonymousId":"a1"}`, "a1"},
		{"a numeric userId is keyed by its JSON text", `{"userId":1234}`, "1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewEvent([]byte(tt.msg)).Key(); got != tt.key {
				t.Fatalf("Key() = %q, want %q", got, tt.key)
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	v, err := NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"type":"track","userId":"user-123","event":"Order Completed","messageId":"0d7f1c5e-5d4e-4b4e-9d7e-2b8d1c1a2f3e","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-1","total":42.5,"currency":"USD","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]},"context":{"library":{"name":"analytics-go","version":"3.0.0"},"ip":"10.0.0.1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(msg); err != nil {
			b.Fatal(err)
		}
	}
}
