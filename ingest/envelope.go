package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/dedupe"
	"github.com/switchyard/switchyard/queue"
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
	// receivedAtField and switchyardField are the same for every message of
	// the request; see shared. switchyardField is set with source.
	receivedAtField, switchyardField gjson.Result
	// ipField is ip as a JSON value, once made.
	ipField gjson.Result
	// batchSentAt is sentAt parsed, once batchSentAtRead.
	batchSentAt     time.Time
	batchSentAtErr  error
	batchSentAtRead bool
	// arena holds the stored form of every message of the request, one
	// after the other: one buffer for the lot, reused by a later request
	// once the log has them. It is nil after a failed publish, as the log
	// may still be writing from it.
	arena []byte
	// out is the scratch list a message's fields are rewritten in, reused
	// from one message to the next.
	out []schemas.Field
	// lists are the lists store builds, the scratch's, reused like arena;
	// emptied of their arrays after a failed publish.
	lists *storeLists
}

// storeLists are the lists store builds for a request's messages: the
// messages for the log, those prepared, their dedupe keys and headers.
type storeLists struct {
	msgs      []queue.Message
	valid     []prepared
	keys      []dedupe.Key
	accepted  []dedupe.Key
	headers   []queue.Header
	inRequest map[dedupe.Key]bool
}

// reset empties l, keeping its arrays; like scanned's, their old entries
// are left for the next request to write over.
func (l *storeLists) reset() {
	clear(l.inRequest)
	l.msgs, l.valid, l.headers = l.msgs[:0], l.valid[:0], l.headers[:0]
	l.keys, l.accepted = l.keys[:0], l.accepted[:0]
}

// shared returns, as fields' values, the request's receivedAt, made on the
// first call, and the _switchyard object of its source.
func (r *request) shared() (receivedAt, switchyard gjson.Result) {
	if r.receivedAtField.Raw == "" {
		r.receivedAtField = timeValue(r.receivedAt)
	}
	if r.switchyardField.Raw == "" {
		r.switchyardField = switchyardValue(r.source)
	}
	return r.receivedAtField, r.switchyardField
}

// typeValue returns the type the route implies, as a JSON value.
func (r *request) typeValue() gjson.Result {
	return gjson.Result{Type: gjson.String, Raw: callTypes[r.typ], Str: r.typ}
}

// callTypes holds each call type the routes imply as JSON text.
var callTypes = func() map[string]string {
	m := make(map[string]string)
	for _, r := range routes {
		m[r.typ] = quote(r.typ)
	}
	return m
}()

// switchyardValue is the _switchyard object of source's messages.
func switchyardValue(source string) gjson.Result {
	return gjson.Result{Type: gjson.JSON, Raw: `{"source":` + quote(source) + `}`}
}

// fieldLists are the scratch lists of requests, reused across requests.
var fieldLists = sync.Pool{New: func() any { return new(fieldList) }}

// fieldList is one request's scratch: what scanBody collects of its body,
// and the list a message's fields are rewritten in.
type fieldList struct {
	body scanned
	out  []schemas.Field
	// arena is the last request's arena, reused when the log holds nothing
	// of it (see request.arena); so are lists.
	arena []byte
	lists storeLists
}

// maxReusedArena is the largest arena kept for the next request; a larger
// one, from an unusually large batch, is left to the garbage collector.
const maxReusedArena = 1 << 20

func takeScratch() *fieldList { return fieldLists.Get().(*fieldList) }

// releaseScratch empties l and returns it to the pool.
func releaseScratch(l *fieldList) {
	l.body.reset()
	l.out = l.out[:0]
	l.lists.reset()
	fieldLists.Put(l)
}

// ipValue returns the client's ip as a JSON string value, made once.
func (r *request) ipValue() gjson.Result {
	if r.ipField.Raw == "" {
		r.ipField = stringValue(r.ip)
	}
	return r.ipField
}

// envelopeSentAt returns the batch's sentAt, parsed once per request.
func (r *request) envelopeSentAt() (time.Time, error) {
	if !r.batchSentAtRead {
		r.batchSentAt, r.batchSentAtErr = optionalTime("sentAt", r.sentAt)
		r.batchSentAtRead = true
	}
	return r.batchSentAt, r.batchSentAtErr
}

// prepared is a message ready for the log. value and key are slices of the
// request's arena.
type prepared struct {
	value, key []byte
	// header is the message's schemas.EventHeader, encoded.
	header    []byte
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
// writeKey in the message is removed so secrets never reach the log. in
// holds the message's top-level fields in order (nil when it is not an
// object), as scanBody collected them; the result is appended to the
// request's arena.
func (g *Gateway) prepare(item gjson.Result, in []schemas.Field, req *request) (prepared, error) {
	if !item.IsObject() {
		return prepared{}, fmt.Errorf("message is not a JSON object")
	}
	var f fields
	for _, fl := range in {
		f.note(fl.Key, fl.Value)
	}
	id, err := messageIDOf(f.messageID)
	if err != nil {
		return prepared{}, err
	}
	times, err := correctTimes(f, req)
	if err != nil {
		return prepared{}, err
	}
	req.out = rewriteFields(req.out[:0], in, req, f, id, times)
	start := len(req.arena)
	req.arena = appendObject(req.arena, req.out)
	value := req.arena[start:len(req.arena):len(req.arena)]
	if err := g.validator.ValidateFields(req.out, value); err != nil {
		req.arena = req.arena[:start]
		return prepared{}, err
	}
	start = len(req.arena)
	req.arena = append(req.arena, schemas.KeyFrom(f.userID, f.anonymousID)...)
	key := req.arena[start:len(req.arena):len(req.arena)]
	start = len(req.arena)
	req.arena = schemas.AppendEventHeader(req.arena, schemas.EventHeader{
		MessageID: id.value, Source: req.source,
		// As receivedAt is written: to the millisecond.
		ReceivedAt:      req.receivedAt.Truncate(time.Millisecond),
		HasIntegrations: hasField(req.out, "integrations"),
	})
	header := req.arena[start:len(req.arena):len(req.arena)]
	return prepared{value: value, key: key, header: header, messageID: id.value}, nil
}

// hasField reports whether fields has one named key.
func hasField(fields []schemas.Field, key string) bool {
	for _, f := range fields {
		if f.Key == key {
			return true
		}
	}
	return false
}

// fields are the top-level fields of a message that the gateway reads or
// rewrites; a field the message lacks does not exist.
type fields struct {
	messageID, timestamp, originalTimestamp, sentAt, context, integrations gjson.Result
	userID, anonymousID                                                    gjson.Result
}

// note keeps the field k if the gateway reads it.
func (f *fields) note(k string, v gjson.Result) {
	switch k {
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
	case "userId":
		f.userID = v
	case "anonymousId":
		f.anonymousID = v
	}
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
	// timestamp is the skew-corrected timestamp.
	timestamp gjson.Result
	// originalTimestamp is the client's own time: originalTimestamp when it
	// is a string, else timestamp, else receivedAt.
	originalTimestamp gjson.Result
	// sentAt is the message's sentAt, or the batch's when the message has
	// none or null.
	sentAt gjson.Result
	// timestampMade says timestamp is in timeLayout, as a date-time field's
	// schema asks.
	timestampMade bool
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
	var sentAt time.Time
	if !sentAtField.Exists() || sentAtField.Type == gjson.Null {
		sentAtField = req.sentAt
		sentAt, err = req.envelopeSentAt()
	} else {
		sentAt, err = optionalTime("sentAt", sentAtField)
	}
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
	originalField := f.originalTimestamp
	switch {
	case f.originalTimestamp.Type == gjson.String:
	case f.timestamp.Type == gjson.String:
		originalField = f.timestamp
	default:
		originalField, _ = req.shared()
	}
	return times{
		timestamp:         timeValue(corrected),
		originalTimestamp: originalField,
		sentAt:            sentAtField,
		timestampMade:     inTimeLayout(corrected),
	}, nil
}

// inTimeLayout reports whether timeValue writes t in timeLayout: its year,
// in UTC, is from 0 to 9999.
func inTimeLayout(t time.Time) bool {
	year := t.UTC().Year()
	return year >= 0 && year <= 9999
}

// timeValue is t, in UTC, as a JSON string value in timeLayout. Years
// outside 0 to 9999 cannot be written in it, and are written by
// time.Format's rules.
func timeValue(t time.Time) gjson.Result {
	t = t.UTC()
	year, month, day := t.Date()
	if !inTimeLayout(t) {
		raw := quote(t.Format(timeLayout))
		return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
	}
	hour, minute, sec := t.Clock()
	var b [len(timeLayout) + 2]byte
	digits := func(at, n, v int) {
		for i := at + n - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	copy(b[:], `"0000-00-00T00:00:00.000Z"`)
	digits(1, 4, year)
	digits(6, 2, int(month))
	digits(9, 2, day)
	digits(12, 2, hour)
	digits(15, 2, minute)
	digits(18, 2, sec)
	digits(21, 3, t.Nanosecond()/int(time.Millisecond))
	raw := string(b[:])
	return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
}

// stringValue is s as a JSON string value.
func stringValue(s string) gjson.Result {
	return gjson.Result{Type: gjson.String, Raw: quote(s), Str: s}
}

// rewriteFields appends to out the stored message's fields: each field the
// gateway owns replaces the message's own (in) in place, and those the
// message lacks follow its last field. writeKey and any client receivedAt or
// _switchyard are dropped.
func rewriteFields(out, in []schemas.Field, req *request, f fields, id messageID, t times) []schemas.Field {
	var ip *schemas.Field
	if req.ip != "" {
		ip = &schemas.Field{RawKey: `"ip"`, Key: "ip", Value: req.ipValue()}
	}
	context := mergeObject(f.context, req.context, ip)
	integrations := mergeObject(f.integrations, req.integrations, nil)
	var wroteType, wroteID, wroteSentAt, wroteOriginal, wroteTimestamp, wroteContext, wroteIntegrations bool
	for _, fl := range in {
		switch fl.Key {
		case "writeKey", "receivedAt", "_switchyard":
			continue
		case "type":
			if req.typ != "" {
				fl.Value, wroteType = req.typeValue(), true
			}
		case "messageId":
			if id.generated {
				fl.Value = stringValue(id.value)
			}
			wroteID = true
		case "timestamp":
			fl.Value, fl.Made, wroteTimestamp = t.timestamp, t.timestampMade, true
		case "originalTimestamp":
			fl.Value, wroteOriginal = t.originalTimestamp, true
		case "sentAt":
			if fl.Value.Type == gjson.Null && t.sentAt.Type == gjson.String {
				fl.Value = t.sentAt
			}
			wroteSentAt = true
		case "context":
			if context.Exists() {
				fl.Value = context
			}
			wroteContext = true
		case "integrations":
			if integrations.Exists() {
				fl.Value = integrations
			}
			wroteIntegrations = true
		}
		out = append(out, fl)
	}
	addMade := func(rawKey string, v gjson.Result, made bool) {
		out = append(out, schemas.Field{RawKey: rawKey, Key: rawKey[1 : len(rawKey)-1], Value: v, Made: made})
	}
	add := func(rawKey string, v gjson.Result) { addMade(rawKey, v, false) }
	if req.typ != "" && !wroteType {
		add(`"type"`, req.typeValue())
	}
	if !wroteID {
		add(`"messageId"`, stringValue(id.value))
	}
	if !wroteSentAt && t.sentAt.Type == gjson.String {
		add(`"sentAt"`, t.sentAt)
	}
	if !wroteOriginal {
		add(`"originalTimestamp"`, t.originalTimestamp)
	}
	if !wroteTimestamp {
		addMade(`"timestamp"`, t.timestamp, t.timestampMade)
	}
	receivedAt, switchyard := req.shared()
	addMade(`"receivedAt"`, receivedAt, inTimeLayout(req.receivedAt))
	if !wroteContext && context.Exists() {
		add(`"context"`, context)
	}
	if !wroteIntegrations && integrations.Exists() {
		add(`"integrations"`, integrations)
	}
	add(`"_switchyard"`, switchyard)
	return out
}

// appendObject appends the JSON object of fields to dst.
func appendObject(dst []byte, fields []schemas.Field) []byte {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, f.RawKey...)
		dst = append(dst, ':')
		dst = append(dst, f.Value.Raw...)
	}
	return append(dst, '}')
}

// mergeObject returns own with every key of fallback that own lacks added,
// and extra (when not nil) added when neither has its key. Own's values
// win. It returns a value that does not exist when there is nothing to
// write: own is absent or null and so is everything else. When own is
// present but not an object it is returned unchanged, for validation to
// refuse.
func mergeObject(own, fallback gjson.Result, extra *schemas.Field) gjson.Result {
	ownPresent := own.Exists() && own.Type != gjson.Null
	if ownPresent && !own.IsObject() {
		return own
	}
	hasFallback := fallback.IsObject()
	needExtra := extra != nil && !hasKey(own, extra) && !(hasFallback && hasKey(fallback, extra))
	switch {
	case !hasFallback && !needExtra:
		if ownPresent {
			return own
		}
		return gjson.Result{}
	case !hasFallback && ownPresent:
		// The usual case: the message's own context, without an ip.
		raw := strings.TrimRight(own.Raw, " \t\r\n")
		raw = strings.TrimRight(raw[:len(raw)-1], " \t\r\n")
		sep := ","
		if raw == "{" {
			sep = ""
		}
		return gjson.Result{Type: gjson.JSON, Raw: raw + sep + extra.RawKey + ":" + extra.Value.Raw + "}"}
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
		w.field(extra.RawKey, extra.Value.Raw)
	}
	b.WriteByte('}')
	return gjson.Result{Type: gjson.JSON, Raw: b.String()}
}

// hasKey reports whether the object obj has the key of f at its top level.
// An object whose text holds neither f's quoted key nor any escape cannot
// have it, which is found without reading the object.
func hasKey(obj gjson.Result, f *schemas.Field) bool {
	if !strings.Contains(f.RawKey, `\`) && !strings.Contains(obj.Raw, f.RawKey) && !strings.Contains(obj.Raw, `\`) {
		return false
	}
	return obj.Get(gjson.Escape(f.Key)).Exists()
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
