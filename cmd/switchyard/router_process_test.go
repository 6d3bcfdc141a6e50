package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// routerConfigFile writes a config with one webhook destination named hook.
func routerConfigFile(t *testing.T, url string, extra string) string {
	t.Helper()
	suffix := uniqueSuffix()
	return writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [k]
log:
  events_topic: rt-events-%s
  dlq_topic: rt-dlq-%s
  partitions: 4
destinations:
  - name: hook
    type: webhook
    display_name: Webhook
    backoff_min: 10ms
    backoff_max: 100ms
    webhook:
      url: %s
      max_in_flight: 2
      concurrency: 2
%s`, suffix, suffix, url, extra))
}

// postAll posts n events in batches of 50 with ids prefix-0..n-1 and returns
// the ids.
func postAll(t *testing.T, addr, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i += 50 {
		batch := make([]string, 0, 50)
		for j := i; j < min(n, i+50); j++ {
			batch = append(batch, fmt.Sprintf("%s-%d", prefix, j))
		}
		status, err := postBatch(http.DefaultClient, addr, "k", batch)
		if err != nil || status != 200 {
			t.Fatalf("posting: status %d, %v", status, err)
		}
		ids = append(ids, batch...)
	}
	return ids
}

func waitDelivered(t *testing.T, srv *webhooktest.Server, ids []string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.WaitFor(ctx, func(s *webhooktest.Server) bool {
		for _, id := range ids {
			if s.Delivered(id) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		missing := 0
		for _, id := range ids {
			if srv.Delivered(id) == 0 {
				missing++
			}
		}
		t.Fatalf("%d of %d events never delivered: %v", missing, len(ids), err)
	}
}

// deliveredCount counts the distinct events the receiver accepted.
func deliveredCount(srv *webhooktest.Server) int { return srv.Distinct() }

// killMidDelivery SIGKILLs srv once the receiver has a number of distinct
// events drawn from [low, high), and fails the test if the kill came after
// all n events were delivered. It returns how many were delivered once the
// process was gone.
func killMidDelivery(t *testing.T, rng *rand.Rand, srv *server, receiver *webhooktest.Server, low, high, n int) int {
	t.Helper()
	at := low + rng.IntN(high-low)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := receiver.WaitFor(ctx, func(*webhooktest.Server) bool { return deliveredCount(receiver) >= at }); err != nil {
		t.Fatalf("waiting for %d deliveries: %v", at, err)
	}
	srv.kill()
	delivered := deliveredCount(receiver)
	if delivered >= n {
		t.Fatal("the kill came after every event was delivered")
	}
	return delivered
}

// TestRouterSurvivesSIGKILLTwice loads events, kills the process twice in
// the middle of delivery, and checks the receiver ends with every event.
func TestRouterSurvivesSIGKILLTwice(t *testing.T) {
	crashTest(t, nil)
}

// crashTest posts n events, then SIGKILLs the serve process at a random point in
// the first third of their delivery and again in the third quarter, and
// checks every event is delivered and the lag returns to 0; extraArgs
// select the log.
func crashTest(t *testing.T, extraArgs []string) {
	rng := testRand(t)
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	dataDir := t.TempDir()
	addr := freeAddr(t)
	args := append([]string{"serve", "--config", cfgPath, "--data-dir", dataDir}, extraArgs...)
	srv := start(t, addr, args...)
	const n = 6000
	// Delivery outruns posting: the receiver turns everything away until
	// all n are in the log, so both kill points lie ahead.
	receiver.Fail(http.StatusServiceUnavailable)
	ids := postAll(t, addr, "crash", n)
	receiver.Recover()
	first := killMidDelivery(t, rng, srv, receiver, n/8, n/3, n)
	srv = start(t, addr, args...)
	second := killMidDelivery(t, rng, srv, receiver, n/2, 3*n/4, n)
	srv = start(t, addr, args...)
	waitDelivered(t, receiver, ids, 90*time.Second)
	waitLagZero(t, addr, 30*time.Second)
	srv.stop(t, syscall.SIGTERM)
	t.Logf("%d events; killed at %d and %d distinct delivered; %d requests in all", n, first, second, len(receiver.Received()))
}

func TestReplayTimeRangeAndDeadLetters(t *testing.T) {
	replayTest(t, nil)
}

func TestReplayOnKafka(t *testing.T) {
	replayTest(t, []string{"--kafka-brokers", strings.Join(kafkatest.Brokers(t), ",")})
}

// replayTest checks that a time range replays exactly the events in it and
// that --dlq replays dead letters; backendArgs select the log.
func replayTest(t *testing.T, backendArgs []string) {
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	dataDir := t.TempDir()
	addr := freeAddr(t)
	args := append([]string{"serve", "--config", cfgPath, "--data-dir", dataDir}, backendArgs...)
	srv := start(t, addr, args...)

	receiver.Script("broken-0", 400) // dead-lettered once
	before := postAll(t, addr, "before", 30)
	time.Sleep(30 * time.Millisecond)
	from := time.Now().UTC()
	inRange := postAll(t, addr, "range", 40)
	to := time.Now().UTC()
	time.Sleep(30 * time.Millisecond)
	after := postAll(t, addr, "after", 30)
	broken := postAll(t, addr, "broken", 1)
	waitDelivered(t, receiver, append(append(append([]string{}, before...), inRange...), after...), 30*time.Second)
	if receiver.Delivered("broken-0") != 0 {
		t.Fatal("the 400 was not answered")
	}
	// The dead letter must be in the log before the server stops, or --dlq
	// has nothing to replay.
	eventuallyTrue(t, "the 400 is dead-lettered", func() bool {
		n, _ := scrapeCounter(addr, `switchyard_router_events_total{destination="hook",outcome="dead_lettered"}`)
		return n == 1
	})
	srv.stop(t, syscall.SIGTERM)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(append([]string{"replay", "--config", cfgPath, "--data-dir", dataDir, "--destination", "hook"}, backendArgs...), args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("replay %v: %v\n%s", args, err, stderr.String())
		}
		if !strings.Contains(strings.Join(args, " "), "--dry-run") && !strings.Contains(stderr.String(), "replay: ") {
			t.Fatalf("no progress lines:\n%s", stderr.String())
		}
		return stdout.String()
	}

	// A dry run prints exactly the range and sends nothing.
	requests := len(receiver.Received())
	printed := run("--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--dry-run")
	if got := strings.Count(printed, "\n"); got != len(inRange) {
		t.Fatalf("dry run printed %d lines, want %d:\n%s", got, len(inRange), printed)
	}
	if len(receiver.Received()) != requests {
		t.Fatal("a dry run sent requests")
	}

	run("--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano))
	for _, id := range inRange {
		if n := receiver.Delivered(id); n != 2 {
			t.Fatalf("%s delivered %d times, want 2 (live and replay)", id, n)
		}
	}
	for _, id := range append(before, after...) {
		if n := receiver.Delivered(id); n != 1 {
			t.Fatalf("%s outside the range was delivered %d times, want 1", id, n)
		}
	}

	// The receiver now accepts the broken event: --dlq delivers it.
	run("--dlq")
	if n := receiver.Delivered(broken[0]); n != 1 {
		t.Fatalf("the dead letter was delivered %d times by --dlq, want 1", n)
	}
	if n := receiver.Delivered(inRange[0]); n != 2 {
		t.Fatal("--dlq delivered events that were never dead-lettered")
	}
}

// TestTwoRoutersOnKafkaShareTheWork runs a gateway and two router processes
// in one consumer group on the real broker.
func TestTwoRoutersOnKafkaShareTheWork(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	gw := start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", brokers)
	r1 := start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)
	r2 := start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)
	delivered := func(s *server) float64 {
		n, _ := scrapeCounter(s.addr, `switchyard_router_events_total{destination="hook",outcome="delivered"}`)
		return n
	}
	// The group needs a moment to settle after the second member joins:
	// keep posting until both members have delivered some.
	var ids []string
	deadline := time.Now().Add(60 * time.Second)
	for round := 0; delivered(r1) == 0 || delivered(r2) == 0; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s one router still delivered nothing (%v and %v): the group did not share the partitions", delivered(r1), delivered(r2))
		}
		ids = append(ids, postAll(t, gw.addr, fmt.Sprintf("kafka-r%d", round), 200)...)
		time.Sleep(200 * time.Millisecond)
	}
	ids = append(ids, postAll(t, gw.addr, "kafka-last", 1000)...)
	waitDelivered(t, receiver, ids, 90*time.Second)
	waitLagZero(t, r1.addr, 30*time.Second)
	t.Logf("%d events; router 1 delivered %v, router 2 %v", len(ids), delivered(r1), delivered(r2))
}

// TestRouterOnKafkaSurvivesSIGKILLTwice is the crash test on the real broker.
func TestRouterOnKafkaSurvivesSIGKILLTwice(t *testing.T) {
	crashTest(t, []string{"--kafka-brokers", strings.Join(kafkatest.Brokers(t), ",")})
}

func TestReplayOfDeadLettersWritesOneEach(t *testing.T) {
	deadLetterReplayTest(t, nil)
}

func TestReplayOfDeadLettersOnKafka(t *testing.T) {
	deadLetterReplayTest(t, []string{"--kafka-brokers", strings.Join(kafkatest.Brokers(t), ",")})
}

// deadLetterReplayTest replays dead letters to a destination that
// dead-letters everything: the replay writes its dead letters to the topic it
// reads, yet it ends, having written exactly one new dead letter per old one.
func deadLetterReplayTest(t *testing.T, backendArgs []string) {
	receiver := webhooktest.NewServer(t)
	receiver.Fail(400)
	// Few events pending at a time: a replay that read on past the end the
	// topic had when it began would meet its own dead letters before it ran
	// out of the old ones.
	cfgPath := routerConfigFile(t, receiver.URL, "    max_pending: 2\n")
	dataDir := t.TempDir()
	addr := freeAddr(t)
	common := append([]string{"--config", cfgPath, "--data-dir", dataDir}, backendArgs...)
	srv := start(t, addr, append([]string{"serve"}, common...)...)
	const n = 10
	ids := postAll(t, addr, "dead", n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := scrapeCounter(addr, `switchyard_router_events_total{destination="hook",outcome="dead_lettered"}`)
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d events dead-lettered within 30s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.stop(t, syscall.SIGTERM)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	replay := exec.CommandContext(ctx, binary, append([]string{"replay", "--destination", "hook", "--dlq"}, common...)...)
	var stderr bytes.Buffer
	replay.Stderr = &stderr
	if err := replay.Run(); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("replay --dlq did not end within 60s:\n%s", stderr.String())
		}
		t.Fatalf("replay --dlq: %v\n%s", err, stderr.String())
	}

	attempts := map[string]int{}
	for _, d := range receiver.Received() {
		attempts[d.MessageID]++
	}
	letters := map[string]int{}
	dead := tailAll(t, append([]string{"--topic", "dlq"}, common...)...)
	for _, d := range dead {
		if stage := d.Get("stage").String(); stage != "hook" {
			t.Fatalf("a dead letter of stage %q", stage)
		}
		letters[d.Get("message.messageId").String()]++
	}
	if len(dead) != 2*n {
		t.Fatalf("%d dead letters after the replay, want %d: the %d old ones and one new one each", len(dead), 2*n, n)
	}
	for _, id := range ids {
		if attempts[id] != 2 || letters[id] != 2 {
			t.Fatalf("%s was sent %d times and dead-lettered %d times, want 2 and 2 (live and replay)", id, attempts[id], letters[id])
		}
	}
}
