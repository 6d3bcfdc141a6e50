package sandbox_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/hubspot/sandbox"
)

// schemasDir holds the script that checks the sandbox's answers against
// HubSpot's official Python clients, and its pinned requirements.
const schemasDir = "../../../testdata/hubspot-schemas"

// TestSandboxAnswersMatchHubSpotSchemas serves a sandbox on a port and runs
// testdata/hubspot-schemas/check.py against it: the script calls every
// endpoint the sandbox serves through HubSpot's official Python clients
// (hubspot-api-client 12.0.0, and hubspot-sdk 0.1.0a9 for the event
// definitions), lets their generated models deserialize each answer, and
// checks each JSON object strictly against its model: every required
// attribute present, no undeclared key, every value of the declared type.
// Each mismatch is one line of the script's output.
func TestSandboxAnswersMatchHubSpotSchemas(t *testing.T) {
	python := schemasDir + "/.venv/bin/python"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: install HubSpot's Python clients with scripts/sdk-deps.sh", python)
	}
	s, _ := newSandbox(t, sandbox.Config{Now: time.Now})
	srv := httptest.NewServer(s)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, schemasDir+"/check.py", srv.URL).CombinedOutput()
	t.Logf("check.py:\n%s", out)
	if err != nil {
		t.Fatalf("check.py: %v; the sandbox's answers differ from HubSpot's models:\n%s", err, mismatchLines(string(out)))
	}
	if !strings.Contains(string(out), " answers checked, 0 mismatches") {
		t.Fatalf("check.py exited 0 without its closing count")
	}
}

// mismatchLines keeps the script's MISMATCH lines, or all of its output if
// it has none (a crash).
func mismatchLines(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "MISMATCH ") {
			keep = append(keep, line)
		}
	}
	if len(keep) == 0 {
		return out
	}
	return strings.Join(keep, "\n")
}
