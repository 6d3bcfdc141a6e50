package transforms

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Name length limits, in characters.
const (
	// MaxPropertyNameLen is the cap on CRM property names (contacts,
	// companies). HubSpot's CRM reference states no limit; 100 is the limit
	// reported for internal names and keeps names readable.
	MaxPropertyNameLen = 100
	// MaxEventNameLen is HubSpot's limit on custom event property names and
	// on the short name of a custom event (without the pe{hubId}_ prefix).
	MaxEventNameLen = 50
)

// NormalizeKey turns a trait or property key into a CRM property name,
// capped at [MaxPropertyNameLen]. See [NormalizeKeyMax] for the rules.
func NormalizeKey(key string) (name string, ok bool) {
	return NormalizeKeyMax(key, MaxPropertyNameLen)
}

// NormalizeKeyMax turns a key into a name matching ^[a-z][a-z0-9_]*$ of at
// most limit bytes (limit <= 0: no cap). The rules, in order:
//
//   - Non-ASCII text is decomposed (Unicode NFKD) so that accented and
//     compatibility letters keep their base letter: "Prénom" becomes
//     "prenom", "Ｐｌａｎ" becomes "plan".
//   - Letters are lowercased.
//   - Runs of whitespace, '.', '-' and '_' become one '_'; leading and
//     trailing ones are dropped. So "Plan Type", "plan-type", "plan.type"
//     and "plan__type" all become "plan_type", and the result never holds
//     "__" or starts or ends with '_'.
//   - Every other character outside [a-z0-9] is dropped: "$browser" becomes
//     "browser", "a+b" becomes "ab".
//   - The result is cut to limit, then stripped of a trailing '_' again.
//
// ok is false when the result is empty or does not start with a letter
// ("123abc", "!!!"): the key cannot become a property name. name then holds
// what the key normalized to, for error messages.
//
// A name that is already normalized is returned as is, without allocating,
// and NormalizeKeyMax(name, limit) returns name: the function is idempotent.
func NormalizeKeyMax(key string, limit int) (name string, ok bool) {
	if isNormalized(key, limit) {
		return key, true
	}
	if !isASCII(key) {
		key = norm.NFKD.String(key)
	}
	b := make([]byte, 0, len(key))
	pendingSep := false
	for _, r := range key {
		r = unicode.ToLower(r)
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			if pendingSep && len(b) > 0 {
				b = append(b, '_')
			}
			pendingSep = false
			b = append(b, byte(r))
		case r == '_' || r == '.' || r == '-' || unicode.IsSpace(r):
			pendingSep = true
		}
	}
	if limit > 0 && len(b) > limit {
		b = b[:limit]
		for len(b) > 0 && b[len(b)-1] == '_' {
			b = b[:len(b)-1]
		}
	}
	name = string(b)
	return name, name != "" && isLower(name[0])
}

// isNormalized reports whether key is already a valid name within limit.
func isNormalized(key string, limit int) bool {
	if key == "" || (limit > 0 && len(key) > limit) || !isLower(key[0]) || key[len(key)-1] == '_' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case isLower(c), '0' <= c && c <= '9':
		case c == '_':
			if key[i-1] == '_' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
