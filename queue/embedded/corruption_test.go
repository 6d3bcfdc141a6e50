package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/switchyard/switchyard/queue"
)

// TestDamagedWALTail damages the end of the write-ahead log the way a crash
// during a write or a bad disk does. A tail cut short is what a power loss
// leaves behind, so Open must recover the messages before it. Garbage over
// the tail may instead make Open fail with an error naming the directory.
// Open must never panic or invent messages.
func TestDamagedWALTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, wal string, size int64)
		// mustRecover says Open may not refuse the damaged dir.
		mustRecover bool
		// minKept is the fewest of the 50 messages a recovery may keep.
		minKept int
	}{
		{name: "a WAL cut short mid-record", mustRecover: true, minKept: 45, damage: func(t *testing.T, wal string, size int64) {
			if err := os.Truncate(wal, size-37); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a WAL whose last kilobyte is garbage", minKept: 20, damage: func(t *testing.T, wal string, size int64) {
			f, err := os.OpenFile(wal, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", 256))
			if _, err := f.WriteAt(garbage, max(0, size-int64(len(garbage)))); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			dir := t.TempDir()
			l := open(t, Config{Dir: dir, Partitions: 2})
			for i := range 50 {
				mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k"), Value: fmt.Appendf(nil, "%d", i)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			wal := lastWAL(t, dir)
			info, err := os.Stat(wal)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, wal, info.Size())

			l, err = Open(Config{Dir: dir, Partitions: 2}, zap.NewNop())
			if err != nil {
				if tt.mustRecover {
					t.Fatalf("Open refused a dir whose WAL tail a crash cut short: %v", err)
				}
				if !strings.Contains(err.Error(), dir) {
					t.Fatalf("Open of a damaged dir failed with %q, which does not name the dir", err)
				}
				t.Logf("Open refused the damaged dir: %v", err)
				return
			}
			defer l.Close()
			got := fetchAll(t, ctx, l, "events")
			if len(got) == 50 {
				t.Fatalf("all 50 messages survived damage to the WAL's tail")
			}
			if len(got) < tt.minKept {
				t.Fatalf("recovered %d of 50 messages, want at least %d: the damage was only at the tail", len(got), tt.minKept)
			}
			for i, m := range got {
				if n, err := strconv.Atoi(string(m.Value)); err != nil || n != i {
					t.Fatalf("message %d after recovery is %q, want %d", i, m.Value, i)
				}
			}
			t.Logf("recovered %d of 50 messages", len(got))
			// The log takes writes again, continuing the offsets.
			mustPublish(t, ctx, l, queue.Message{Topic: "events", Key: []byte("k"), Value: []byte("after")})
			if after := fetchAll(t, ctx, l, "events"); len(after) != len(got)+1 {
				t.Fatalf("%d messages after a publish, want %d", len(after), len(got)+1)
			}
		})
	}
}

// lastWAL returns the newest write-ahead log file in dir.
func lastWAL(t *testing.T, dir string) string {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(wals) == 0 {
		t.Fatalf("no WAL files in %s: %v", dir, err)
	}
	sort.Strings(wals)
	return wals[len(wals)-1]
}

// TestFailedWriteIsNeverAcknowledged makes the disk fail under pebble in a
// child process. pebble cannot go on after a failed write-ahead log write, so
// the process must end without acknowledging the message, and the data
// acknowledged before must still be there on reopen.
func TestFailedWriteIsNeverAcknowledged(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	cmd := child(t, "diskfail", dir)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child ended with %v, want exit status 1; it printed %q", err, out)
	}
	if got := string(out); got != "acknowledged before\n" {
		t.Fatalf("child printed %q, want only the message before the failure acknowledged", got)
	}
	l := open(t, Config{Dir: dir})
	got := fetchAll(t, ctx, l, "events")
	if len(got) == 0 || string(got[0].Value) != "before" {
		t.Fatalf("after reopen the log holds %q, want the acknowledged message first", values(got))
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after reopen = %v, want nil", err)
	}
}

// childDiskFail publishes one message, makes every disk operation fail, and
// publishes another; it prints each acknowledgement.
func childDiskFail(dir string) {
	failing := &errorfs.Toggle{Injector: errorfs.ErrInjected}
	cfg := Config{Dir: dir, fs: errorfs.Wrap(vfs.Default, failing)}
	l, err := Open(cfg, zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, v := range []string{"before", "during"} {
		if v == "during" {
			failing.On()
		}
		if err := l.Publish(context.Background(), queue.Message{Topic: "events", Value: []byte(v)}); err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Println("acknowledged", v)
	}
	os.Exit(0)
}
