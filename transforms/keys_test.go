package transforms

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want string
		ok   bool
	}{
		{"An already normalized key is kept.", "plan_type", "plan_type", true},
		{"Camel case is lowercased without separators.", "firstName", "firstname", true},
		{"A space becomes an underscore.", "Plan Type", "plan_type", true},
		{"A run of whitespace, dots and dashes becomes one underscore.", "plan \t.- type", "plan_type", true},
		{"Dots become underscores.", "plan.tier", "plan_tier", true},
		{"Dashes become underscores.", "utm-source", "utm_source", true},
		{"Doubled underscores collapse to one.", "plan__type", "plan_type", true},
		{"Leading and trailing separators are dropped.", "  _plan type_ ", "plan_type", true},
		{"Other characters are dropped.", "$browser (v2)!", "browser_v2", true},
		{"A dropped character between separators leaves one underscore.", "a $ b", "a_b", true},
		{"A dropped character between letters joins them.", "a+b", "ab", true},
		{"Accents keep their base letter.", "Prénom Usuel", "prenom_usuel", true},
		{"Full-width letters become ASCII.", "Ｐｌａｎ", "plan", true},
		{"Letters without an ASCII base are dropped.", "名前 name", "name", true},
		{"Digits are kept after the first letter.", "Q3 2026 Revenue", "q3_2026_revenue", true},
		{"A key starting with a digit cannot be a name.", "123abc", "123abc", false},
		{"A key that starts with a digit after dropping cannot be a name.", "$1st name", "1st_name", false},
		{"A key with no letters or digits cannot be a name.", "!!!", "", false},
		{"An empty key cannot be a name.", "", "", false},
		{"An underscore-only key cannot be a name.", "___", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NormalizeKey(tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("NormalizeKey(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNormalizeKeyMax(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		limit int
		want  string
	}{
		{"A long key is cut to the limit.", strings.Repeat("a", 120), 100, strings.Repeat("a", 100)},
		{"An event property name is cut to 50.", strings.Repeat("b", 60), MaxEventNameLen, strings.Repeat("b", 50)},
		{"A cut that ends on an underscore drops it.", "abcd efgh", 5, "abcd"},
		{"A key within the limit is not cut.", "plan type", 9, "plan_type"},
		{"A limit of zero means no cap.", strings.Repeat("c", 200), 0, strings.Repeat("c", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NormalizeKeyMax(tt.key, tt.limit)
			if !ok || got != tt.want {
				t.Errorf("NormalizeKeyMax(%q, %d) = %q, %v; want %q, true", tt.key, tt.limit, got, ok, tt.want)
			}
		})
	}
}

func TestNormalizeKeyDoesNotAllocateForNormalizedKeys(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := NormalizeKey("lifetime_value"); !ok {
			t.Fatal("lifetime_value rejected")
		}
	})
	if allocs != 0 {
		t.Errorf("NormalizeKey of a normalized key allocated %v times", allocs)
	}
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"Plan Type", "plan_type", "firstName", "$browser", "Prénom", "123", "", "a__b_", "Ｐｌａｎ", "\xff\xfe", "ǅ", "K"} {
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, key string, limit int) {
		limit = limit%120 + 1
		if limit <= 0 {
			limit += 120
		}
		name, ok := NormalizeKeyMax(key, limit)
		if !ok {
			if name != "" && validName.MatchString(name) {
				t.Fatalf("NormalizeKeyMax(%q) refused %q, a valid name", key, name)
			}
			return
		}
		if !validName.MatchString(name) {
			t.Fatalf("NormalizeKeyMax(%q) = %q, not a valid name", key, name)
		}
		if len(name) > limit {
			t.Fatalf("NormalizeKeyMax(%q, %d) = %q, longer than the limit", key, limit, name)
		}
		if strings.Contains(name, "__") || strings.HasSuffix(name, "_") {
			t.Fatalf("NormalizeKeyMax(%q) = %q, with doubled or trailing underscores", key, name)
		}
		again, ok := NormalizeKeyMax(name, limit)
		if !ok || again != name {
			t.Fatalf("NormalizeKeyMax is not idempotent: %q -> %q -> %q, %v", key, name, again, ok)
		}
		if !utf8.ValidString(name) {
			t.Fatalf("NormalizeKeyMax(%q) = %q, not UTF-8", key, name)
		}
	})
}
