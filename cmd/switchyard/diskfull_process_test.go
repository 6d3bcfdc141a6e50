package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
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

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// The disk of TestDiskFull: a tmpfs of diskSize with the embedded log's
// reserve set to minFree.
const (
	diskSize = 48 << 20
	minFree  = 16 << 20
)

// mountSmallDisk mounts a tmpfs of size bytes on a new directory and
// unmounts it when the test ends.
func mountSmallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs a size-limited folder: mount -t tmpfs on %s failed (run the tests as root or with CAP_SYS_ADMIN): %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// freeBytes is what statfs says is free on dir's file system.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillUntilFree grows the file at path until dir's file system has about
// free bytes free, and returns how many bytes the file holds.
func fillUntilFree(t *testing.T, path, dir string, free int64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for freeBytes(t, dir) > free+int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatalf("growing the filler file: %v", err)
		}
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// loader posts batches of large track events from several goroutines and
// records what the gateway answered.
type loader struct {
	addr string

	mu       sync.Mutex
	acked    []string // messageIds of batches answered 200
	statuses map[int]int
	full     gjson.Result // the body of a 503, once one came
	n        int
}

// postOne posts one batch of 50 events, each with 2 KB of random padding,
// and returns the status.
func (l *loader) postOne(client *http.Client, worker int) int {
	l.mu.Lock()
	n := l.n
	l.n++
	l.mu.Unlock()
	ids := make([]string, 50)
	items := make([]string, len(ids))
	pad := make([]byte, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("df-w%d-b%d-m%d", worker, n, i)
		rand.Read(pad)
		items[i] = fmt.Sprintf(`{"type":"track","userId":"user-%d","event":"Disk Test","messageId":%q,"properties":{"pad":"%s"}}`, i%7, ids[i], hex.EncodeToString(pad))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(items, ",")+`]}`))
	req.SetBasicAuth("k", "")
	resp, err := client.Do(req)
	if err != nil {
		l.mu.Lock()
		l.statuses[-1]++
		l.mu.Unlock()
		return -1
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[resp.StatusCode]++
	switch resp.StatusCode {
	case http.StatusOK:
		l.acked = append(l.acked, ids...)
	case http.StatusServiceUnavailable:
		if !l.full.Exists() {
			l.full = gjson.ParseBytes(body)
		}
	}
	return resp.StatusCode
}

// postUntil posts from 4 goroutines until stop, given each answer's
// status, returns true; it fails the test if that takes longer than limit.
func (l *loader) postUntil(t *testing.T, limit time.Duration, stop func(status int) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	var once sync.Once
	done := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 15 * time.Second}
			for time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				if stop(l.postOne(client, w)) {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	default:
		t.Fatalf("posting for %s never met the condition; statuses %v", limit, l.statuses)
	}
}

func (l *loader) ackedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// alive fails the test if srv exited.
func alive(t *testing.T, srv *server) {
	t.Helper()
	select {
	case err := <-srv.done:
		srv.done <- err
		t.Fatalf("switchyard exited on a full disk: %v\n%s", err, lastLines(srv.logs(), 20))
	default:
	}
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, addr string) (int, gjson.Result) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, gjson.ParseBytes(body)
}

func lineCount(s string) int { return strings.Count(s, "\n") }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestDiskFullGets503AndRecovers runs serve with its data dir on a 48 MiB
// tmpfs. Another file fills the disk to just above the log's reserve, load
// fills the rest: the gateway answers 503 log_full, stays alive, says why
// in /readyz, writes a bounded number of log lines, and every event it
// acknowledged is delivered. Once the filler is deleted it answers 200
// again. Restarted on a disk filled below the reserve, it refuses to start
// with one clear error; started again once space is freed, it delivers
// everything it acknowledged.
func TestDiskFullGets503AndRecovers(t *testing.T) {
	disk := mountSmallDisk(t, diskSize)
	dataDir := filepath.Join(disk, "data")
	filler := filepath.Join(disk, "filler")
	receiver := webhooktest.NewServer(t)
	cfgPath := writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [k]
log:
  partitions: 2
  min_free_bytes: %d
  # A memtable larger than the disk: nothing is flushed and no write-ahead
  # log is preallocated (pebble preallocates each to 1.1 memtables), so the
  # disk fills with appends alone, at the rate the test controls.
  memtable_bytes: 67108864
destinations:
  - name: hook
    type: webhook
    backoff_min: 10ms
    backoff_max: 100ms
    shutdown_timeout: 1s
    webhook:
      url: %s
`, minFree, receiver.URL))
	addr := freeAddr(t)
	srv := start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)

	filled := fillUntilFree(t, filler, disk, minFree+6<<20)
	load := &loader{addr: addr, statuses: map[int]int{}}
	load.postUntil(t, 30*time.Second, func(status int) bool { return status == http.StatusServiceUnavailable })
	linesAtFull := lineCount(srv.logs())
	freeAtFull := freeBytes(t, disk)
	t.Logf("filler file: %d MiB; free when the first 503 came: %d MiB; statuses until then: %v",
		filled>>20, freeAtFull>>20, load.statuses)
	if freeAtFull < minFree/2 {
		t.Fatalf("the log appended into its reserve: %d bytes free at the first 503, min_free_bytes %d", freeAtFull, minFree)
	}
	if code := load.full.Get("code").String(); code != "log_full" || !strings.Contains(load.full.Get("message").String(), "disk is full") {
		t.Fatalf("503 body %s, want code log_full and a message naming the full disk", load.full.Raw)
	}

	// Full for 5 seconds more under load: alive, answering 503, few log lines.
	fullSince := time.Now()
	load.postUntil(t, 10*time.Second, func(int) bool { return time.Since(fullSince) > 5*time.Second })
	alive(t, srv)
	status, body := readyz(t, addr)
	if status != http.StatusServiceUnavailable || !strings.Contains(body.Get("reason").String(), "min_free_bytes") {
		t.Fatalf("/readyz on a full disk: %d %s, want 503 naming min_free_bytes", status, body.Raw)
	}
	fullLines := lineCount(srv.logs()) - linesAtFull
	t.Logf("while full: statuses %v, %d log lines", load.statuses, fullLines)
	if fullLines > 150 {
		t.Fatalf("%d log lines while the disk was full, want at most 150:\n%s", fullLines, lastLines(srv.logs(), 20))
	}
	waitDelivered(t, receiver, load.ackedIDs(), 30*time.Second)

	// Space returns: 200 again within seconds.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freedAt := time.Now()
	load.postUntil(t, 10*time.Second, func(status int) bool { return status == http.StatusOK })
	t.Logf("filler deleted: a 200 came after %s", time.Since(freedAt).Round(time.Millisecond))
	if status, body := readyz(t, addr); status != http.StatusOK {
		t.Fatalf("/readyz after space returned: %d %s", status, body.Raw)
	}
	waitDelivered(t, receiver, load.ackedIDs(), 30*time.Second)
	srv.stop(t, syscall.SIGTERM)

	// Restart on a disk with less than the reserve free: serve refuses to
	// open the log with one error, rather than retrying pebble's flush of
	// the write-ahead log for ever.
	filled = fillUntilFree(t, filler, disk, 2<<20)
	cmd := exec.Command(binary, "serve", "--config", cfgPath, "--data-dir", dataDir, "--addr", addr)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			t.Fatalf("serve on a full disk exited with %v, want exit code 1\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("serve on a full disk neither started nor refused within 20s; %d log lines:\n%s", lineCount(out.String()), lastLines(out.String(), 20))
	}
	logs := out.String()
	t.Logf("restarted with %d MiB free (filler %d MiB): exited after %d log lines, the last: %s", freeBytes(t, disk)>>20, filled>>20, lineCount(logs), lastLines(logs, 1))
	if lineCount(logs) > 5 || !strings.Contains(lastLines(logs, 1), "min_free_bytes") || !strings.Contains(lastLines(logs, 1), "free space and start again") {
		t.Fatalf("serve on a full disk wrote, want one error naming min_free_bytes at the end of at most 5 lines:\n%s", logs)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	restarted := start(t, addr, "serve", "--config", cfgPath, "--data-dir", dataDir)
	load.postUntil(t, 10*time.Second, func(status int) bool { return status == http.StatusOK })
	acked := load.ackedIDs()
	waitDelivered(t, receiver, acked, 30*time.Second)
	restarted.stop(t, syscall.SIGTERM)
	t.Logf("statuses in all: %v; %d acknowledged events, all delivered (%d distinct delivered)", load.statuses, len(acked), deliveredCount(receiver))
}
