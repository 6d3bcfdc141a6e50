package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// seedEnv names the environment variable that replays a randomized process
// test with the seed an earlier run printed.
const seedEnv = "SWITCHYARD_TEST_SEED"

// testRand returns a random source seeded from SWITCHYARD_TEST_SEED, or from
// a fresh random seed, and logs the seed so a failing run can be replayed.
func testRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := rand.Uint64()
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q is not an unsigned decimal seed: %v", seedEnv, v, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, seedEnv, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// ackLoad posts numbered track events (prefix-0, prefix-1, ...) in batches
// to a gateway from a few posters at once until stopped, and records which
// the gateway acknowledged with a 200. A batch that gets an error, a
// connection reset or another status is not acknowledged; its events may
// still arrive.
type ackLoad struct {
	addr, prefix string
	size         int
	pause        time.Duration
	client       *http.Client

	mu      sync.Mutex
	acked   []string
	refused int // batches not acknowledged
	cut     int // of those, requests the gateway took and never answered
	next    int // the number of the next event

	stop chan struct{}
	done sync.WaitGroup
}

// startLoad starts posters that each post a batch of size events to the
// gateway at addr, then pause, until the load is finished.
func startLoad(addr, prefix string, posters, size int, pause time.Duration) *ackLoad {
	l := &ackLoad{
		addr: addr, prefix: prefix, size: size, pause: pause,
		client: &http.Client{Timeout: 5 * time.Second},
		stop:   make(chan struct{}),
	}
	for range posters {
		l.done.Add(1)
		go l.run()
	}
	return l
}

func (l *ackLoad) run() {
	defer l.done.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(l.pause):
		}
		l.mu.Lock()
		first := l.next
		l.next += l.size
		l.mu.Unlock()
		batch := make([]string, l.size)
		for i := range batch {
			batch[i] = fmt.Sprintf("%s-%d", l.prefix, first+i)
		}
		status, err := postBatch(l.client, l.addr, "k", batch)
		l.mu.Lock()
		switch {
		case err == nil && status == http.StatusOK:
			l.acked = append(l.acked, batch...)
		case err != nil && !errors.Is(err, syscall.ECONNREFUSED):
			l.cut++
			l.refused++
		default:
			l.refused++
		}
		l.mu.Unlock()
	}
}

// counts returns the events acknowledged, the batches refused and, of
// those, the requests cut short so far.
func (l *ackLoad) counts() (acked, refused, cut int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), l.refused, l.cut
}

// finish stops the load and returns every acknowledged event's messageId.
func (l *ackLoad) finish() []string {
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// waitAcked waits until the load has n acknowledged events.
func waitAcked(t *testing.T, load *ackLoad, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if acked, _, _ := load.counts(); acked >= n {
			return
		}
		if time.Now().After(deadline) {
			acked, refused, _ := load.counts()
			t.Fatalf("%d events acknowledged after 30s, waiting for %d (%d batches refused)", acked, n, refused)
		}
	}
}

// waitMidDelivery waits until the receiver has n distinct events while at
// least a batch of acknowledged events is still undelivered: the moment
// the router is delivering.
func waitMidDelivery(t *testing.T, receiver *webhooktest.Server, load *ackLoad, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := receiver.WaitFor(ctx, func(s *webhooktest.Server) bool {
		acked, _, _ := load.counts()
		delivered := s.Distinct()
		return delivered >= n && acked-delivered >= load.size
	})
	if err != nil {
		acked, _, _ := load.counts()
		t.Fatalf("%d distinct events delivered of %d acknowledged, waiting for %d with a batch undelivered: %v", receiver.Distinct(), acked, n, err)
	}
}

// waitInBacklog makes the receiver answer 503 until a random number of
// further events are acknowledged, so the router holds a backlog of fetched
// and retried events, then lets it deliver them and waits for a random
// point among them. It returns that point.
func waitInBacklog(t *testing.T, rng *rand.Rand, receiver *webhooktest.Server, load *ackLoad) int {
	t.Helper()
	receiver.Fail(http.StatusServiceUnavailable)
	acked, _, _ := load.counts()
	waitAcked(t, load, acked+killMin+rng.IntN(killSpread))
	receiver.Recover()
	delivered := receiver.Distinct()
	acked, _, _ = load.counts()
	if acked-delivered <= load.size {
		t.Fatalf("the receiver refused everything while %d events were acknowledged, yet only %d are undelivered", killMin, acked-delivered)
	}
	target := delivered + 1 + rng.IntN(acked-delivered-load.size)
	waitMidDelivery(t, receiver, load, target)
	return target
}

// killAt is what a SIGKILL left behind.
type killAt struct {
	acked, delivered int
	undelivered      int // acknowledged events not delivered
	refused, cut     int // batches
}

func (k killAt) String() string {
	return fmt.Sprintf("%d acknowledged, %d delivered (%d acknowledged ones not yet); %d batches refused so far, %d of them cut short",
		k.acked, k.delivered, k.undelivered, k.refused, k.cut)
}

// kill SIGKILLs srv and returns the counts once it is gone.
func kill(srv *server, load *ackLoad, receiver *webhooktest.Server) killAt {
	srv.kill()
	// A 200 the process wrote before it died may still be on its way.
	time.Sleep(50 * time.Millisecond)
	k := killAt{delivered: receiver.Distinct()}
	load.mu.Lock()
	k.acked, k.refused, k.cut = len(load.acked), load.refused, load.cut
	for _, id := range load.acked {
		if receiver.Delivered(id) == 0 {
			k.undelivered++
		}
	}
	load.mu.Unlock()
	return k
}

// killMidDeliveryUnderLoad is kill for a process that delivers: it fails the
// test unless some acknowledged event was still undelivered, since a kill
// after everything was delivered proves nothing.
func killMidDeliveryUnderLoad(t *testing.T, srv *server, load *ackLoad, receiver *webhooktest.Server) killAt {
	t.Helper()
	k := kill(srv, load, receiver)
	if k.undelivered == 0 {
		t.Fatalf("the kill came after every acknowledged event was delivered (%v)", k)
	}
	return k
}

// faultConfigFile writes a config with one webhook destination named hook,
// a consumer group and topics no other test uses, and Kafka settings that
// drop a killed group member within seconds.
func faultConfigFile(t *testing.T, url string) string {
	t.Helper()
	suffix := uniqueSuffix()
	return writeConfig(t, fmt.Sprintf(`sources:
  - name: app
    write_keys: [k]
log:
  events_topic: fault-events-%s
  dlq_topic: fault-dlq-%s
  partitions: 4
kafka:
  session_timeout: 6s
  heartbeat_interval: 500ms
destinations:
  - name: hook
    type: webhook
    display_name: Webhook
    group: fault-%s
    backoff_min: 10ms
    backoff_max: 100ms
    webhook:
      url: %s
      max_in_flight: 2
      concurrency: 2
`, suffix, suffix, suffix, url))
}

// deadEvery is how often, among the numbered events of the fault tests, one
// is refused by the receiver with a 400 on every attempt, so it must end
// dead-lettered.
const deadEvery = 997

// scriptDeadLetters makes every deadEvery-th event of prefix among the first
// n get a 400 on every attempt, and returns their messageIds.
func scriptDeadLetters(receiver *webhooktest.Server, prefix string, n int) map[string]bool {
	refused := make([]int, 100)
	for i := range refused {
		refused[i] = http.StatusBadRequest
	}
	ids := map[string]bool{}
	for i := deadEvery / 2; i < n; i += deadEvery {
		id := fmt.Sprintf("%s-%d", prefix, i)
		receiver.Script(id, refused...)
		ids[id] = true
	}
	return ids
}

// checkAcknowledged checks the invariant of the fault tests: every
// acknowledged event was delivered, except those the receiver refuses,
// which are dead-lettered with a reason and never delivered. dead is the
// dead-letter topic as tail prints it. It returns the dead letters beyond
// one per event.
func checkAcknowledged(t *testing.T, receiver *webhooktest.Server, acked []string, refused map[string]bool, deadLetters []string) int {
	t.Helper()
	letters := map[string]int{}
	for _, id := range deadLetters {
		letters[id]++
	}
	missing, lettered := 0, 0
	for _, id := range acked {
		switch {
		case refused[id]:
			if receiver.Delivered(id) != 0 {
				t.Errorf("%s, which the receiver refuses, was delivered", id)
			}
			if letters[id] == 0 {
				t.Errorf("%s was acknowledged, refused by the receiver and never dead-lettered", id)
			}
			lettered++
		case receiver.Delivered(id) == 0:
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events never delivered", missing, len(acked))
	}
	if lettered == 0 {
		t.Fatal("no acknowledged event was one the receiver refuses: the dead-letter half of the check saw nothing")
	}
	extra := 0
	for id, n := range letters {
		if !refused[id] {
			t.Errorf("%s was dead-lettered, but the receiver accepts it", id)
		}
		extra += n - 1
	}
	return extra
}

// deadLetterIDs tails the dead-letter topic and returns the messageId of
// each dead letter, failing the test on one without a reason.
func deadLetterIDs(t *testing.T, args ...string) []string {
	t.Helper()
	var ids []string
	for _, d := range tailAll(t, append([]string{"--topic", "dlq"}, args...)...) {
		if d.Get("stage").String() != "hook" || d.Get("reason").String() == "" {
			t.Fatalf("a dead letter without its stage or reason: %s", d.Raw)
		}
		ids = append(ids, d.Get("message.messageId").String())
	}
	return ids
}

// TestServeSurvivesTenSIGKILLs SIGKILLs a serve process (gateway and router
// in one) ten times in a row at random points while events are posted
// without pause: at random, once a random number of further events are
// acknowledged, or at a random point in the delivery of a backlog the
// receiver built up by answering 503 for a while. Every
// acknowledged event ends delivered, or dead-lettered with a reason when
// the receiver refuses it, and the lag returns to 0.
func TestServeSurvivesTenSIGKILLs(t *testing.T) {
	rng := testRand(t)
	receiver := webhooktest.NewServer(t)
	const prefix = "serve-kill"
	refused := scriptDeadLetters(receiver, prefix, 200_000)
	cfgPath := faultConfigFile(t, receiver.URL)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	common := []string{"--config", cfgPath, "--data-dir", dataDir}
	args := append([]string{"serve"}, common...)
	srv := start(t, addr, args...)
	load := startLoad(addr, prefix, loadPosters, loadBatch, loadPause)

	for i := range 10 {
		acked, _, _ := load.counts()
		if rng.IntN(2) == 0 {
			target := acked + killMin + rng.IntN(killSpread)
			waitAcked(t, load, target)
			t.Logf("kill %d: serve while posting, at acknowledged event %d: %v", i+1, target, kill(srv, load, receiver))
		} else {
			target := waitInBacklog(t, rng, receiver, load)
			k := killMidDeliveryUnderLoad(t, srv, load, receiver)
			t.Logf("kill %d: serve while delivering a backlog, at delivered event %d: %v", i+1, target, k)
		}
		srv = start(t, addr, args...)
	}
	acked := load.finish()
	waitDelivered(t, receiver, nonRefused(acked, refused), 60*time.Second)
	waitLagZero(t, addr, 30*time.Second)
	again := redelivered(addr)
	srv.stop(t, syscall.SIGTERM)
	extraLetters := checkAcknowledged(t, receiver, acked, refused, deadLetterIDs(t, common...))
	_, batches, cut := load.counts()
	t.Logf("%d events acknowledged (%d batches refused, %d cut short); %d deliveries beyond the first, %d dead letters beyond the first; the last process's redeliveries: %s",
		len(acked), batches, cut, extraDeliveries(receiver), extraLetters, again)
}

// The load of the SIGKILL tests, at most loadPosters*loadBatch events per
// loadPause, and how far apart their kills come: killMin events plus a
// random number below killSpread after the previous one.
const (
	loadPosters = 3
	loadBatch   = 10
	loadPause   = 15 * time.Millisecond
	killMin     = 300
	killSpread  = 1200
)

// TestGatewayAndRouterOnKafkaSurviveTenSIGKILLs runs a gateway and a router
// process on the real broker and SIGKILLs one of them, at random, ten times
// in a row, restarting it each time: the gateway once a random number of
// further events are acknowledged, the router at a random point in the
// delivery of a backlog the receiver built up by answering 503 for a while,
// all while events are posted without pause. Every acknowledged
// event ends delivered, or dead-lettered with a reason when the receiver
// refuses it, and the group's lag returns to 0.
func TestGatewayAndRouterOnKafkaSurviveTenSIGKILLs(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	rng := testRand(t)
	receiver := webhooktest.NewServer(t)
	const prefix = "kafka-kill"
	refused := scriptDeadLetters(receiver, prefix, 200_000)
	cfgPath := faultConfigFile(t, receiver.URL)
	common := []string{"--config", cfgPath, "--kafka-brokers", brokers}
	gwAddr, routerAddr := freeAddr(t), freeAddr(t)
	gateway := func() *server { return start(t, gwAddr, append([]string{"gateway"}, common...)...) }
	router := func() *server { return start(t, routerAddr, append([]string{"router"}, common...)...) }
	gw, rt := gateway(), router()
	load := startLoad(gwAddr, prefix, loadPosters, loadBatch, loadPause)

	for i := range 10 {
		if rng.IntN(2) == 0 {
			acked, _, _ := load.counts()
			target := acked + killMin + rng.IntN(killSpread)
			waitAcked(t, load, target)
			k := kill(gw, load, receiver)
			t.Logf("kill %d: gateway under load, at acknowledged event %d: %v", i+1, target, k)
			gw = gateway()
			continue
		}
		target := waitInBacklog(t, rng, receiver, load)
		k := killMidDeliveryUnderLoad(t, rt, load, receiver)
		t.Logf("kill %d: router delivering a backlog, at delivered event %d: %v", i+1, target, k)
		rt = router()
	}
	acked := load.finish()
	waitDelivered(t, receiver, nonRefused(acked, refused), 60*time.Second)
	waitLagZero(t, routerAddr, 30*time.Second)
	again := redelivered(routerAddr)
	extraLetters := checkAcknowledged(t, receiver, acked, refused, deadLetterIDs(t, common...))
	_, batches, cut := load.counts()
	t.Logf("%d events acknowledged (%d batches refused, %d cut short); %d deliveries beyond the first, %d dead letters beyond the first; the last router's redeliveries: %s",
		len(acked), batches, cut, extraDeliveries(receiver), extraLetters, again)
	rt.stop(t, syscall.SIGTERM)
	gw.stop(t, syscall.SIGTERM)
}

// nonRefused returns the ids the receiver accepts.
func nonRefused(ids []string, refused map[string]bool) []string {
	var out []string
	for _, id := range ids {
		if !refused[id] {
			out = append(out, id)
		}
	}
	return out
}
