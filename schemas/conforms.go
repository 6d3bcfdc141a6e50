package schemas

import (
	"github.com/tidwall/gjson"
)

// conforms reports whether msg certainly satisfies the schema of its type,
// in one pass over its top-level fields. It follows spec/*.json for the
// shapes SDKs send: ids and names as strings, objects as objects, timestamps
// in RFC 3339 with an upper-case T. For anything else (numeric ids, nulls
// where an object goes, unusual timestamps) it answers false and leaves the
// verdict to the schema. It must never answer true for a message the schema
// refuses.
func conforms(msg gjson.Result) bool {
	if !msg.IsObject() {
		return false
	}
	var c conformance
	msg.ForEach(func(k, v gjson.Result) bool { return c.field(k.Str, v, false) })
	return c.verdict()
}

// conformsFields is conforms for a message given as its top-level fields.
func conformsFields(fields []Field) bool {
	var c conformance
	for _, f := range fields {
		if !c.field(f.Key, f.Value, f.Made) {
			break
		}
	}
	return c.verdict()
}

// conformance collects what conforms needs to know of a message's fields.
type conformance struct {
	typ                                                 string
	hasID, hasUserID, hasEvent, hasGroupID, hasPrevious bool
	nameBad, categoryBad, bad                           bool
}

// field checks one top-level field and reports whether the message may
// still conform.
func (c *conformance) field(key string, v gjson.Result, made bool) bool {
	ok := true
	switch key {
	case "type":
		c.typ = v.Str
		ok = v.Type == gjson.String
	case "messageId":
		// maxLength counts characters; a string of at most 100 bytes
		// has at most 100 characters.
		ok = v.Type == gjson.String && v.Str != "" && len(v.Str) <= 100
	case "userId":
		ok = v.Type == gjson.String || v.Type == gjson.Null
		if v.Type == gjson.String && v.Str != "" {
			c.hasID, c.hasUserID = true, true
		}
	case "anonymousId":
		ok = v.Type == gjson.String || v.Type == gjson.Null
		if v.Type == gjson.String && v.Str != "" {
			c.hasID = true
		}
	case "timestamp", "originalTimestamp", "sentAt", "receivedAt":
		ok = made || v.Type == gjson.String && isDateTime(v.Str)
	case "context", "integrations", "properties", "traits":
		ok = v.IsObject()
	case "event":
		ok = v.Type == gjson.String
		c.hasEvent = v.Str != ""
	case "groupId":
		ok = v.Type == gjson.String
		c.hasGroupID = v.Str != ""
	case "previousId":
		c.hasPrevious = v.Type == gjson.String && v.Str != ""
	case "name":
		c.nameBad = !(v.Type == gjson.String || v.Type == gjson.Null)
	case "category":
		c.categoryBad = !(v.Type == gjson.String || v.Type == gjson.Null)
	}
	if !ok {
		c.bad = true
	}
	return ok
}

func (c *conformance) verdict() bool {
	if c.bad || !c.hasID {
		return false
	}
	switch c.typ {
	case "identify":
		return true
	case "track":
		return c.hasEvent
	case "page":
		return !c.nameBad && !c.categoryBad
	case "screen":
		return !c.nameBad
	case "group":
		return c.hasGroupID
	case "alias":
		return c.hasUserID && c.hasPrevious
	}
	return false
}

// isDateTime accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM) with a real
// calendar date and time, the subset of RFC 3339 that SDKs write.
func isDateTime(s string) bool {
	const minLen = len("2006-01-02T15:04:05Z")
	if len(s) < minLen || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59":
	default:
		return false
	}
	// Seconds of 60 (leap seconds) are left to the schema.
	month, day := atoi2(s[5:7]), atoi2(s[8:10])
	return month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, atoi4(s[0:4])) &&
		s[11:13] <= "23" && s[14:16] <= "59" && s[17:19] <= "59"
}

// daysIn is the number of days of a month (1 to 12) of a year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// atoi2 and atoi4 read two and four decimal digits.
func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }
func atoi4(s string) int { return atoi2(s[0:2])*100 + atoi2(s[2:4]) }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
