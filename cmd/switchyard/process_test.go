package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestAcknowledgedMessagesSurviveSIGKILL posts batches from several
// goroutines, kills the server with SIGKILL mid-stream, restarts it and
// checks that every message that got a 200 is in the log.
func TestAcknowledgedMessagesSurviveSIGKILL(t *testing.T) {
	dataDir := t.TempDir()
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--data-dir", dataDir, "--write-key", "crash-key")

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	stopPosting := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for n := 0; ; n++ {
				select {
				case <-stopPosting:
					return
				default:
				}
				ids := make([]string, 20)
				for i := range ids {
					ids[i] = fmt.Sprintf("w%d-b%d-m%d", w, n, i)
				}
				status, err := postBatch(client, addr, "crash-key", ids)
				if err != nil {
					return // the server is gone
				}
				if status == 200 {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill once a good number of batches were acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 5000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.kill()
	close(stopPosting)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no batch was acknowledged before the kill\n%s", srv.logs())
	}

	// The restarted server opens the same log; a graceful stop then frees
	// the data dir for tail.
	restarted := start(t, addr, "serve", "--data-dir", dataDir, "--write-key", "crash-key")
	if status, err := postBatch(http.DefaultClient, addr, "crash-key", []string{"after-restart-0"}); err != nil || status != 200 {
		t.Fatalf("after restart: status %d, %v", status, err)
	}
	restarted.stop(t, syscall.SIGTERM)

	inLog := map[string]bool{}
	for _, m := range tailAll(t, "--data-dir", dataDir) {
		inLog[m.Get("messageId").String()] = true
	}
	var missing []string
	for id := range acked {
		if !inLog[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages are missing after SIGKILL, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	if !inLog["after-restart-0"] {
		t.Fatal("the message sent after the restart is missing")
	}
	t.Logf("%d acknowledged messages, all in the log after SIGKILL (%d stored in all)", len(acked), len(inLog))
}

func TestTailReadsEventsAndDeadLetters(t *testing.T) {
	dataDir := t.TempDir()
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--data-dir", dataDir, "--write-key", "k")
	post(t, addr, "/v1/batch", "k", `{"batch":[{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}},{"type":"track","userId":"u1"}]}`)
	ready, err := http.Get("http://" + addr + "/readyz")
	if err != nil || ready.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", ready, err)
	}
	ready.Body.Close()
	if n, ok := scrapeCounter(addr, `switchyard_gateway_messages_total{outcome="accepted"}`); !ok || n != 1 {
		t.Fatalf("/metrics: %v accepted messages (reported: %v), want 1", n, ok)
	}

	// While the server holds the data dir, tail says so.
	cmd := exec.Command(binary, "tail", "--data-dir", dataDir, "--from-beginning", "--exit")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("tail on a held data dir: %v\n%s", err, out)
	}
	srv.stop(t, syscall.SIGTERM)
	if !strings.Contains(srv.logs(), "stopped") {
		t.Fatalf("no graceful stop in the log:\n%s", srv.logs())
	}

	events := tailAll(t, "--data-dir", dataDir, "--topic", "events")
	if len(events) != 1 || events[0].Get("traits.email").String() != "a@example.com" {
		t.Fatalf("events: %v", events)
	}
	dlq := tailAll(t, "--data-dir", dataDir, "--topic", "dlq")
	if len(dlq) != 1 || !strings.Contains(dlq[0].Get("reason").String(), "event") {
		t.Fatalf("dlq: %v", dlq)
	}
	meta := tailAll(t, "--data-dir", dataDir, "--topic", "events", "--meta")
	if meta[0].Get("topic").String() != "events" || meta[0].Get("key").String() != "u1" || !meta[0].Get("value.traits").Exists() {
		t.Fatalf("--meta: %s", meta[0].Raw)
	}

	// With no config, serve delivered to a default destination named
	// hubspot; replay finds it on the same data dir.
	replay := exec.Command(binary, "replay", "--data-dir", dataDir, "--destination", "hubspot", "--from", "0", "--dry-run")
	var stdout, stderr strings.Builder
	replay.Stdout, replay.Stderr = &stdout, &stderr
	if err := replay.Run(); err != nil {
		t.Fatalf("replay of the default destination: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 || gjson.Get(lines[0], "destination").String() != "hubspot" || gjson.Get(lines[0], "event.userId").String() != "u1" {
		t.Fatalf("replay --dry-run printed %q", stdout.String())
	}
}

func TestBadConfigurationStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte("gateway:\n  max_in_flight: lots\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a bad value names its key", []string{"serve", "--config", path}, "gateway.max_in_flight"},
		{"no write key says how to give one", []string{"serve", "--data-dir", dir}, "sources"},
		{"an unknown command is refused", []string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %v, output %s; want a failure naming %q", err, out, tt.want)
			}
		})
	}
}

func TestHubSpotSandboxCommand(t *testing.T) {
	addr := freeAddr(t)
	srv := startReady(t, addr, "/_sandbox/stats", "hubspot-sandbox", "--tier", "professional", "--tokens", "tok")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/crm/v3/properties/contacts", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the sandbox did not answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !gjson.GetBytes(body, `results.#(name=="email")`).Exists() {
		t.Fatalf("GET properties: %d %s", resp.StatusCode, body)
	}
	// [O-usage] professional: 190 per 10 s.
	if got := resp.Header.Get("X-HubSpot-RateLimit-Max"); got != "190" {
		t.Fatalf("X-HubSpot-RateLimit-Max %q at the professional tier", got)
	}
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(srv.logs(), "not HubSpot") {
		t.Fatalf("the sandbox does not say loudly what it is:\n%s", srv.logs())
	}
}
