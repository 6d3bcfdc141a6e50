package transforms

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// formatCase is one value, written as JSON, and what a formatter makes of it.
type formatCase struct {
	name    string
	json    string
	want    string
	wantErr string // a substring of the error; "" for no error
}

func runFormat(t *testing.T, format func(gjson.Result) (string, error), tests []formatCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := format(gjson.Parse(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("format(%s) = %q, %v; want an error containing %q", tt.json, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("format(%s) = %q, %v; want %q", tt.json, got, err, tt.want)
			}
		})
	}
}

func TestFormatDate(t *testing.T) {
	runFormat(t, FormatDate, []formatCase{
		{"A literal date is kept as written.", `"2026-03-01"`, "2026-03-01", ""},
		{"A date with surrounding spaces is trimmed.", `" 2026-03-01 "`, "2026-03-01", ""},
		{"An instant late in the evening west of UTC keeps its own date, not the UTC one.", `"2026-03-01T23:30:00-05:00"`, "2026-03-01", ""},
		{"An instant just after midnight east of UTC keeps its own date, not the UTC one.", `"2026-03-02T00:30:00+05:00"`, "2026-03-02", ""},
		{"An instant just before midnight at +14:00 keeps its own date.", `"2026-03-01T23:59:59+14:00"`, "2026-03-01", ""},
		{"An instant just after midnight at +14:00 is the next day, a day and a half ahead of -12:00.", `"2026-03-02T00:00:00+14:00"`, "2026-03-02", ""},
		{"An instant just before midnight at -12:00 keeps its own date.", `"2026-03-01T23:59:59.999-12:00"`, "2026-03-01", ""},
		{"An instant just after midnight at -12:00 is the next day.", `"2026-03-02T00:00:00-12:00"`, "2026-03-02", ""},
		{"A UTC instant gives its UTC date.", `"2026-03-01T23:30:00Z"`, "2026-03-01", ""},
		{"A time with a space instead of T is accepted.", `"2026-03-01 23:30:00+01:00"`, "2026-03-01", ""},
		{"A time without offset gives the date as written.", `"2026-03-01T23:30:00"`, "2026-03-01", ""},
		{"Epoch milliseconds give their UTC date.", `1430438400000`, "2015-05-01", ""},
		{"Epoch milliseconds late in the UTC day give that UTC day.", `1430524799999`, "2015-05-01", ""},
		{"Epoch seconds give their UTC date.", `1700000000`, "2023-11-14", ""},
		{"Epoch milliseconds in a string give their UTC date.", `"1430438400000"`, "2015-05-01", ""},
		{"Epoch milliseconds in exponent form give their UTC date.", `1.4304384e12`, "2015-05-01", ""},
		{"A negative epoch is before 1970.", `-86400`, "1969-12-31", ""},
		{"A day that does not exist is an error.", `"2026-02-30"`, "", "not a date"},
		{"Free text is an error.", `"next tuesday"`, "", "not a date"},
		{"A boolean is an error.", `true`, "", "not a date"},
		{"An epoch beyond the year 9999 is an error.", `1e16`, "", "outside the years"},
		{"An empty string is an error.", `""`, "", "not a date"},
	})
}

func TestFormatDateTime(t *testing.T) {
	runFormat(t, FormatDateTime, []formatCase{
		{"An instant with an offset becomes UTC.", `"2026-03-01T23:30:00-05:00"`, "2026-03-02T04:30:00.000Z", ""},
		{"An instant at +14:00 becomes UTC on the previous day.", `"2026-03-02T00:00:00+14:00"`, "2026-03-01T10:00:00.000Z", ""},
		{"An instant at -12:00 becomes UTC on the next day.", `"2026-03-01T23:59:59.999-12:00"`, "2026-03-02T11:59:59.999Z", ""},
		{"Digits beyond milliseconds are dropped.", `"2020-02-29T03:30:17.123456789Z"`, "2020-02-29T03:30:17.123Z", ""},
		{"A UTC instant without fraction gets milliseconds.", `"2020-02-29T03:30:17Z"`, "2020-02-29T03:30:17.000Z", ""},
		{"A time without offset is read as UTC.", `"2020-02-29 03:30:17"`, "2020-02-29T03:30:17.000Z", ""},
		{"A date is midnight UTC.", `"2026-03-01"`, "2026-03-01T00:00:00.000Z", ""},
		{"Ten-digit epoch numbers are seconds.", `1700000000`, "2023-11-14T22:13:20.000Z", ""},
		{"Thirteen-digit epoch numbers are milliseconds.", `1700000000000`, "2023-11-14T22:13:20.000Z", ""},
		{"Epoch milliseconds keep their milliseconds.", `1427997766123`, "2015-04-02T18:02:46.123Z", ""},
		{"Fractional epoch seconds keep milliseconds.", `1700000000.25`, "2023-11-14T22:13:20.250Z", ""},
		{"Numeric strings are epoch seconds too.", `"1700000000"`, "2023-11-14T22:13:20.000Z", ""},
		{"Numeric strings are epoch milliseconds too.", `"1700000000000"`, "2023-11-14T22:13:20.000Z", ""},
		{"A number just below the threshold is seconds.", `99999999999`, "5138-11-16T09:46:39.000Z", ""},
		{"A number at the threshold is milliseconds.", `100000000000`, "1973-03-03T09:46:40.000Z", ""},
		{"An instant whose UTC year is 0 is an error.", `"0001-01-01T00:00:00+01:00"`, "", "outside the years"},
		{"Free text is an error.", `"yesterday"`, "", "not a date and time"},
		{"An array is an error.", `[1700000000]`, "", "not a date and time"},
	})
}

func TestFormatBool(t *testing.T) {
	runFormat(t, FormatBool, []formatCase{
		{"JSON true is true.", `true`, "true", ""},
		{"JSON false is false.", `false`, "false", ""},
		{"The string TRUE in capitals is true.", `"TRUE"`, "true", ""},
		{"The string False with spaces is false.", `" False "`, "false", ""},
		{"The string yes is an error.", `"yes"`, "", `value "yes" is not true or false`},
		{"The number 1 is an error.", `1`, "", "the number 1, not true or false"},
		{"An empty string is an error.", `""`, "", "not true or false"},
	})
}

func TestFormatNumber(t *testing.T) {
	runFormat(t, FormatNumber, []formatCase{
		{"An integer keeps its text.", `42`, "42", ""},
		{"A fraction keeps its text.", `1234.5`, "1234.5", ""},
		{"Trailing fraction zeros are kept.", `1234.50`, "1234.50", ""},
		{"A negative number keeps its sign.", `-0.25`, "-0.25", ""},
		{"A big integer keeps every digit.", `123456789012345678901234567890`, "123456789012345678901234567890", ""},
		{"A long fraction keeps every digit.", `0.1000000000000000055511151231257827`, "0.1000000000000000055511151231257827", ""},
		{"An exponent is expanded.", `1e3`, "1000", ""},
		{"A negative exponent is expanded.", `1.5E-3`, "0.0015", ""},
		{"An exponent inside the digits moves the point.", `1.2345e2`, "123.45", ""},
		{"A numeric string is a number.", `"42"`, "42", ""},
		{"A numeric string with spaces and a plus sign is a number.", `" +007.5 "`, "7.5", ""},
		{"A numeric string with a trailing dot is a number.", `"5."`, "5", ""},
		{"A numeric string with a leading dot is a number.", `".5"`, "0.5", ""},
		{"Negative zero is zero.", `"-0e5"`, "0", ""},
		{"An empty string is an error, never 0.", `""`, "", `value "" is not a number`},
		{"A phone number is an error.", `"+44 20 7946 0000"`, "", "is not a number"},
		{"A thousands separator is an error.", `"1,000"`, "", "is not a number"},
		{"NaN is an error.", `"NaN"`, "", "is not a number"},
		{"A boolean is an error.", `true`, "", "a boolean, not a number"},
		{"A huge exponent is an error.", `1e999999999999`, "", "out of range"},
	})
}

// Example property types for FormatValue tests.
var (
	stringProp   = Property{Name: "s", Type: TypeString, FieldType: FieldText}
	phoneProp    = Property{Name: "phone", Type: TypePhoneNumber, FieldType: "phonenumber"}
	checkboxProp = Property{Name: "interests", Type: TypeEnumeration, FieldType: FieldCheckbox}
	selectProp   = Property{Name: "plan", Type: TypeEnumeration, FieldType: FieldSelect}
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name    string
		prop    Property
		json    string
		want    string
		wantErr string
	}{
		{"A phone number with + stays a string.", phoneProp, `"+44 20 7946 0000"`, "+44 20 7946 0000", ""},
		{"A phone number with a leading zero stays as written.", phoneProp, `"020 7946 0000"`, "020 7946 0000", ""},
		{"A numeric phone number keeps its JSON text.", phoneProp, `442079460000`, "442079460000", ""},
		{"A string with leading zeros stays as written.", stringProp, `"007"`, "007", ""},
		{"An empty string stays empty, never 0.", stringProp, `""`, "", ""},
		{"A string keeps its spaces.", stringProp, `"  padded  "`, "  padded  ", ""},
		{"A number for a string keeps its JSON text, exponent included.", stringProp, `1e3`, "1e3", ""},
		{"A boolean for a string is true or false.", stringProp, `false`, "false", ""},
		{"An array of scalars for a string is ';'-joined.", stringProp, `["a",1,true]`, "a;1;true", ""},
		{"An array of objects for a string is compact JSON.", stringProp, `[{"a": 1}, {"b": 2}]`, `[{"a":1},{"b":2}]`, ""},
		{"An object for a string is compact JSON.", stringProp, `{"tier": "pro", "seats": 5}`, `{"tier":"pro","seats":5}`, ""},
		{"An array for a multi checkbox is ';'-joined.", checkboxProp, `["sports", "music", 3]`, "sports;music;3", ""},
		{"An empty array for a multi checkbox clears it.", checkboxProp, `[]`, "", ""},
		{"A single string for a multi checkbox is kept.", checkboxProp, `"sports"`, "sports", ""},
		{"An option holding ';' is an error.", checkboxProp, `["a;b"]`, "", "holds ';'"},
		{"A nested array in a multi checkbox is an error.", checkboxProp, `["a", ["b"]]`, "", "element 1"},
		{"A string for a select is kept.", selectProp, `"pro"`, "pro", ""},
		{"A one-element array for a select is its element.", selectProp, `["pro"]`, "pro", ""},
		{"A two-element array for a select is an error.", selectProp, `["pro", "team"]`, "", "takes one option"},
		{"An object for a select is an error.", selectProp, `{"a": 1}`, "", "not an option"},
		{"A bool property uses the bool rules.", Property{Type: TypeBool}, `"True"`, "true", ""},
		{"A boolean checkbox enumeration uses the bool rules.", Property{Type: TypeEnumeration, FieldType: FieldBooleanCheckbox}, `true`, "true", ""},
		{"A number property uses the number rules.", Property{Type: TypeNumber}, `"1e2"`, "100", ""},
		{"A date property uses the date rules.", Property{Type: TypeDate}, `1430438400000`, "2015-05-01", ""},
		{"A datetime property uses the datetime rules.", Property{Type: TypeDateTime}, `1700000000`, "2023-11-14T22:13:20.000Z", ""},
		{"An unknown type is formatted as a string.", Property{Type: "json"}, `"x"`, "x", ""},
		{"Null is an error.", stringProp, `null`, "", "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatValue(gjson.Parse(tt.json), tt.prop)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FormatValue(%s) = %q, %v; want an error containing %q", tt.json, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FormatValue(%s) = %q, %v; want %q", tt.json, got, err, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		limit int
		want  string
	}{
		{"A short string is kept.", "abc", 5, "abc"},
		{"An ASCII string is cut to the limit.", "abcdef", 4, "abcd"},
		{"Accented letters count one each.", "ééééé", 3, "ééé"},
		{"A cut never splits a UTF-8 sequence.", "aé", 1, "a"},
		{"An emoji counts two, so a cut between its halves drops it.", "ab😀", 3, "ab"},
		{"An emoji fits when two units are left.", "ab😀c", 4, "ab😀"},
		{"A limit of zero means no cut.", "abc", 0, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.s, tt.limit); got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q; want %q", tt.s, tt.limit, got, tt.want)
			}
		})
	}
}

var (
	dateShape     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	dateTimeShape = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	decimalShape  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)
)

// FuzzFormatDates feeds strings and numbers to the date, datetime and number
// formatters: none may panic, and every success has its documented shape.
func FuzzFormatDates(f *testing.F) {
	for _, s := range []string{`"2026-03-01"`, `"2026-03-01T23:30:00-05:00"`, `1700000000`, `1700000000000`, `"1e3"`, `-1e20`, `"0001-01-01T00:00:00+01:00"`, `"9999-12-31T23:59:59-12:00"`, `1.5e-400`, `"2026-13-01"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v := gjson.Parse(text)
		if s, err := FormatDate(v); err == nil {
			if !dateShape.MatchString(s) {
				t.Fatalf("FormatDate(%s) = %q, not YYYY-MM-DD", text, s)
			}
			if _, err := time.Parse(DateLayout, s); err != nil {
				t.Fatalf("FormatDate(%s) = %q, not a real day: %v", text, s, err)
			}
		}
		if s, err := FormatDateTime(v); err == nil {
			if !dateTimeShape.MatchString(s) {
				t.Fatalf("FormatDateTime(%s) = %q, not %s", text, s, DateTimeLayout)
			}
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Fatalf("FormatDateTime(%s) = %q, not RFC 3339: %v", text, s, err)
			}
		}
		if s, err := FormatNumber(v); err == nil && !decimalShape.MatchString(s) {
			t.Fatalf("FormatNumber(%s) = %q, not a plain decimal", text, s)
		}
		if s, err := FormatBool(v); err == nil && s != "true" && s != "false" {
			t.Fatalf("FormatBool(%s) = %q", text, s)
		}
	})
}

func FuzzTruncate(f *testing.F) {
	f.Add("ab😀c", 3)
	f.Add("ééé", 2)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		got := Truncate(s, limit)
		if !strings.HasPrefix(s, got) {
			t.Fatalf("Truncate(%q, %d) = %q, not a prefix", s, limit, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q, not UTF-8", s, limit, got)
		}
		if limit > 0 && len(utf16Units(got)) > limit {
			t.Fatalf("Truncate(%q, %d) = %q, longer than the limit", s, limit, got)
		}
	})
}

func utf16Units(s string) []int {
	var units []int
	for _, r := range s {
		units = append(units, int(r))
		if r > 0xFFFF {
			units = append(units, 0)
		}
	}
	return units
}

func TestEnumerationValuesMatchTheirOptions(t *testing.T) {
	industry := Property{Name: "industry", Type: TypeEnumeration, FieldType: FieldSelect,
		Options: []Option{{Value: "RETAIL", Label: "Retail"}, {Value: "COMPUTER_SOFTWARE", Label: "Computer Software"}}}
	interests := Property{Name: "interests", Type: TypeEnumeration, FieldType: FieldCheckbox,
		Options: []Option{{Value: "analytics", Label: "Analytics"}, {Value: "crm", Label: "CRM"}}}
	tests := []struct {
		name    string
		value   string
		prop    Property
		want    string
		wantErr string
	}{
		{"a value in another case becomes the option's value", `"retail"`, industry, "RETAIL", ""},
		{"an option's label becomes its value", `"Computer Software"`, industry, "COMPUTER_SOFTWARE", ""},
		{"each checkbox value is matched", `["Analytics","CRM"]`, interests, "analytics;crm", ""},
		{"a value that is no option is refused", `"Mining"`, industry, "", `value "Mining" is not one of the options of industry`},
		{"one unknown checkbox value refuses the whole value", `["crm","sms"]`, interests, "", `value "sms" is not one of the options of interests`},
		{"without options any value passes", `"anything"`, Property{Name: "x", Type: TypeEnumeration, FieldType: FieldSelect}, "anything", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatValue(gjson.Parse(tt.value), tt.prop)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
