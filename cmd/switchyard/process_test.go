package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// binary is the switchyard binary built once for the tests that run it as
// a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchyard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running switchyard process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	out    *lockedWriter
	done   chan error
}

// logs returns what the process wrote to stderr so far.
func (s *server) logs() string {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.stderr.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs switchyard with args plus --addr and waits until /healthz answers.
func start(t testing.TB, addr string, args ...string) *server {
	t.Helper()
	s := &server{addr: addr, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, append(args, "--addr", addr)...)
	s.out = &lockedWriter{w: s.stderr}
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("switchyard exited: %v\n%s", err, s.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("switchyard did not answer /healthz within 30s\n%s", s.logs())
	return nil
}

func (s *server) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		s.done <- nil // for the cleanup's wait
	case <-time.After(40 * time.Second):
		t.Fatalf("switchyard did not exit after %v\n%s", sig, s.logs())
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailAll runs switchyard tail --from-beginning --exit and returns its lines.
func tailAll(t *testing.T, args ...string) []gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"tail", "--from-beginning", "--exit"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("switchyard tail: %v\n%s", err, stderr.String())
	}
	var msgs []gjson.Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !gjson.Valid(sc.Text()) {
			t.Fatalf("tail printed a line that is not JSON: %q", sc.Text())
		}
		msgs = append(msgs, gjson.Parse(sc.Text()))
	}
	return msgs
}

func postBatch(client *http.Client, addr, key string, ids []string) (int, error) {
	var items []string
	for _, id := range ids {
		items = append(items, fmt.Sprintf(`{"type":"track","userId":"user-%s","event":"Crash Test","messageId":%q,"properties":{"pad":"%s"}}`, id[len(id)-1:], id, strings.Repeat("p", 200)))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(items, ",")+`]}`))
	req.SetBasicAuth(key, "")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

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
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	srv.done <- nil
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
	body := `{"batch":[{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}},{"type":"track","userId":"u1"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", strings.NewReader(body))
	req.SetBasicAuth("k", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("posting: %v %v", resp, err)
	}
	resp.Body.Close()
	ready, err := http.Get("http://" + addr + "/readyz")
	if err != nil || ready.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", ready, err)
	}
	metrics, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(raw), `switchyard_gateway_messages_total{outcome="accepted"} 1`) {
		t.Fatalf("/metrics lacks the accepted count:\n%s", raw)
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
	cmd := exec.Command(binary, "hubspot-sandbox", "--addr", addr, "--tier", "professional", "--tokens", "tok")
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/crm/v3/properties/contacts", nil)
		req.Header.Set("Authorization", "Bearer tok")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
	}
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
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(stderr.String(), "not HubSpot") {
		t.Fatalf("the sandbox does not say loudly what it is:\n%s", stderr.String())
	}
}

// scrapeCounter reads one sample from a process's /metrics; false when the
// process does not answer or has not reported the series yet.
func scrapeCounter(addr, series string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
