package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// waitLagZero waits until the consumer group's lag, as the router process
// at addr reads it every 2s, is 0 in two readings in a row.
func waitLagZero(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	const series = `switchyard_router_consumer_lag{destination="hook"}`
	deadline := time.Now().Add(timeout)
	zeros := 0
	last := -1.0
	for zeros < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("consumer lag still %v after %v", last, timeout)
		}
		time.Sleep(2100 * time.Millisecond)
		if v, ok := scrapeCounter(addr, series); ok {
			last = v
		}
		if last == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
}

// TestRoutersOnKafkaRebalanceUnderLoad posts events for about 12s while
// router processes of one consumer group join, leave (SIGTERM) and die
// (SIGKILL), and one event in twenty-five fails three times first, so
// retries keep offsets unfinished behind finished ones when the group
// rebalances. Every event is delivered, and once the load stops the group's
// lag returns to 0.
func TestRoutersOnKafkaRebalanceUnderLoad(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	gw := start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", brokers)
	router := func() *server {
		return start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)
	}

	// The failing events belong to different users (postBatch's user is
	// the id's last digit), so no one user's queue of retries holds back
	// more than its share.
	for round := range 60 {
		for _, i := range []int{round % 10, 20 + (round+5)%10} {
			receiver.Script(fmt.Sprintf("reb-%d-%d", round, i), 500, 500, 500)
		}
	}

	var mu sync.Mutex
	var ids []string
	posting := make(chan error, 1)
	go func() {
		for round := 0; round < 60; round++ {
			batch := make([]string, 50)
			for i := range batch {
				batch[i] = fmt.Sprintf("reb-%d-%d", round, i)
			}
			if status, err := postBatch(http.DefaultClient, gw.addr, "k", batch); err != nil || status != 200 {
				posting <- fmt.Errorf("posting round %d: status %d, %v", round, status, err)
				return
			}
			mu.Lock()
			ids = append(ids, batch...)
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
		posting <- nil
	}()

	r1, r2 := router(), router()
	time.Sleep(3 * time.Second)
	r3 := router()
	time.Sleep(3 * time.Second)
	r2.stop(t, syscall.SIGTERM)
	time.Sleep(2 * time.Second)
	r3.kill()
	r4 := router()
	time.Sleep(2 * time.Second)
	r1.kill()
	if err := <-posting; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	posted := append([]string(nil), ids...)
	mu.Unlock()
	if len(posted) != 3000 {
		t.Fatalf("posted %d events, want 3000", len(posted))
	}

	waitDelivered(t, receiver, posted, 45*time.Second)
	waitLagZero(t, r4.addr, 30*time.Second)
	extra := extraDeliveries(receiver)
	t.Logf("%d events, %d deliveries (%d beyond the first); the last router's re-deliveries: %s",
		len(posted), len(posted)+extra, extra, redelivered(r4.addr))
	r4.stop(t, syscall.SIGTERM)
}

// TestARouterKeepsCommittingAfterAnotherLeaves is the rebalance a user
// meets first: one router delivers to a slow receiver that fails one
// request in twenty, a second router joins the group under load and stops
// again. The first keeps every partition it had through both rebalances,
// each of which re-delivers them from the committed offsets, and must still
// commit everything: lag 0 once the load stops.
func TestARouterKeepsCommittingAfterAnotherLeaves(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	receiver := webhooktest.NewServer(t)
	receiver.SetLatency(2 * time.Millisecond)
	const rounds, perRound = 200, 50
	for round := range rounds {
		for i := round % 20; i < perRound; i += 20 {
			receiver.Script(fmt.Sprintf("stay-%d-%d", round, i), 500)
		}
	}
	cfgPath := routerConfigFile(t, receiver.URL, "")
	gw := start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", brokers)
	first := start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)

	posting := make(chan error, 1)
	var posted []string
	go func() {
		for round := range rounds {
			batch := make([]string, perRound)
			for i := range batch {
				batch[i] = fmt.Sprintf("stay-%d-%d", round, i)
			}
			if status, err := postBatch(http.DefaultClient, gw.addr, "k", batch); err != nil || status != 200 {
				posting <- fmt.Errorf("posting round %d: status %d, %v", round, status, err)
				return
			}
			posted = append(posted, batch...)
			time.Sleep(50 * time.Millisecond)
		}
		posting <- nil
	}()
	time.Sleep(3 * time.Second)
	second := start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)
	time.Sleep(5 * time.Second)
	second.stop(t, syscall.SIGTERM)
	if err := <-posting; err != nil {
		t.Fatal(err)
	}

	waitDelivered(t, receiver, posted, 60*time.Second)
	waitLagZero(t, first.addr, 30*time.Second)
	pending, _ := scrapeCounter(first.addr, `switchyard_router_pending_events{destination="hook"}`)
	if pending != 0 {
		t.Errorf("%v events still pending once everything was delivered and committed", pending)
	}
	t.Logf("%d events, %d deliveries more than once; the remaining router's re-deliveries: %s",
		len(posted), extraDeliveries(receiver), redelivered(first.addr))
	first.stop(t, syscall.SIGTERM)
}

// redelivered reads a router's switchyard_router_redelivered_total by
// outcome.
func redelivered(addr string) string {
	var out []string
	for _, outcome := range []string{"held", "already_delivered", "revoked_in_flight"} {
		v, _ := scrapeCounter(addr, fmt.Sprintf(`switchyard_router_redelivered_total{destination="hook",outcome=%q}`, outcome))
		out = append(out, fmt.Sprintf("%s %v", outcome, v))
	}
	return strings.Join(out, ", ")
}

// extraDeliveries counts the 2xx deliveries beyond the first of each event.
func extraDeliveries(srv *webhooktest.Server) int {
	accepted := 0
	for _, d := range srv.Received() {
		if d.Status/100 == 2 {
			accepted++
		}
	}
	return accepted - deliveredCount(srv)
}
