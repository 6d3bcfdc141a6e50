package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// schemathesisBin is schemathesis in the virtualenv scripts/sdk-deps.sh
// installs from testdata/schemathesis/requirements.txt.
const schemathesisBin = "../../testdata/schemathesis/.venv/bin/schemathesis"

// Schemathesis's settings: a fixed seed, so a failure is found again by the
// next run, and few enough examples per operation that the run ends within
// a minute.
const (
	schemathesisSeed     = "20261201"
	schemathesisExamples = "25"
)

// TestGatewayFollowsItsOpenAPIDocument runs schemathesis against switchyard
// serve's /openapi.json, with every check on: no 5xx, every status, content
// type, header and body as the document says, data the document refuses
// refused and data it accepts accepted, 401 without the write key, 405 for
// other methods.
func TestGatewayFollowsItsOpenAPIDocument(t *testing.T) {
	bin, err := filepath.Abs(schemathesisBin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: install it with scripts/sdk-deps.sh", bin)
	}
	const key = "openapi-key"
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--data-dir", t.TempDir(), "--write-key", key)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "http://"+addr+"/openapi.json",
		"--checks", "all",
		"--auth", key+":",
		"--max-examples", schemathesisExamples,
		"--seed", schemathesisSeed,
		"--workers", "2",
		"--generation-database", "none",
		"--no-color")
	cmd.Dir = t.TempDir() // for whatever it writes
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	summary := out.String()
	if i := strings.Index(summary, "SUMMARY"); i >= 0 {
		summary = summary[i:]
	}
	if err != nil {
		t.Fatalf("schemathesis (%v): %v\n%s\nswitchyard's log:\n%s", time.Since(start).Round(time.Second), err, out.String(), srv.logs())
	}
	// The document has 21 operations; ingest's tests check that they are the routes served.
	if !strings.Contains(summary, "Selected: 21/21") {
		t.Fatalf("schemathesis did not test the 21 operations of the document:\n%s", out.String())
	}
	t.Logf("schemathesis (%v):\n%s", time.Since(start).Round(time.Second), summary)
}
