package ingest

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/schemas"
)

// replacementChar is what invalid UTF-8 in a body becomes.
var replacementChar = []byte(string(utf8.RuneError))

// validUTF8 returns body with each run of bytes that is not UTF-8 replaced
// by U+FFFD, so strict readers (Python's json.loads, for one) can read every
// stored message. A valid body, the usual case, is returned as it is.
func validUTF8(body []byte) []byte {
	if utf8.Valid(body) {
		return body
	}
	return bytes.ToValidUTF8(body, replacementChar)
}

// maxDepth caps how deeply a body nests objects and arrays. No event needs
// more, and it bounds the stack that reading a body's keys takes.
const maxDepth = 64

// scanBody reads the JSON text once and tells whether it is valid JSON (RFC
// 8259; strings are not checked for UTF-8, which validUTF8 sees to),
// whether an object in it has a key twice, and whether it nests deeper
// than maxDepth (then the rest is not read, and valid is false). gjson
// reads the first of two equal keys and encoding/json the last, so a
// message with one means different things to different readers. It also
// collects, into dst, the root object's fields and, when batch is set, the
// messages of its batch array with the fields of each, so that no one reads
// the body again.
func scanBody(json string, batch bool, dst *scanned) (valid, repeated, tooDeep bool) {
	dst.reset()
	s := keyScanner{json: json, out: dst, collectBatch: batch}
	return s.scan()
}

// scanned is what scanBody collects: the fields of the root object, and the
// messages of its batch array.
type scanned struct {
	// rootObject tells whether the text is an object.
	rootObject bool
	root       []schemas.Field
	messages   []message
	// fields holds every message's fields, one message after another.
	fields []schemas.Field
}

// message is one message of a request: its value and, when it is an
// object, its top-level fields in order (else nil).
type message struct {
	value  gjson.Result
	fields []schemas.Field
	// first and end bound fields in scanned.fields while scanning.
	first, end int
}

// reset empties d, keeping its arrays. Their old entries are not cleared:
// clearing a batch's thousands of fields cost more than its messages'
// dedupe, and what they point to, the last request's body and values, is
// all they keep alive, until the next request writes over them.
func (d *scanned) reset() {
	d.root, d.messages, d.fields = d.root[:0], d.messages[:0], d.fields[:0]
	d.rootObject = false
}

// finish gives each object message its fields, once fields no longer grows.
func (d *scanned) finish() {
	for i := range d.messages {
		if m := &d.messages[i]; m.value.IsObject() {
			m.fields = d.fields[m.first:m.end:m.end]
		}
	}
}

// valueOf is the gjson value of one JSON value's text.
func valueOf(raw string) gjson.Result {
	switch raw[0] {
	case '{', '[':
		return gjson.Result{Type: gjson.JSON, Raw: raw}
	case '"':
		if strings.IndexByte(raw, '\\') < 0 {
			return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
		}
	}
	return gjson.Parse(raw)
}

func (s *keyScanner) scan() (valid, repeated, tooDeep bool) {
	i := s.value(s.skipSpace(0), 1)
	if s.bad || s.tooDeep || s.skipSpace(i) != len(s.json) {
		return false, s.repeated, s.tooDeep
	}
	if s.out != nil {
		s.out.rootObject = s.json[s.skipSpace(0)] == '{'
		s.out.finish()
	}
	return true, s.repeated, false
}

// keyScanner walks JSON text for scanBody. Once it finds the text invalid
// (bad) or too deep, every method returns len(json).
type keyScanner struct {
	json                   string
	bad, repeated, tooDeep bool
	// out, when not nil, collects the root's fields and, when collectBatch
	// is set, the messages of the root's batch array; inBatch is set while
	// that array is read.
	out                   *scanned
	collectBatch, inBatch bool
	// collectingMessage is set while a message of the batch is read.
	collectingMessage bool
}

// fail marks the text invalid and returns len(json).
func (s *keyScanner) fail() int {
	s.bad = true
	return len(s.json)
}

// value reads the value at i, at depth, and returns the index after it.
func (s *keyScanner) value(i, depth int) int {
	if i >= len(s.json) {
		return s.fail()
	}
	switch c := s.json[i]; {
	case c == '{' || c == '[':
		if depth > maxDepth {
			s.tooDeep = true
			return len(s.json)
		}
		if c == '{' {
			return s.object(i, depth)
		}
		return s.array(i, depth)
	case c == '"':
		return s.stringEnd(i)
	case c == '-' || c >= '0' && c <= '9':
		return s.number(i)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	}
	return s.fail()
}

func (s *keyScanner) object(i, depth int) int {
	var keys keySet
	i = s.skipSpace(i + 1)
	if i < len(s.json) && s.json[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(s.json) || s.json[i] != '"' {
			return s.fail()
		}
		end := s.stringEnd(i)
		if s.bad {
			return end
		}
		key := s.json[i+1 : end-1]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(s.json[i:end]).Str
		}
		if keys.add(key) {
			s.repeated = true
		}
		rawKey := s.json[i:end]
		i = s.skipSpace(end)
		if i >= len(s.json) || s.json[i] != ':' {
			return s.fail()
		}
		start := s.skipSpace(i + 1)
		s.inBatch = s.collectBatch && depth == 1 && key == "batch"
		i = s.value(start, depth+1)
		s.inBatch = false
		if s.bad || s.tooDeep {
			return i
		}
		if s.out != nil {
			switch {
			case depth == 1:
				s.out.root = append(s.out.root, schemas.Field{RawKey: rawKey, Key: key, Value: valueOf(s.json[start:i])})
			case depth == 3 && s.collectingMessage:
				s.out.fields = append(s.out.fields, schemas.Field{RawKey: rawKey, Key: key, Value: valueOf(s.json[start:i])})
			}
		}
		i = s.skipSpace(i)
		if i >= len(s.json) {
			return s.fail()
		}
		switch s.json[i] {
		case '}':
			return i + 1
		case ',':
			i = s.skipSpace(i + 1)
		default:
			return s.fail()
		}
	}
}

func (s *keyScanner) array(i, depth int) int {
	messages := s.inBatch && depth == 2
	s.inBatch = false
	i = s.skipSpace(i + 1)
	if i < len(s.json) && s.json[i] == ']' {
		return i + 1
	}
	for {
		start := i
		if messages {
			s.collectingMessage = true
			first := len(s.out.fields)
			i = s.value(i, depth+1)
			s.collectingMessage = false
			if !s.bad && !s.tooDeep {
				s.out.messages = append(s.out.messages, message{value: valueOf(s.json[start:i]), first: first, end: len(s.out.fields)})
			}
		} else {
			i = s.value(i, depth+1)
		}
		if s.bad || s.tooDeep {
			return i
		}
		i = s.skipSpace(i)
		if i >= len(s.json) {
			return s.fail()
		}
		switch s.json[i] {
		case ']':
			return i + 1
		case ',':
			i = s.skipSpace(i + 1)
		default:
			return s.fail()
		}
	}
}

// stringEnd returns the index after the string that starts at i.
func (s *keyScanner) stringEnd(i int) int {
	for i++; i < len(s.json); i++ {
		switch c := s.json[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return s.fail()
		case c == '\\':
			i++
			if i >= len(s.json) {
				return s.fail()
			}
			switch s.json[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.json) || !isHex4(s.json[i+1:i+5]) {
					return s.fail()
				}
				i += 4
			default:
				return s.fail()
			}
		}
	}
	return s.fail()
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number returns the index after the number at i: -?(0|[1-9][0-9]*)
// (.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *keyScanner) number(i int) int {
	if s.json[i] == '-' {
		i++
	}
	switch {
	case i < len(s.json) && s.json[i] == '0':
		i++
	case i < len(s.json) && s.json[i] >= '1' && s.json[i] <= '9':
		i = s.digits(i)
	default:
		return s.fail()
	}
	if i < len(s.json) && s.json[i] == '.' {
		if j := s.digits(i + 1); j > i+1 {
			i = j
		} else {
			return s.fail()
		}
	}
	if i < len(s.json) && (s.json[i] == 'e' || s.json[i] == 'E') {
		i++
		if i < len(s.json) && (s.json[i] == '+' || s.json[i] == '-') {
			i++
		}
		if j := s.digits(i); j > i {
			i = j
		} else {
			return s.fail()
		}
	}
	return i
}

// digits returns the index after the decimal digits at i.
func (s *keyScanner) digits(i int) int {
	for i < len(s.json) && s.json[i] >= '0' && s.json[i] <= '9' {
		i++
	}
	return i
}

func (s *keyScanner) literal(i int, word string) int {
	if !strings.HasPrefix(s.json[i:], word) {
		return s.fail()
	}
	return i + len(word)
}

func (s *keyScanner) skipSpace(i int) int {
	for i < len(s.json) {
		switch s.json[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// lastValues returns v's raw JSON with every repeated key of every object
// kept once, where it first appears, with its last value: the message as
// encoding/json, JSON.parse and Python's json.loads read it.
func lastValues(v gjson.Result) string {
	switch {
	case v.IsObject():
		type field struct{ rawKey, value string }
		var fields []field
		index := make(map[string]int)
		v.ForEach(func(k, value gjson.Result) bool {
			if i, ok := index[k.Str]; ok {
				fields[i].value = lastValues(value)
				return true
			}
			index[k.Str] = len(fields)
			fields = append(fields, field{k.Raw, lastValues(value)})
			return true
		})
		var b bytes.Buffer
		b.WriteByte('{')
		w := fieldWriter{b: &b}
		for _, f := range fields {
			w.field(f.rawKey, f.value)
		}
		b.WriteByte('}')
		return b.String()
	case v.IsArray():
		var b bytes.Buffer
		b.WriteByte('[')
		first := true
		v.ForEach(func(_, value gjson.Result) bool {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(lastValues(value))
			return true
		})
		b.WriteByte(']')
		return b.String()
	}
	return v.Raw
}

// keySet finds a key repeated in one object. Objects of up to len(small)
// keys, nearly all of them, are compared in place without allocating;
// larger ones use a map.
type keySet struct {
	n     int
	small [32]string
	large map[string]bool
}

// add records key and reports whether it was there already.
func (s *keySet) add(key string) bool {
	if s.large != nil {
		if s.large[key] {
			return true
		}
		s.large[key] = true
		return false
	}
	for _, k := range s.small[:s.n] {
		if k == key {
			return true
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = key
		s.n++
		return false
	}
	s.large = make(map[string]bool, 2*len(s.small))
	for _, k := range s.small {
		s.large[k] = true
	}
	s.large[key] = true
	return false
}

// withoutWriteKey returns a message's raw JSON without its writeKey, for a
// dead letter: secrets never reach the log.
func withoutWriteKey(item gjson.Result) []byte {
	if !item.IsObject() {
		return []byte(item.Raw)
	}
	var b bytes.Buffer
	b.Grow(len(item.Raw))
	b.WriteByte('{')
	w := fieldWriter{b: &b}
	item.ForEach(func(k, v gjson.Result) bool {
		if k.Str != "writeKey" {
			w.field(k.Raw, v.Raw)
		}
		return true
	})
	b.WriteByte('}')
	return b.Bytes()
}
