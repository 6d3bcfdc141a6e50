package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/queue"
)

// The tests below re-run the test binary as a child process that does one
// job, chosen by these variables, instead of running tests.
const (
	childEnv    = "EMBEDDED_TEST_CHILD"
	childDirEnv = "EMBEDDED_TEST_DIR"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "publish":
		childPublish(os.Getenv(childDirEnv))
	case "open":
		childOpen(os.Getenv(childDirEnv))
	case "diskfail":
		childDiskFail(os.Getenv(childDirEnv))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

const crashWriters = 8

// childPublish publishes from several goroutines until it is killed, and
// prints "<key> <seq>" for every message once Publish acknowledged it.
func childPublish(dir string) {
	l, err := Open(Config{Dir: dir, Partitions: 4}, zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("writer-%d", w)
			for seq := 0; ; {
				// Alternate single messages and batches of four.
				n := 1 + 3*(seq%2)
				msgs := make([]queue.Message, n)
				for i := range msgs {
					msgs[i] = queue.Message{Topic: "events", Key: []byte(key), Value: fmt.Appendf(nil, "%s %d", key, seq+i)}
				}
				if err := l.Publish(context.Background(), msgs...); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				out.Lock()
				for _, m := range msgs {
					os.Stdout.Write(append(m.Value, '\n'))
				}
				out.Unlock()
				seq += n
			}
		}()
	}
	wg.Wait()
}

// childOpen tries to open dir and prints the error, if any.
func childOpen(dir string) {
	l, err := Open(Config{Dir: dir}, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		os.Exit(0)
	}
	l.Close()
	fmt.Println("opened")
}

func child(t *testing.T, job, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+job, childDirEnv+"="+dir)
	return cmd
}

func TestOpenFailsWhileAnotherProcessHasTheDir(t *testing.T) {
	dir := t.TempDir()
	open(t, Config{Dir: dir})
	out, err := child(t, "open", dir).Output()
	if err != nil {
		t.Fatalf("running child: %v", err)
	}
	want := "data dir " + dir + " is in use by another process"
	if !strings.Contains(string(out), want) {
		t.Fatalf("child's Open said %q, want it to contain %q", strings.TrimSpace(string(out)), want)
	}
}

func TestAcknowledgedMessagesSurviveSIGKILL(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	cmd := child(t, "publish", dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Kill the child once it acknowledged enough messages, mid-publish.
	acked := map[string]int{} // key to highest acknowledged seq
	lines := 0
	killed := false
	deadline := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		key, seqText, ok := strings.Cut(scanner.Text(), " ")
		seq, err := strconv.Atoi(seqText)
		if !ok || err != nil {
			t.Fatalf("child printed %q", scanner.Text())
		}
		acked[key] = max(acked[key], seq)
		if lines++; lines == 2000 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements before it was killed: %v", lines, err)
	}
	t.Logf("child acknowledged %d messages before SIGKILL", lines)

	l := open(t, Config{Dir: dir})
	stored := map[string][]int{}
	for _, m := range fetchAll(t, ctx, l, "events") {
		key, seqText, _ := strings.Cut(string(m.Value), " ")
		seq, err := strconv.Atoi(seqText)
		if err != nil || key != string(m.Key) {
			t.Fatalf("stored message has key %q and value %q", m.Key, m.Value)
		}
		stored[key] = append(stored[key], seq)
	}
	for w := range crashWriters {
		key := fmt.Sprintf("writer-%d", w)
		seqs := stored[key]
		// Each writer's messages are stored in order without a gap, and
		// include at least every acknowledged one.
		for i, seq := range seqs {
			if seq != i {
				t.Fatalf("%s: stored message %d has seq %d", key, i, seq)
			}
		}
		if want, ok := acked[key]; ok && len(seqs) <= want {
			t.Errorf("%s: %d messages stored, but seq %d was acknowledged", key, len(seqs), want)
		}
	}
}
