package ingest

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
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

// scanKeys reads every object of the JSON text, which must be valid, and
// tells whether one has a key twice, and whether the text nests deeper than
// maxDepth. gjson reads the first of two equal keys and encoding/json the
// last, so a message with one means different things to different readers.
// It reads each byte once.
func scanKeys(json string) (repeated, tooDeep bool) {
	s := keyScanner{json: json}
	s.value(0, 1)
	return s.repeated, s.tooDeep
}

// keyScanner walks valid JSON text for scanKeys.
type keyScanner struct {
	json              string
	repeated, tooDeep bool
}

// value reads the value at or after i, at depth, and returns the index
// after it. Once the text is found too deep it returns len(json).
func (s *keyScanner) value(i, depth int) int {
	i = s.skipSpace(i)
	switch s.json[i] {
	case '{', '[':
		if depth > maxDepth {
			s.tooDeep = true
			return len(s.json)
		}
		if s.json[i] == '{' {
			return s.object(i, depth)
		}
		return s.array(i, depth)
	case '"':
		return s.stringEnd(i)
	}
	for ; i < len(s.json); i++ { // a number, true, false or null
		switch s.json[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

func (s *keyScanner) object(i, depth int) int {
	var keys keySet
	i = s.skipSpace(i + 1)
	if s.json[i] == '}' {
		return i + 1
	}
	for {
		end := s.stringEnd(i)
		key := s.json[i+1 : end-1]
		if strings.IndexByte(key, '\\') >= 0 {
			key = gjson.Parse(s.json[i:end]).Str
		}
		if keys.add(key) {
			s.repeated = true
		}
		i = s.skipSpace(end) + 1 // past the colon
		if i = s.value(i, depth+1); s.tooDeep {
			return i
		}
		i = s.skipSpace(i)
		if s.json[i] == '}' {
			return i + 1
		}
		i = s.skipSpace(i + 1) // past the comma
	}
}

func (s *keyScanner) array(i, depth int) int {
	i = s.skipSpace(i + 1)
	if s.json[i] == ']' {
		return i + 1
	}
	for {
		if i = s.value(i, depth+1); s.tooDeep {
			return i
		}
		i = s.skipSpace(i)
		if s.json[i] == ']' {
			return i + 1
		}
		i++ // past the comma
	}
}

// stringEnd returns the index after the string that starts at i.
func (s *keyScanner) stringEnd(i int) int {
	for i++; ; i++ {
		switch s.json[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
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
