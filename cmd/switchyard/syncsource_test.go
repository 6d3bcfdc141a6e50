package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/hubspot/api"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/embedded"
	hubspotsource "github.com/switchyard/switchyard/sources/hubspot"
)

// syncConfig is a config with one hubspot source, crm-in, whose gateway
// address is addr.
func syncConfig(t *testing.T, addr string) string {
	return writeConfig(t, `addr: `+addr+`
sources:
  - name: crm-in
    type: hubspot
    hubspot:
      token: pat-sync
      url: http://127.0.0.1:1
      client_secret: s
      contacts: {firstname: first_name}
`)
}

// fakeParts builds f as every source's syncer, handing it the directory
// the command opened.
func fakeParts(f *fakeSyncer, dirs chan<- *hubspotsource.Directory) sourceParts {
	return sourceParts{
		newSyncer: func(_ *hubspotsource.Processor, dir *hubspotsource.Directory, _ *zap.Logger) syncer {
			if dirs != nil {
				dirs <- dir
			}
			return f
		},
		newEmailPoller: func(hubspotsource.Config, queue.Log, *api.Client, *hubspotsource.Directory, *hubspotsource.Metrics, *zap.Logger) (runner, error) {
			return func(ctx context.Context) error { <-ctx.Done(); return nil }, nil
		},
	}
}

// adminServer serves the admin endpoint of crm-in, synced by f, with token.
func adminServer(t *testing.T, token string, f *fakeSyncer) *httptest.Server {
	srv := httptest.NewServer(adminFixture(t, token, f))
	t.Cleanup(srv.Close)
	return srv
}

func TestSyncAsksTheProcessAtAddrAndFollowsIt(t *testing.T) {
	f := &fakeSyncer{source: "crm-in", pages: 4, release: make(chan struct{})}
	srv := adminServer(t, "tok", f)
	go func() {
		for range 4 {
			time.Sleep(150 * time.Millisecond)
			f.release <- struct{}{}
		}
	}()
	var stderr bytes.Buffer
	// No config: the source need not be configured here.
	err := syncSource(t.Context(), []string{"--addr", srv.Listener.Addr().String(), "--admin-token", "tok", "--source", "crm-in", "--full"}, &stderr, fakeParts(f, nil))
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sync of crm-in: done, 40 records read, 40 calls appended") {
		t.Fatalf("the output does not show the sync done:\n%s", stderr.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 || !f.requests[0].Full {
		t.Fatalf("the process ran %+v, want one full sync", f.requests)
	}
}

func TestSyncAtAddrReportsRefusalsAndFailures(t *testing.T) {
	f := &fakeSyncer{source: "crm-in", pages: 1, fail: fmt.Errorf("HubSpot answered 401")}
	srv := adminServer(t, "tok", f)
	addr := srv.Listener.Addr().String()
	run := func(args ...string) (error, string) {
		var stderr bytes.Buffer
		err := syncSource(t.Context(), append([]string{"--addr", addr, "--source", "crm-in"}, args...), &stderr, fakeParts(f, nil))
		return err, stderr.String()
	}
	if err, out := run("--admin-token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("with a wrong token: %v\n%s", err, out)
	}
	t.Setenv("SWITCHYARD_ADMIN_TOKEN", "tok")
	if err, out := run("--source", "other"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("an unknown source: %v\n%s", err, out)
	}
	if err, out := run(); err == nil || !strings.Contains(err.Error(), "sync failed after 10 records: HubSpot answered 401") {
		t.Fatalf("a failing sync: %v\n%s", err, out)
	}
	if err, out := run("--since", "tomorrow"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("a bad --since: %v\n%s", err, out)
	}
	if err, _ := run("--since", "2026-01-01T00:00:00Z", "--full"); err == nil || !strings.Contains(err.Error(), "not to a full sync") {
		t.Fatalf("--since with --full: %v", err)
	}
	var stderr bytes.Buffer
	if err := syncSource(t.Context(), []string{"--addr", addr}, &stderr, fakeParts(f, nil)); err == nil || !strings.Contains(err.Error(), "--source is required") {
		t.Fatalf("no --source: %v", err)
	}
}

// TestSyncAsksTheProcessHoldingTheEmbeddedLog holds the embedded log, as a
// running serve does: sync asks the process at the configured address.
func TestSyncAsksTheProcessHoldingTheEmbeddedLog(t *testing.T) {
	f := &fakeSyncer{source: "crm-in", pages: 2}
	srv := adminServer(t, "", f)
	dataDir := t.TempDir()
	held, err := embedded.Open(embedded.Config{Dir: dataDir}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	local := &fakeSyncer{source: "crm-in", pages: 1}
	var stderr bytes.Buffer
	cfg := syncConfig(t, srv.Listener.Addr().String())
	if err := syncSource(t.Context(), []string{"--config", cfg, "--data-dir", dataDir, "--source", "crm-in", "--since", "2026-01-01T00:00:00Z"}, &stderr, fakeParts(local, nil)); err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 || f.requests[0].Full || !f.requests[0].Since.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the running process ran %+v, want the catch-up since 2026-01-01", f.requests)
	}
	if local.ran {
		t.Fatal("the sync also ran in the command's own process")
	}
	if !strings.Contains(stderr.String(), "held by a running switchyard") {
		t.Fatalf("the output does not say why it asked the running process:\n%s", stderr.String())
	}
}

// TestSyncRunsLocallyWithTheDirectoryUpToDate runs the sync in the command's
// process, on an embedded log no process holds: the syncer runs with a
// directory that knows the users identified before the command began.
func TestSyncRunsLocallyWithTheDirectoryUpToDate(t *testing.T) {
	dataDir := t.TempDir()
	log, err := embedded.Open(embedded.Config{Dir: dataDir}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Publish(t.Context(), queue.Message{Topic: "events", Key: []byte("u-7"), Value: []byte(`{"type":"identify","userId":"u-7","traits":{"email":"ada@example.com"}}`)}); err != nil {
		t.Fatal(err)
	}
	log.Close()

	f := &fakeSyncer{source: "crm-in", pages: 3}
	dirs := make(chan *hubspotsource.Directory, 1)
	var known string
	parts := fakeParts(f, dirs)
	newSyncer := parts.newSyncer
	parts.newSyncer = func(p *hubspotsource.Processor, dir *hubspotsource.Directory, l *zap.Logger) syncer {
		known, _ = dir.UserByEmail("ada@example.com")
		return newSyncer(p, dir, l)
	}
	var stderr bytes.Buffer
	args := []string{"--config", syncConfig(t, "127.0.0.1:1"), "--data-dir", dataDir, "--source", "crm-in", "--full"}
	if err := syncSource(t.Context(), args, &stderr, parts); err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr.String())
	}
	if known != "u-7" {
		t.Fatalf("the directory the syncer got knows ada@example.com as %q, want u-7", known)
	}
	if len(f.requests) != 1 || !f.requests[0].Full {
		t.Fatalf("the syncer ran %+v, want one full sync", f.requests)
	}
	if !strings.Contains(stderr.String(), "sync of crm-in: done, 30 records read") {
		t.Fatalf("the output does not show the sync done:\n%s", stderr.String())
	}

	// Interrupted, it says so and fails.
	stuck := &fakeSyncer{source: "crm-in", pages: 3, release: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	stderr.Reset()
	err = syncSource(ctx, args, &stderr, fakeParts(stuck, nil))
	if err == nil || !strings.Contains(err.Error(), "interrupted after 0 records; run it again to resume") {
		t.Fatalf("an interrupted sync: %v\n%s", err, stderr.String())
	}
	if !errors.As(err, new(interruptedError)) {
		t.Fatalf("an interrupted sync ends with %T, want the interruptedError whose exit status is %d", err, interruptedStatus)
	}
	// Through run, the exit status says how it ended.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	stuck2 := &fakeSyncer{source: "crm-in", pages: 3, release: make(chan struct{})}
	if code := runWith(ctx2, append([]string{"sync"}, args...), io.Discard, &stderr, fakeParts(stuck2, nil)); code != interruptedStatus {
		t.Fatalf("an interrupted sync exits %d, want %d", code, interruptedStatus)
	}
	failing := &fakeSyncer{source: "crm-in", pages: 1, fail: errors.New("HubSpot answered 500")}
	if code := runWith(t.Context(), append([]string{"sync"}, args...), io.Discard, &stderr, fakeParts(failing, nil)); code != 1 {
		t.Fatalf("a failed sync exits %d, want 1", code)
	}

	// A source the config does not have.
	if err := syncSource(t.Context(), []string{"--config", syncConfig(t, "127.0.0.1:1"), "--data-dir", dataDir, "--source", "nope"}, &stderr, parts); err == nil || !strings.Contains(err.Error(), `no source of type hubspot named "nope"`) {
		t.Fatalf("an unknown source: %v", err)
	}
}
