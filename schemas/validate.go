// Package schemas holds the JSON Schemas of the Segment spec calls, validates
// messages against them, and offers Event, a read-only view over a message's
// raw JSON.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"github.com/tidwall/gjson"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed spec/*.json
var spec embed.FS

const schemaBase = "https://switchyard.dev/schemas/"

// Types lists the call types the gateway accepts.
var Types = []string{"identify", "track", "page", "screen", "group", "alias"}

// Validator checks messages against the embedded schema of their type.
type Validator struct {
	byType  map[string]*jsonschema.Schema
	printer *message.Printer
}

// NewValidator compiles the embedded schemas.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(spec, "spec/*.json")
	if err != nil {
		return nil, fmt.Errorf("listing schemas: %w", err)
	}
	for _, name := range files {
		raw, err := spec.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading schema %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parsing schema %s: %w", name, err)
		}
		if err := c.AddResource(schemaBase+path.Base(name), doc); err != nil {
			return nil, fmt.Errorf("adding schema %s: %w", name, err)
		}
	}
	v := &Validator{byType: make(map[string]*jsonschema.Schema), printer: message.NewPrinter(language.English)}
	for _, typ := range Types {
		sch, err := c.Compile(schemaBase + typ + ".json")
		if err != nil {
			return nil, fmt.Errorf("compiling schema %s: %w", typ, err)
		}
		v.byType[typ] = sch
	}
	return v, nil
}

// InvalidError says why a message does not follow the spec.
type InvalidError struct {
	Reason string
}

func (e *InvalidError) Error() string { return e.Reason }

// Validate checks one message, which must be valid JSON. It returns an
// *InvalidError naming every problem found, or nil.
//
// The schemas are the rule. Most messages are checked by conforms, a direct
// transcription of the schemas' rules for the common shapes, which never
// accepts what the schemas refuse (a fuzz test holds the two together);
// anything it does not accept goes through the full schema validation, which
// gives the verdict and the reason.
func (v *Validator) Validate(raw []byte) error {
	msg := gjson.ParseBytes(raw)
	if conforms(msg) {
		return nil
	}
	return v.validateWithSchema(msg)
}

// Field is one top-level field of a message.
type Field struct {
	// RawKey is the key as the JSON text has it, quotes and escapes
	// included; Key is the key unescaped.
	RawKey, Key string
	Value       gjson.Result
	// Made says the value is one the gateway made in the form its field's
	// schema asks (a time it formatted), so it is not checked again.
	Made bool
}

// ValidateFields is Validate for a message whose top-level fields, in order,
// the caller has at hand: the usual message is checked from them without
// reading raw again. raw is the message's JSON text, for the full schema
// validation of the rest.
func (v *Validator) ValidateFields(fields []Field, raw []byte) error {
	if conformsFields(fields) {
		return nil
	}
	return v.validateWithSchema(gjson.ParseBytes(raw))
}

// validateWithSchema runs the JSON Schema of the message's type.
//
// The schemas constrain a message's top-level fields and the JSON type of its
// nested objects, never what is inside them (traits and properties are free
// form), so only the top level is decoded: nested objects and arrays reach
// the schema as empty ones.
func (v *Validator) validateWithSchema(msg gjson.Result) error {
	if !msg.IsObject() {
		return &InvalidError{Reason: "message is not a JSON object"}
	}
	obj := make(map[string]any, 16)
	msg.ForEach(func(k, val gjson.Result) bool {
		obj[k.Str] = shallowValue(val)
		return true
	})
	var doc any = obj
	typ, _ := obj["type"].(string)
	sch, ok := v.byType[typ]
	if !ok {
		if typ == "" {
			return &InvalidError{Reason: "missing message type"}
		}
		return &InvalidError{Reason: fmt.Sprintf("unknown message type %q", typ)}
	}
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &InvalidError{Reason: err.Error()}
	}
	return &InvalidError{Reason: typ + ": " + v.describe(verr)}
}

// shallowValue converts a top-level JSON value into the form the schema
// library validates: numbers as json.Number, nested objects and arrays empty.
func shallowValue(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return json.Number(r.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Null:
		return nil
	}
	if r.IsArray() {
		return []any{}
	}
	return map[string]any{}
}

// describe turns a validation error tree into one line: the failing leaves,
// alternatives of an anyOf joined with "or", other problems with "; ".
func (v *Validator) describe(e *jsonschema.ValidationError) string {
	if len(e.Causes) == 0 {
		where := "/" + strings.Join(e.InstanceLocation, "/")
		if where == "/" {
			return e.ErrorKind.LocalizedString(v.printer)
		}
		return where + ": " + e.ErrorKind.LocalizedString(v.printer)
	}
	sep := "; "
	if _, ok := e.ErrorKind.(*kind.AnyOf); ok {
		sep = " or "
	}
	parts := make([]string, 0, len(e.Causes))
	seen := make(map[string]bool)
	for _, c := range e.Causes {
		d := v.describe(c)
		if !seen[d] {
			seen[d] = true
			parts = append(parts, d)
		}
	}
	return strings.Join(parts, sep)
}
