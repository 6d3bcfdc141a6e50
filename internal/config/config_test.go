package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       time.Duration
		err        string
	}{
		{"a Go duration string is read", "d: 1m30s", 90 * time.Second, ""},
		{"a negative duration is refused", "d: -5s", 0, `"-5s" must not be negative`},
		{"a word is not a duration", "d: soon", 0, `"soon" is not a duration such as 30s, 5m or 24h`},
		{"a bare number has no unit", "d: 30", 0, `"30" is not a duration`},
		{"a list is not a duration", "d: [1s]", 0, "must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct{ D Duration }
			err := yaml.Unmarshal([]byte(tt.yaml), &v)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || time.Duration(v.D) != tt.want {
				t.Fatalf("got %v, %v; want %v", v.D, err, tt.want)
			}
			out, _ := yaml.Marshal(v)
			if strings.TrimSpace(string(out)) != "d: "+tt.want.String() {
				t.Fatalf("marshalled %q", out)
			}
		})
	}
}

func TestTimeZone(t *testing.T) {
	var v struct{ Z TimeZone }
	if err := yaml.Unmarshal([]byte("z: Europe/Paris"), &v); err != nil || v.Z.String() != "Europe/Paris" {
		t.Fatalf("got %v, %v", v.Z.Location, err)
	}
	err := yaml.Unmarshal([]byte("z: Mars/Olympus"), &v)
	if err == nil || !strings.Contains(err.Error(), `"Mars/Olympus" is not an IANA time zone such as Europe/Paris`) {
		t.Fatalf("error %v", err)
	}
	out, _ := yaml.Marshal(struct{ Z TimeZone }{})
	if strings.TrimSpace(string(out)) != "z: null" {
		t.Fatalf("the zero zone marshalled as %q", out)
	}
}
