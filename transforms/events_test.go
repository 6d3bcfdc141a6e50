package transforms

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestEventName(t *testing.T) {
	tests := []struct {
		name    string
		hubID   int64
		event   string
		want    string
		wantErr string
	}{
		{"A Segment event name is normalized behind the portal prefix.", 1234567, "Order Completed", "pe1234567_order_completed", ""},
		{"An Engage audience event is normalized.", 42, "Audience Entered", "pe42_audience_entered", ""},
		{"An already normalized name is kept.", 42, "login_event", "pe42_login_event", ""},
		{"The name is cut to 50 characters, the prefix not counted.", 42, strings.Repeat("x", 60), "pe42_" + strings.Repeat("x", 50), ""},
		{"A name starting with a digit is an error.", 42, "3D Viewed", "", `normalizes to "3d_viewed", which does not start with a letter`},
		{"A name without letters is an error.", 42, "!!!", "", "no letters or digits"},
		{"A hub id of zero is an error.", 0, "Order Completed", "", "not a HubSpot portal id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EventName(tt.hubID, tt.event)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EventName(%d, %q) = %q, %v; want an error containing %q", tt.hubID, tt.event, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("EventName(%d, %q) = %q, %v; want %q", tt.hubID, tt.event, got, err, tt.want)
			}
		})
	}
}

func TestEventProperties(t *testing.T) {
	long := strings.Repeat("a", 300)
	longName := strings.Repeat("n", 55)
	tests := []mapCase{
		{
			name: "Track properties are normalized and formatted by inferred type.",
			json: `{"Order ID":"o-1","revenue":99.90,"currency":"EUR","coupon":null,"items":["sku-1","sku-2"],
				"placed_at":"2026-03-01T23:30:00-05:00","gift":false,"zip":"02134","cart":{"size":2}}`,
			props: map[string]string{"order_id": "o-1", "revenue": "99.90", "currency": "EUR", "items": "sku-1;sku-2",
				"placed_at": "2026-03-02T04:30:00.000Z", "gift": "false", "zip": "02134", "cart_size": "2"},
		},
		{
			name:  "Values are cut to 256 characters.",
			json:  fmt.Sprintf(`{"note":%q}`, long),
			props: map[string]string{"note": long[:MaxEventValueLen]},
		},
		{
			name:  "Names are cut to 50 characters.",
			json:  fmt.Sprintf(`{%q:"x"}`, longName),
			props: map[string]string{longName[:MaxEventNameLen]: "x"},
		},
		{
			name:     "Names that collide after the cut keep the last.",
			json:     fmt.Sprintf(`{%q:"x",%q:"y"}`, longName+"_a", longName+"_b"),
			props:    map[string]string{longName[:MaxEventNameLen]: "y"},
			problems: []wantProblem{{longName + "_a", longName[:MaxEventNameLen], ProblemCollision, "both become"}},
		},
		{
			name:  "With clearing, a null is sent empty.",
			json:  `{"coupon":null}`,
			opts:  Options{ClearNulls: true},
			props: map[string]string{"coupon": ""},
		},
		{
			name:  "With NestedJSON, a nested object is one JSON property, cut to 256.",
			json:  `{"cart":{"size":2}}`,
			opts:  Options{NestedJSON: true},
			props: map[string]string{"cart": `{"size":2}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, EventProperties(gjson.Parse(tt.json), tt.opts), tt)
		})
	}
}

func TestEventPropertiesKeepsTheFirstFifty(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"skipped":null`)
	for i := range 60 {
		fmt.Fprintf(&b, `,"p%02d":%d`, i, i)
	}
	b.WriteString("}")
	r := EventProperties(gjson.Parse(b.String()), Options{})
	if len(r.Properties) != MaxEventProperties {
		t.Fatalf("got %d properties; want %d", len(r.Properties), MaxEventProperties)
	}
	for i := range 60 {
		name := fmt.Sprintf("p%02d", i)
		_, kept := r.Properties[name]
		if kept != (i < MaxEventProperties) {
			t.Errorf("property %s kept = %v; want %v", name, kept, i < MaxEventProperties)
		}
	}
	if got := r.Count(ProblemTooMany); got != 10 {
		t.Errorf("Count(too_many_properties) = %d; want 10", got)
	}
	if p := r.Problems[0]; p.Key != "p50" || !strings.Contains(p.Reason, "only the first 50") {
		t.Errorf("first problem = %+v; want p50 dropped", p)
	}
}
