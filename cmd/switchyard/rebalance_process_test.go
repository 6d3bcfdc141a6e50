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
// (SIGKILL). Every event is delivered, and once the load stops the group's
// lag returns to 0.
func TestRoutersOnKafkaRebalanceUnderLoad(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	gw := start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", brokers)
	router := func() *server {
		return start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", brokers)
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
	requests := 0
	for _, d := range receiver.Received() {
		if d.Status/100 == 2 {
			requests++
		}
	}
	held, _ := scrapeCounter(r4.addr, `switchyard_router_redelivered_total{destination="hook",outcome="held"}`)
	t.Logf("%d events, %d deliveries (%d twice or more); the last router turned away %v re-delivered offsets it held",
		len(posted), requests, requests-deliveredCount(receiver), held)
	r4.stop(t, syscall.SIGTERM)
}
