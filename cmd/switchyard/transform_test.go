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

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) && len(got) == 0 {
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
		{"a destination without a dry run", "", []string{"--destination", "webhook"}, "only hubspot"},
		{"a properties dir that is not a property list", "", []string{"--properties", "../../testdata"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := transform(context.Background(), append([]string{"--hub-id", "1"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("a dir without contacts.json or companies.json uses the defaults; got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
