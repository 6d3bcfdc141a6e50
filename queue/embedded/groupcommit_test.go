package embedded

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/queuetest"
)

// TestGroupCommitModel has publishers append calls of random sizes at once,
// with a small MaxBatchMessages, and checks the writer's group commit
// against what each call was promised: once Publish returns, every message
// of the call is below its partition's high watermark; in the end each
// partition holds exactly the acknowledged messages, each once, a call's
// messages of a partition consecutive and in order; and no batch of more
// than one call holds more than MaxBatchMessages messages.
func TestGroupCommitModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const partitions, publishers, callsEach, maxBatch = 3, 8, 40, 50
	core, logs := observer.New(zap.DebugLevel)
	l, err := Open(Config{Dir: t.TempDir(), Partitions: partitions, MaxBatchMessages: maxBatch}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := testContext(t)
	tp, err := l.topic("events")
	if err != nil {
		t.Fatal(err)
	}
	high := func(p int) int64 {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return tp.parts[p].high
	}
	// acked counts, per partition, the messages of calls that returned.
	var acked [partitions]atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for c := range callsEach {
				n := 1 + rng.IntN(3)
				if rng.IntN(5) == 0 {
					n = 1 + rng.IntN(2*maxBatch)
				}
				msgs := make([]queue.Message, n)
				var perPart [partitions]int64
				for i := range msgs {
					key := fmt.Appendf(nil, "user-%d", rng.IntN(30))
					msgs[i] = queue.Message{Topic: "events", Key: key, Value: fmt.Appendf(nil, "%d/%d/%d", w, c, i)}
					perPart[queue.PartitionFor(key, partitions)]++
				}
				if err := l.Publish(ctx, msgs...); err != nil {
					errs <- err
					return
				}
				for p := range partitions {
					// Read before the high watermark: every call counted
					// here had returned, so its messages are below it.
					before := acked[p].Add(perPart[p])
					if h := high(p); h < before {
						errs <- fmt.Errorf("partition %d: high watermark %d after calls that returned with %d messages", p, h, before)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Each message is there once; a call's messages of a partition follow
	// one another in the order of the call.
	got := queuetest.ReadAll(t, l, "events")
	perPart := make([][]string, partitions)
	for _, m := range got {
		perPart[m.Partition] = append(perPart[m.Partition], string(m.Value))
	}
	total := 0
	for p := range partitions {
		if int64(len(perPart[p])) != acked[p].Load() || high(p) != acked[p].Load() {
			t.Fatalf("partition %d holds %d messages up to high watermark %d; %d were acknowledged", p, len(perPart[p]), high(p), acked[p].Load())
		}
		seen := map[string]bool{}
		lastOfCall := map[string]int{}
		for i, v := range perPart[p] {
			if seen[v] {
				t.Fatalf("partition %d holds %s twice", p, v)
			}
			seen[v] = true
			var w, c, k int
			if _, err := fmt.Sscanf(v, "%d/%d/%d", &w, &c, &k); err != nil {
				t.Fatalf("partition %d offset %d holds %q: %v", p, i, v, err)
			}
			call := strconv.Itoa(w) + "/" + strconv.Itoa(c)
			if prev, ok := lastOfCall[call]; ok {
				if prev != i-1 {
					t.Fatalf("partition %d: call %s has messages at offsets %d and %d with others between", p, call, prev, i)
				}
				var pk int
				fmt.Sscanf(perPart[p][prev], "%d/%d/%d", &w, &c, &pk)
				if pk >= k {
					t.Fatalf("partition %d: call %s's message %d comes after its message %d", p, call, k, pk)
				}
			}
			lastOfCall[call] = i
		}
		total += len(perPart[p])
	}

	calls, messages := 0, 0
	for _, e := range logs.FilterMessage("batch committed").All() {
		c, m := int(e.ContextMap()["calls"].(int64)), int(e.ContextMap()["messages"].(int64))
		if c > 1 && m > maxBatch {
			t.Fatalf("a batch of %d calls holds %d messages; MaxBatchMessages is %d", c, m, maxBatch)
		}
		calls += c
		messages += m
	}
	if calls != publishers*callsEach || messages != total {
		t.Fatalf("the batches committed %d calls of %d messages; %d calls of %d messages were acknowledged", calls, messages, publishers*callsEach, total)
	}
}

// TestCloseAnswersWaitingCalls closes the log while publishers append: each
// call either is acknowledged, and its messages are there after reopening,
// or fails with queue.ErrClosed; none is left waiting.
func TestCloseAnswersWaitingCalls(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Partitions: 1}
	l, err := Open(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; ; c++ {
				err := l.Publish(ctx, queue.Message{Topic: "events", Value: fmt.Appendf(nil, "%d/%d", w, c)})
				if err != nil {
					if !errors.Is(err, queue.ErrClosed) {
						errs <- err
					}
					return
				}
				acked.Add(1)
			}
		}()
	}
	for acked.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a call the log was closed under failed with %v, want queue.ErrClosed", err)
	}
	l = open(t, cfg)
	if got := len(queuetest.ReadAll(t, l, "events")); int64(got) < acked.Load() {
		t.Fatalf("after reopening the log holds %d messages; %d were acknowledged", got, acked.Load())
	}
}
