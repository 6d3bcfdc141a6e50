package schemas

import (
	"time"

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
	var typ string
	var hasID, hasUserID, hasEvent, hasGroupID, hasPreviousID bool
	var nameOK, categoryOK = true, true
	ok := true
	msg.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v.Str
			ok = v.Type == gjson.String
		case "messageId":
			// maxLength counts characters; a string of at most 100 bytes
			// has at most 100 characters.
			ok = v.Type == gjson.String && v.Str != "" && len(v.Str) <= 100
		case "userId":
			ok = v.Type == gjson.String || v.Type == gjson.Null
			if v.Type == gjson.String && v.Str != "" {
				hasID, hasUserID = true, true
			}
		case "anonymousId":
			ok = v.Type == gjson.String || v.Type == gjson.Null
			if v.Type == gjson.String && v.Str != "" {
				hasID = true
			}
		case "timestamp", "originalTimestamp", "sentAt", "receivedAt":
			ok = v.Type == gjson.String && isDateTime(v.Str)
		case "context", "integrations", "properties", "traits":
			ok = v.IsObject()
		case "event":
			ok = v.Type == gjson.String
			hasEvent = v.Str != ""
		case "groupId":
			ok = v.Type == gjson.String
			hasGroupID = v.Str != ""
		case "previousId":
			hasPreviousID = v.Type == gjson.String && v.Str != ""
		case "name":
			nameOK = v.Type == gjson.String || v.Type == gjson.Null
		case "category":
			categoryOK = v.Type == gjson.String || v.Type == gjson.Null
		}
		return ok
	})
	if !ok || !hasID {
		return false
	}
	switch typ {
	case "identify":
		return true
	case "track":
		return hasEvent
	case "page":
		return nameOK && categoryOK
	case "screen":
		return nameOK
	case "group":
		return hasGroupID
	case "alias":
		return hasUserID && hasPreviousID
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
	if s[17:19] > "59" {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
