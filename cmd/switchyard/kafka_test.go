package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// TestGatewaysSideBySideOnKafka runs two gateway processes on one Kafka
// cluster, posts to both, and reads the topic back with a plain Kafka client
// and with switchyard tail.
func TestGatewaysSideBySideOnKafka(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	suffix := uniqueSuffix()
	events, dlq := "it-events-"+suffix, "it-dlq-"+suffix
	cfgPath := writeConfig(t, fmt.Sprintf("sources:\n  - name: app\n    write_keys: [${APP_KEY}]\nlog:\n  events_topic: %s\n  dlq_topic: %s\n  partitions: 4\n", events, dlq))
	t.Setenv("APP_KEY", "kafka-key")
	var gateways []*server
	for i := 0; i < 2; i++ {
		gateways = append(gateways, start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", brokers))
	}

	const perGateway = 200
	var wg sync.WaitGroup
	for g, srv := range gateways {
		wg.Add(1)
		go func(g int, addr string) {
			defer wg.Done()
			for b := 0; b < perGateway/20; b++ {
				ids := make([]string, 20)
				for i := range ids {
					ids[i] = fmt.Sprintf("g%d-b%d-m%d", g, b, i)
				}
				if status, err := postBatch(http.DefaultClient, addr, "kafka-key", ids); err != nil || status != 200 {
					t.Errorf("gateway %d: status %d, %v", g, status, err)
					return
				}
			}
		}(g, srv.addr)
	}
	wg.Wait()
	for _, srv := range gateways {
		srv.stop(t, syscall.SIGTERM)
	}

	// Any Kafka client reads the topic: here kafka-go with its own group.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: kafkatest.Brokers(t), Topic: events, GroupID: "it-reader-" + suffix,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond,
	})
	defer reader.Close()
	seen := map[string]bool{}
	for len(seen) < 2*perGateway {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading %s after %d messages: %v", events, len(seen), err)
		}
		v := gjson.ParseBytes(m.Value)
		if string(m.Key) != v.Get("userId").String() {
			t.Fatalf("key %q, userId %q", m.Key, v.Get("userId").String())
		}
		if v.Get("_switchyard.source").String() != "app" || v.Get("receivedAt").String() == "" {
			t.Fatalf("not enriched: %s", m.Value)
		}
		seen[v.Get("messageId").String()] = true
	}

	tailed := tailAll(t, "--config", cfgPath, "--kafka-brokers", brokers, "--topic", "events")
	if len(tailed) != 2*perGateway {
		t.Fatalf("switchyard tail printed %d messages, want %d", len(tailed), 2*perGateway)
	}
}
