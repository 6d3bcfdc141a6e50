package schemas

import (
	"time"

	"github.com/tidwall/gjson"
)

// Event is a read-only view over one stored message's raw JSON. It parses
// nothing up front: each accessor looks its field up in the bytes.
type Event struct {
	raw []byte
}

// NewEvent wraps raw message JSON. The bytes must not change while the Event
// is in use.
func NewEvent(raw []byte) Event { return Event{raw: raw} }

// Raw returns the message bytes.
func (e Event) Raw() []byte { return e.raw }

// Get returns the value at a gjson path, for example "traits.email".
func (e Event) Get(path string) gjson.Result { return gjson.GetBytes(e.raw, path) }

// Type is the call type: identify, track, page, screen, group or alias.
func (e Event) Type() string { return e.Get("type").String() }

// MessageID is the message's unique id.
func (e Event) MessageID() string { return e.Get("messageId").String() }

// UserID is the app's id for the user, or "".
func (e Event) UserID() string { return IDString(e.Get("userId")) }

// AnonymousID is the device or session id, or "".
func (e Event) AnonymousID() string { return IDString(e.Get("anonymousId")) }

// Key is the ordering key: the userId, else the anonymousId. Every event of
// one user shares a key, so the log keeps them in one partition, in order.
func (e Event) Key() string {
	return KeyFrom(e.Get("userId"), e.Get("anonymousId"))
}

// KeyFrom is the ordering key of a message with these userId and
// anonymousId fields; see Event.Key.
func KeyFrom(userID, anonymousID gjson.Result) string {
	if id := IDString(userID); id != "" {
		return id
	}
	return IDString(anonymousID)
}

// Timestamp is the skew-corrected time of the call, or the zero time.
func (e Event) Timestamp() time.Time { return parseTime(e.Get("timestamp")) }

// ReceivedAt is when the gateway received the call, or the zero time.
func (e Event) ReceivedAt() time.Time { return parseTime(e.Get("receivedAt")) }

// Source is the name of the configured source whose write key sent the call.
func (e Event) Source() string { return e.Get(SourceField).String() }

// SourceField is the path of the source name the gateway adds to every message.
const SourceField = "_switchyard.source"

// IDString renders an id the way it is used as a key, as UserID and
// AnonymousID return it: strings as they are, numbers by their JSON text,
// anything else as "".
func IDString(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	default:
		return ""
	}
}

// ParseTime parses a spec timestamp: RFC 3339 with 0 to 9 fractional digits.
func ParseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

func parseTime(r gjson.Result) time.Time {
	if r.Type != gjson.String {
		return time.Time{}
	}
	t, err := ParseTime(r.Str)
	if err != nil {
		return time.Time{}
	}
	return t
}
