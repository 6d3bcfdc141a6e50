package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/hubspot")

// TestTransformGolden runs `switchyard transform` on each
// testdata/hubspot/NAME.input.json and compares the requests printed with
// NAME.golden.json, and the per-message notes with NAME.notes.golden.txt.
// In NAME, ".autocreate" adds --auto-create-properties and "userid" matches
// contacts by the app_user_id property. Run with -update to rewrite them.
func TestTransformGolden(t *testing.T) {
	inputs, err := filepath.Glob("../../testdata/hubspot/*.input.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, input := range inputs {
		name := strings.TrimSuffix(filepath.Base(input), ".input.json")
		t.Run(name, func(t *testing.T) {
			args := []string{"--destination", "hubspot", "--hub-id", "4242", "--properties", "../../testdata/hubspot/properties"}
			if strings.Contains(name, ".autocreate") {
				args = append(args, "--auto-create-properties")
			}
			if strings.HasPrefix(name, "userid") {
				args = append(args, "--id-property", "app_user_id")
			}
			in, err := os.Open(input)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var stdout, stderr bytes.Buffer
			if err := transform(context.Background(), args, in, &stdout, &stderr); err != nil {
				t.Fatalf("transform: %v\n%s", err, stderr.String())
			}
			base := strings.TrimSuffix(input, ".input.json")
			compareGolden(t, base+".golden.json", stdout.Bytes())
			compareGolden(t, base+".notes.golden.txt", stderr.Bytes())
		})
	}
}

// compareGolden compares got with the golden file at path, or rewrites the
// file under -update. A requests file (.golden.json) must exist and every
// input must print requests. A notes file (.notes.golden.txt) may be absent,
// which means the case expects no notes. -update never deletes a golden
// file: output that went empty is a failure, and a notes file that is no
// longer wanted is deleted by hand.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	notes := strings.HasSuffix(path, ".notes.golden.txt")
	if len(got) == 0 && !notes {
		t.Fatalf("transform printed no requests for %s", filepath.Base(path))
	}
	want, err := os.ReadFile(path)
	if notes && os.IsNotExist(err) && len(got) == 0 {
		return
	}
	if *update {
		if len(got) == 0 {
			t.Fatalf("transform printed no notes, but %s exists: delete it by hand if no notes are expected", filepath.Base(path))
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/switchyard -run TestTransformGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs\n--- got\n%s\n--- want\n%s", filepath.Base(path), got, want)
	}
}

func TestTransformRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"a line that is not JSON", "{nope\n", nil, "stdin line 1 is not valid JSON"},
		{"a destination without a dry run", "", []string{"--config", writeConfig(t, "destinations:\n  - {name: hook, type: webhook, webhook: {url: \"http://127.0.0.1:1/\"}}\n"), "--destination", "hook"}, "only hubspot"},
		{"a destination not in the config", "", []string{"--destination", "crm"}, `no destination named "crm"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := transform(context.Background(), append([]string{"--hub-id", "1"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTransformTakesAPropertiesDirWithoutPropertyLists checks that a
// --properties folder holding neither contacts.json nor companies.json
// means a new portal's properties, and that empty input prints nothing.
func TestTransformTakesAPropertiesDirWithoutPropertyLists(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := transform(context.Background(), []string{"--hub-id", "1", "--properties", t.TempDir()}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("a dir without contacts.json or companies.json uses the defaults; got %v", err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("empty input printed %q, want nothing", stdout.String())
	}
	var out bytes.Buffer
	identify := `{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}` + "\n"
	if err := transform(context.Background(), []string{"--hub-id", "1", "--properties", t.TempDir()}, strings.NewReader(identify), &out, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"a@example.com"`) {
		t.Fatalf("an identify with the default properties printed %q, want a contact upsert carrying its email", out.String())
	}
}

// TestTransformUsesTheConfiguredDestination checks that the dry run maps
// with the named destination's own settings, and that flags override them.
func TestTransformUsesTheConfiguredDestination(t *testing.T) {
	cfgPath := writeConfig(t, `destinations:
  - name: crm
    type: hubspot
    hubspot:
      token: not-used-by-a-dry-run
      hub_id: 777
      id_property: app_user_id
      event_names: {"Order Completed": pe777_purchase}
      skip_event_definitions: true
`)
	stdin := `{"type":"identify","userId":"u1","traits":{"firstName":"Ann"},"timestamp":"2026-11-01T10:00:00Z"}
{"type":"track","userId":"u1","event":"Order Completed","properties":{"total":5},"timestamp":"2026-11-01T10:00:01Z"}
`
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := transform(context.Background(), append([]string{"--config", cfgPath, "--destination", "crm", "--properties", "../../testdata/hubspot/properties"}, args...), strings.NewReader(stdin), &stdout, &stderr); err != nil {
			t.Fatalf("transform: %v\n%s", err, stderr.String())
		}
		return stdout.String()
	}
	out := run()
	for _, want := range []string{`"idProperty":"app_user_id"`, `"id":"u1"`, `"eventName":"pe777_purchase"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run of destination crm lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "event-definitions") {
		t.Errorf("skip_event_definitions is set, yet the dry run defines events:\n%s", out)
	}
	if out := run("--id-property", "email"); strings.Contains(out, "app_user_id") {
		t.Errorf("--id-property email did not override the destination's id_property:\n%s", out)
	}
}
