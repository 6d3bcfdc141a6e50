package transforms

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Value length limits, in characters as HubSpot counts them (see
// [Truncate]).
const (
	// MaxStringLen is HubSpot's limit on a CRM string property value.
	MaxStringLen = 65536
	// MaxEventValueLen is HubSpot's limit on a custom event property value.
	// URL and referrer properties may hold 1,024, but 256 is applied to
	// every event property.
	MaxEventValueLen = 256
	// EpochSecondsBelow tells epoch seconds from epoch milliseconds: a
	// number whose magnitude is below it counts as seconds. 1e11 seconds is
	// the year 5138 and 1e11 milliseconds is 1973-03-03, so milliseconds
	// before March 1973 are misread as seconds.
	EpochSecondsBelow = 1e11
)

// DateTimeLayout is how [FormatDateTime] writes instants: ISO 8601 in UTC
// with milliseconds, the precision HubSpot keeps.
const DateTimeLayout = "2006-01-02T15:04:05.000Z"

// DateLayout is how [FormatDate] writes dates.
const DateLayout = "2006-01-02"

// maxExponent bounds the decimal exponent [FormatNumber] expands, so that a
// tiny input cannot ask for a huge output.
const maxExponent = 400

// Epoch milliseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z:
// the range of four-digit years.
const (
	minEpochMillis = -62135596800000
	maxEpochMillis = 253402300799999
)

// FormatValue renders a non-null value as the string HubSpot expects for
// property p:
//
//   - bool: [FormatBool]
//   - number: [FormatNumber]
//   - date: [FormatDate]
//   - datetime: [FormatDateTime]
//   - enumeration with fieldType checkbox (multi-select): an array's
//     elements ';'-joined (strings as written, numbers as their JSON text,
//     booleans as true/false; an element holding ';', an object, an array
//     or null is an error); a single value as for a single select.
//   - enumeration with fieldType booleancheckbox: [FormatBool].
//   - other enumerations (select, radio): a string, number or boolean as
//     text, or an array of exactly one of those.
//   - string, phone_number and any other type: strings exactly as written
//     ("+44 20 7946 0000", "007" and "" stay as they are), numbers as their
//     JSON text, booleans as true/false, arrays of strings, numbers and
//     booleans ';'-joined, other arrays and objects as compact JSON.
//
// FormatValue does not cut values; see [Truncate].
func FormatValue(v gjson.Result, p Property) (string, error) {
	if v.Type == gjson.Null {
		return "", errors.New("value is null")
	}
	switch p.Type {
	case TypeBool:
		return FormatBool(v)
	case TypeNumber:
		return FormatNumber(v)
	case TypeDate:
		return FormatDate(v)
	case TypeDateTime:
		return FormatDateTime(v)
	case TypeEnumeration:
		var out string
		var err error
		switch p.FieldType {
		case FieldCheckbox:
			out, err = formatOptions(v)
		case FieldBooleanCheckbox:
			return FormatBool(v)
		default:
			out, err = formatOption(v)
		}
		if err != nil || len(p.Options) == 0 || out == "" {
			return out, err
		}
		return matchOptions(out, p)
	default:
		return formatText(v), nil
	}
}

// matchOptions maps each ';'-separated value to the option it names, by
// value or label, ignoring case.
func matchOptions(values string, p Property) (string, error) {
	parts := strings.Split(values, ";")
	for i, v := range parts {
		if v == "" {
			continue
		}
		matched := false
		for _, o := range p.Options {
			if strings.EqualFold(v, o.Value) || strings.EqualFold(v, o.Label) {
				parts[i], matched = o.Value, true
				break
			}
		}
		if !matched {
			return "", fmt.Errorf("value %s is not one of the options of %s", quote(v), p.Name)
		}
	}
	return strings.Join(parts, ";"), nil
}

// FormatBool renders a bool property value: JSON true and false, and the
// strings "true" and "false" in any case with surrounding spaces ignored,
// become "true" and "false". Anything else (1, "yes", "") is an error.
func FormatBool(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.True:
		return "true", nil
	case gjson.False:
		return "false", nil
	case gjson.String:
		s := strings.TrimSpace(v.Str)
		switch {
		case strings.EqualFold(s, "true"):
			return "true", nil
		case strings.EqualFold(s, "false"):
			return "false", nil
		}
		return "", fmt.Errorf("value %s is not true or false", quote(v.Str))
	}
	return "", fmt.Errorf("value is %s, not true or false", describe(v))
}

// FormatNumber renders a number property value. JSON numbers and numeric
// strings (surrounding spaces ignored, an optional sign, digits, an
// optional fraction and exponent) are accepted; booleans, "", "1,000",
// "NaN" and everything else are errors.
//
// The result is the number's exact decimal text with no exponent: digits are
// never re-formatted through floating point, so big integers and long
// fractions keep every digit. "1e3" becomes "1000", "1.5E-3" "0.0015",
// "+007" "7"; "1234.50" stays "1234.50". Exponents beyond ±400 are errors.
func FormatNumber(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.Number:
		return plainDecimal(v.Raw)
	case gjson.String:
		return plainDecimal(strings.TrimSpace(v.Str))
	}
	return "", fmt.Errorf("value is %s, not a number", describe(v))
}

// FormatDate renders a date property value as YYYY-MM-DD, the format
// HubSpot recommends for dates:
//
//   - a string YYYY-MM-DD is kept as written (after checking it is a real
//     day);
//   - a time with an offset (RFC 3339, 'T' or ' ' between date and time)
//     gives the calendar date as written in its own offset:
//     "2026-03-01T23:30:00-05:00" is 2026-03-01, not the UTC date;
//   - a time without an offset gives the date as written;
//   - a number, or a numeric string, is an epoch time (seconds when its
//     magnitude is below [EpochSecondsBelow], else milliseconds) and gives
//     its UTC date.
//
// Anything else, and years outside 0001-9999, are errors.
func FormatDate(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.String:
		s := strings.TrimSpace(v.Str)
		if isDateOnly(s) {
			return s, nil
		}
		if t, ok := parseTime(s); ok {
			return t.Format(DateLayout), nil
		}
		if t, err := parseEpoch(s); err == nil {
			return t.Format(DateLayout), nil
		} else if !isNotNumber(err) {
			return "", err
		}
		return "", fmt.Errorf("value %s is not a date (want YYYY-MM-DD, an RFC 3339 time or epoch milliseconds)", quote(v.Str))
	case gjson.Number:
		t, err := parseEpoch(v.Raw)
		if err != nil {
			return "", err
		}
		return t.Format(DateLayout), nil
	}
	return "", fmt.Errorf("value is %s, not a date", describe(v))
}

// FormatDateTime renders a datetime property value as ISO 8601 in UTC with
// milliseconds ([DateTimeLayout], for example 2020-02-29T03:30:17.000Z):
//
//   - a time with an offset (RFC 3339, 'T' or ' ' between date and time) is
//     converted to UTC; digits beyond milliseconds are dropped;
//   - a time without an offset is read as UTC;
//   - a date YYYY-MM-DD is midnight UTC of that day;
//   - a number, or a numeric string, is an epoch time: seconds when its
//     magnitude is below [EpochSecondsBelow] (1700000000 is
//     2023-11-14T22:13:20.000Z), else milliseconds (1700000000000 is the
//     same instant).
//
// Anything else, and years outside 0001-9999, are errors.
func FormatDateTime(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.String:
		s := strings.TrimSpace(v.Str)
		if isDateOnly(s) {
			return s + "T00:00:00.000Z", nil
		}
		if t, ok := parseTime(s); ok {
			t = t.UTC()
			if t.Year() < 1 || t.Year() > 9999 {
				return "", fmt.Errorf("value %s is outside the years 0001-9999 in UTC", quote(v.Str))
			}
			return t.Format(DateTimeLayout), nil
		}
		if t, err := parseEpoch(s); err == nil {
			return t.Format(DateTimeLayout), nil
		} else if !isNotNumber(err) {
			return "", err
		}
		return "", fmt.Errorf("value %s is not a date and time (want RFC 3339 or epoch milliseconds)", quote(v.Str))
	case gjson.Number:
		t, err := parseEpoch(v.Raw)
		if err != nil {
			return "", err
		}
		return t.Format(DateTimeLayout), nil
	}
	return "", fmt.Errorf("value is %s, not a date and time", describe(v))
}

// Truncate cuts s to at most limit characters (limit <= 0: no cut).
// Characters are counted as HubSpot's limits count them, in UTF-16 code
// units: one for most characters, two for those outside the Basic
// Multilingual Plane (emoji). The cut never splits a UTF-8 sequence.
func Truncate(s string, limit int) string {
	if limit <= 0 || len(s) <= limit {
		return s
	}
	units := 0
	for i, r := range s {
		n := 1
		if r > 0xFFFF {
			n = 2
		}
		if units+n > limit {
			return s[:i]
		}
		units += n
	}
	return s
}

// formatText renders a value for a string-like property.
func formatText(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Number:
		return v.Raw
	case gjson.True:
		return "true"
	case gjson.False:
		return "false"
	}
	if v.IsArray() {
		if s, ok := joinScalars(v); ok {
			return s
		}
	}
	return compactJSON(v)
}

// joinScalars ';'-joins an array of strings, numbers and booleans; ok is
// false if it holds anything else.
func joinScalars(v gjson.Result) (string, bool) {
	var b strings.Builder
	ok := true
	first := true
	v.ForEach(func(_, e gjson.Result) bool {
		switch e.Type {
		case gjson.String, gjson.Number, gjson.True, gjson.False:
		default:
			ok = false
			return false
		}
		if !first {
			b.WriteByte(';')
		}
		first = false
		b.WriteString(formatText(e))
		return true
	})
	return b.String(), ok
}

// formatOptions renders a multi-select (checkbox) value.
func formatOptions(v gjson.Result) (string, error) {
	if !v.IsArray() {
		return formatOption(v)
	}
	var b strings.Builder
	var err error
	i := 0
	v.ForEach(func(_, e gjson.Result) bool {
		var s string
		switch e.Type {
		case gjson.String, gjson.Number, gjson.True, gjson.False:
			s = formatText(e)
		default:
			err = fmt.Errorf("value is %s, not an option", describe(e))
		}
		if err == nil && strings.Contains(s, ";") {
			err = fmt.Errorf("option %s holds ';', which separates options", quote(s))
		}
		if err != nil {
			err = fmt.Errorf("element %d: %w", i, err)
			return false
		}
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(s)
		i++
		return true
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// formatOption renders a single-select value.
func formatOption(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.String, gjson.Number, gjson.True, gjson.False:
		return formatText(v), nil
	}
	if v.IsArray() {
		elems := v.Array()
		if len(elems) == 1 {
			return formatOption(elems[0])
		}
		return "", fmt.Errorf("value is an array of %d, but the property takes one option", len(elems))
	}
	return "", fmt.Errorf("value is %s, not an option", describe(v))
}

// compactJSON returns the JSON text of v without insignificant spaces.
func compactJSON(v gjson.Result) string {
	return gjson.Get(v.Raw, "@ugly").Raw
}

// notNumberError is text that is not numeric at all, as opposed to a
// number out of range.
type notNumberError struct{ text string }

func (e notNumberError) Error() string { return "value " + quote(e.text) + " is not a number" }

func isNotNumber(err error) bool {
	var nn notNumberError
	return errors.As(err, &nn)
}

// parseEpoch reads numeric text as epoch seconds or milliseconds.
func parseEpoch(s string) (time.Time, error) {
	dec, err := plainDecimal(s)
	if err != nil {
		if isNotNumber(err) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("epoch time %s: %w", s, err)
	}
	f, err := strconv.ParseFloat(dec, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("epoch time %s is out of range", s)
	}
	ms := f
	if math.Abs(f) < EpochSecondsBelow {
		ms = f * 1000
	}
	ms = math.Floor(ms)
	if ms < minEpochMillis || ms > maxEpochMillis {
		return time.Time{}, fmt.Errorf("epoch time %s is outside the years 0001-9999", s)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// Layouts of times [parseTime] accepts. When parsing, Go accepts a
// fractional second after the seconds even if the layout has none.
var timeLayouts = [...]string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
}

// parseTime reads a time with or without an offset; a time without one is
// in UTC.
func parseTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05") || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isInstant reports whether s is an RFC 3339 time with an offset.
func isInstant(s string) bool {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// isDateOnly reports whether s is a real day written YYYY-MM-DD.
func isDateOnly(s string) bool {
	if len(s) != len(DateLayout) || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, err := time.Parse(DateLayout, s)
	return err == nil
}

// plainDecimal checks that s is a decimal number (optional sign, digits,
// optional fraction, optional exponent) and writes it without exponent,
// plus sign or leading zeros.
func plainDecimal(s string) (string, error) {
	i := 0
	neg, plus := false, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg, plus = s[i] == '-', s[i] == '+'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	fracPart := ""
	dot := false
	if i < len(s) && s[i] == '.' {
		dot = true
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracPart = s[start:i]
	}
	if intPart == "" && fracPart == "" {
		return "", notNumber(s)
	}
	exp, hasExp := 0, false
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		hasExp = true
		i++
		expNeg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			expNeg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			if exp <= maxExponent {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == start {
			return "", notNumber(s)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return "", notNumber(s)
	}
	if exp > maxExponent || exp < -maxExponent {
		return "", fmt.Errorf("number %s is out of range (exponent beyond ±%d)", s, maxExponent)
	}
	leadingZero := len(intPart) > 1 && intPart[0] == '0'
	if !plus && !hasExp && !leadingZero && intPart != "" && (!dot || fracPart != "") {
		return s, nil // already plain
	}

	digits := intPart + fracPart
	point := len(intPart) + exp
	var whole, frac string
	switch {
	case point <= 0:
		whole, frac = "0", strings.Repeat("0", -point)+digits
	case point >= len(digits):
		whole = digits + strings.Repeat("0", point-len(digits))
	default:
		whole, frac = digits[:point], digits[point:]
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	out := whole
	if frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(digits, "0") != "" {
		out = "-" + out
	}
	return out, nil
}

func notNumber(s string) error { return notNumberError{text: s} }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// describe names a value's JSON kind for error messages.
func describe(v gjson.Result) string {
	switch v.Type {
	case gjson.Null:
		return "null"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Number:
		return "the number " + v.Raw
	case gjson.String:
		return "the string " + quote(v.Str)
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

// quote quotes a value for an error message, shortened to 64 characters.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(Truncate(s, max)) + "..."
	}
	return strconv.Quote(s)
}
