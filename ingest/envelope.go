package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/schemas"
)

// request holds what every message of one request shares.
type request struct {
	source     string
	receivedAt time.Time
	ip         string
	// typ is the call type the route implies, "" on batch routes.
	typ string
	// The batch envelope's context, integrations and sentAt, if any.
	context, integrations, sentAt gjson.Result
	// receivedAtJSON and switchyardJSON are the same for every message of
	// the request; see encoded.
	receivedAtJSON, switchyardJSON string
}

// encoded returns, as JSON, the request's receivedAt and the _switchyard
// object, made on the first call.
func (r *request) encoded() (receivedAt, switchyard string) {
	if r.receivedAtJSON == "" {
		r.receivedAtJSON = quote(r.receivedAt.Format(timeLayout))
		r.switchyardJSON = `{"source":` + quote(r.source) + `}`
	}
	return r.receivedAtJSON, r.switchyardJSON
}

// prepared is a message ready for the log.
type prepared struct {
	value     []byte
	key       string
	messageID string
}

// timeLayout is how the gateway writes the times it computes: UTC with
// milliseconds, like the SDKs.
const timeLayout = "2006-01-02T15:04:05.000Z"

const maxMessageIDLength = 100

// prepare merges the envelope into one message, enriches it and validates
// the result. Keys, values and key order of the message are kept as sent,
// except for the fields the gateway owns: type on single-call routes,
// timestamp (skew-corrected), originalTimestamp, receivedAt, the merged
// context and integrations, a generated messageId, and _switchyard. A
// writeKey in the message is removed so secrets never reach the log.
func (g *Gateway) prepare(item gjson.Result, req *request) (prepared, error) {
	if !item.IsObject() {
		return prepared{}, fmt.Errorf("message is not a JSON object")
	}
	f := scanFields(item)
	id, err := messageIDOf(f.messageID)
	if err != nil {
		return prepared{}, err
	}
	times, err := correctTimes(f, req)
	if err != nil {
		return prepared{}, err
	}
	value := rewriteMessage(item, req, f, id, times)
	if err := g.validator.Validate(value); err != nil {
		return prepared{}, err
	}
	return prepared{value: value, key: schemas.NewEvent(value).Key(), messageID: id.value}, nil
}

// fields are the top-level fields of a message that the gateway reads or
// rewrites; a field the message lacks does not exist.
type fields struct {
	messageID, timestamp, originalTimestamp, sentAt, context, integrations gjson.Result
}

// scanFields finds the fields the gateway reads in one pass over the message.
func scanFields(item gjson.Result) fields {
	var f fields
	item.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messageId":
			f.messageID = v
		case "timestamp":
			f.timestamp = v
		case "originalTimestamp":
			f.originalTimestamp = v
		case "sentAt":
			f.sentAt = v
		case "context":
			f.context = v
		case "integrations":
			f.integrations = v
		}
		return true
	})
	return f
}

// messageID is the ID a message is stored under.
type messageID struct {
	value string
	// generated is true when the message had no ID and the gateway made one.
	generated bool
}

// messageIDOf returns the message's own ID, or a new UUID when it has none
// (missing, null or ""). An ID that is not a string, or is over
// maxMessageIDLength characters, is refused.
func messageIDOf(field gjson.Result) (messageID, error) {
	var id string
	switch field.Type {
	case gjson.Null:
	case gjson.String:
		id = field.Str
	default:
		return messageID{}, fmt.Errorf("messageId must be a string, got %s", field.Raw)
	}
	if n := utf8.RuneCountInString(id); n > maxMessageIDLength {
		return messageID{}, fmt.Errorf("messageId is %d characters; the limit is %d", n, maxMessageIDLength)
	}
	if id == "" {
		return messageID{value: uuid.NewString(), generated: true}, nil
	}
	return messageID{value: id}, nil
}

// times are a message's time fields as the gateway writes them.
type times struct {
	// timestamp is the skew-corrected timestamp, as JSON.
	timestamp string
	// originalTimestamp is the client's own time, as JSON: originalTimestamp
	// when it is a string, else timestamp, else receivedAt.
	originalTimestamp string
	// sentAt is the message's sentAt, or the batch's when the message has
	// none or null.
	sentAt gjson.Result
}

// correctTimes parses the message's times and corrects its timestamp for the
// client's clock error: timestamp = receivedAt - (sentAt - originalTimestamp),
// where originalTimestamp falls back to timestamp. Without a client time the
// timestamp is receivedAt; without sentAt it is the client's time unchanged.
func correctTimes(f fields, req *request) (times, error) {
	clientTime, err := optionalTime("timestamp", f.timestamp)
	if err != nil {
		return times{}, err
	}
	original, err := optionalTime("originalTimestamp", f.originalTimestamp)
	if err != nil {
		return times{}, err
	}
	if clientTime.IsZero() {
		clientTime = original
	}
	sentAtField := f.sentAt
	if !sentAtField.Exists() || sentAtField.Type == gjson.Null {
		sentAtField = req.sentAt
	}
	sentAt, err := optionalTime("sentAt", sentAtField)
	if err != nil {
		return times{}, err
	}
	corrected := req.receivedAt
	if !clientTime.IsZero() {
		corrected = clientTime
		if !sentAt.IsZero() {
			corrected = req.receivedAt.Add(-sentAt.Sub(clientTime))
		}
	}
	originalRaw := f.originalTimestamp.Raw
	switch {
	case f.originalTimestamp.Type == gjson.String:
	case f.timestamp.Type == gjson.String:
		originalRaw = f.timestamp.Raw
	default:
		originalRaw, _ = req.encoded()
	}
	return times{
		timestamp:         quote(corrected.UTC().Format(timeLayout)),
		originalTimestamp: originalRaw,
		sentAt:            sentAtField,
	}, nil
}

// rewriteMessage writes the message with the gateway's fields: each field
// the gateway owns replaces the message's own in place, and those the
// message lacks follow its last field. writeKey and any client receivedAt
// or _switchyard are dropped.
func rewriteMessage(item gjson.Result, req *request, f fields, id messageID, t times) []byte {
	context := mergeObject(f.context, req.context, "ip", req.ip)
	integrations := mergeObject(f.integrations, req.integrations, "", "")

	var b bytes.Buffer
	b.Grow(len(item.Raw) + 256)
	b.WriteByte('{')
	w := fieldWriter{b: &b}
	written := make(map[string]bool, 8)
	item.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "writeKey", "receivedAt", "_switchyard":
			return true
		case "type":
			if req.typ != "" {
				w.field(k.Raw, quote(req.typ))
				written["type"] = true
				return true
			}
		case "messageId":
			if id.generated {
				w.field(k.Raw, quote(id.value))
				written["messageId"] = true
				return true
			}
		case "timestamp":
			w.field(k.Raw, t.timestamp)
			written["timestamp"] = true
			return true
		case "originalTimestamp":
			w.field(k.Raw, t.originalTimestamp)
			written["originalTimestamp"] = true
			return true
		case "sentAt":
			if v.Type == gjson.Null && t.sentAt.Type == gjson.String {
				w.field(k.Raw, t.sentAt.Raw)
				written["sentAt"] = true
				return true
			}
		case "context":
			if context != "" {
				w.field(k.Raw, context)
				written["context"] = true
				return true
			}
		case "integrations":
			if integrations != "" {
				w.field(k.Raw, integrations)
				written["integrations"] = true
				return true
			}
		}
		w.field(k.Raw, v.Raw)
		written[k.Str] = true
		return true
	})
	if req.typ != "" && !written["type"] {
		w.field(`"type"`, quote(req.typ))
	}
	if !written["messageId"] {
		w.field(`"messageId"`, quote(id.value))
	}
	if !written["sentAt"] && t.sentAt.Type == gjson.String {
		w.field(`"sentAt"`, t.sentAt.Raw)
	}
	if !written["originalTimestamp"] {
		w.field(`"originalTimestamp"`, t.originalTimestamp)
	}
	if !written["timestamp"] {
		w.field(`"timestamp"`, t.timestamp)
	}
	receivedAt, switchyard := req.encoded()
	w.field(`"receivedAt"`, receivedAt)
	if !written["context"] && context != "" {
		w.field(`"context"`, context)
	}
	if !written["integrations"] && integrations != "" {
		w.field(`"integrations"`, integrations)
	}
	w.field(`"_switchyard"`, switchyard)
	b.WriteByte('}')
	return b.Bytes()
}

// fieldWriter appends "key":value pairs with commas between them.
type fieldWriter struct {
	b     *bytes.Buffer
	count int
}

func (w *fieldWriter) field(rawKey, rawValue string) {
	if w.count > 0 {
		w.b.WriteByte(',')
	}
	w.count++
	w.b.WriteString(rawKey)
	w.b.WriteByte(':')
	w.b.WriteString(rawValue)
}

// mergeObject returns own's raw JSON with every key of fallback that own
// lacks added, and extraKey (when not "") set to extraValue when neither has
// it. Own's values win. It returns "" when there is nothing to write: own is
// absent or null and so is everything else. When own is present but not an
// object it is returned unchanged, for validation to refuse.
func mergeObject(own, fallback gjson.Result, extraKey, extraValue string) string {
	ownPresent := own.Exists() && own.Type != gjson.Null
	if ownPresent && !own.IsObject() {
		return own.Raw
	}
	hasFallback := fallback.IsObject()
	needExtra := extraKey != "" && extraValue != "" && !own.Get(gjson.Escape(extraKey)).Exists() &&
		!(hasFallback && fallback.Get(gjson.Escape(extraKey)).Exists())
	if !hasFallback && !needExtra {
		if ownPresent {
			return own.Raw
		}
		return ""
	}
	var b bytes.Buffer
	b.WriteByte('{')
	w := fieldWriter{b: &b}
	ownKeys := make(map[string]bool)
	if ownPresent {
		own.ForEach(func(k, v gjson.Result) bool {
			ownKeys[k.Str] = true
			w.field(k.Raw, v.Raw)
			return true
		})
	}
	if hasFallback {
		fallback.ForEach(func(k, v gjson.Result) bool {
			if !ownKeys[k.Str] {
				w.field(k.Raw, v.Raw)
			}
			return true
		})
	}
	if needExtra {
		w.field(quote(extraKey), quote(extraValue))
	}
	b.WriteByte('}')
	return b.String()
}

// optionalTime parses a timestamp field when it is present and not null.
func optionalTime(name string, r gjson.Result) (time.Time, error) {
	if !r.Exists() || r.Type == gjson.Null {
		return time.Time{}, nil
	}
	if r.Type != gjson.String {
		return time.Time{}, fmt.Errorf("%s must be an ISO-8601 string, got %s", name, r.Raw)
	}
	t, err := schemas.ParseTime(r.Str)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an ISO-8601 (RFC 3339) time", name, r.Str)
	}
	return t, nil
}

// quote renders s as a JSON string.
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s) // a string always marshals
			return string(b)
		}
	}
	return `"` + s + `"`
}
