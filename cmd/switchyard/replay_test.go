package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/kafka"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
)

// growingTopic is an events topic on Kafka that the test publishes to while
// replay or tail reads it, so that it keeps receiving events.
type growingTopic struct {
	t       *testing.T
	log     queue.Log
	brokers string
	topic   string
	cfgPath string

	mu        sync.Mutex
	published int
	limit     int
}

// newGrowingTopic makes a topic holding initial events and a config whose
// destination hook posts to url. Grow adds at most limit events more.
func newGrowingTopic(t *testing.T, url string, initial, limit int) *growingTopic {
	brokers := kafkatest.Brokers(t)
	log, err := kafka.New(kafka.Config{Brokers: brokers, Partitions: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	g := &growingTopic{t: t, log: log, brokers: strings.Join(brokers, ","), topic: "grow-events-" + suffix, limit: limit}
	// Few events pending at a time, so that a reader that read on past the
	// end the topic had when it began would meet the events grown meanwhile.
	cfg := fmt.Sprintf(`log:
  events_topic: %s
  dlq_topic: grow-dlq-%s
  partitions: 4
destinations:
  - name: hook
    type: webhook
    max_pending: 2
    webhook:
      url: %s
`, g.topic, suffix, url)
	g.cfgPath = filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.publish("initial", initial)
	return g
}

func (g *growingTopic) publish(prefix string, n int) {
	msgs := make([]queue.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = queue.Message{Topic: g.topic, Key: []byte(id), Value: fmt.Appendf(nil, `{"type":"track","event":"E","userId":%q,"messageId":%q}`, id, id)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.log.Publish(ctx, msgs...); err != nil {
		g.t.Errorf("publishing %d events: %v", n, err)
	}
}

// grow publishes n more events, or as many as the limit still allows, and
// returns only once they are in the topic.
func (g *growingTopic) grow(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n = min(n, g.limit-g.published)
	if n <= 0 {
		return
	}
	g.publish(fmt.Sprintf("grown-%d", g.published), n)
	g.published += n
}

func (g *growingTopic) grown() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.published
}

// TestReplayOfAGrowingTopicEndsOnKafka replays a topic from its start, with
// no end given, to a destination each of whose deliveries adds an event to
// the topic. The replay ends, having delivered the events that were there
// when it began.
func TestReplayOfAGrowingTopicEndsOnKafka(t *testing.T) {
	const initial = 30
	var g *growingTopic
	var mu sync.Mutex
	delivered := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events := []gjson.Result{gjson.ParseBytes(body)}
		if events[0].IsArray() {
			events = events[0].Array()
		}
		mu.Lock()
		for _, e := range events {
			delivered[e.Get("messageId").String()]++
		}
		mu.Unlock()
		g.grow(len(events))
	}))
	t.Cleanup(receiver.Close)
	g = newGrowingTopic(t, receiver.URL, initial, 200)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	args := []string{"--config", g.cfgPath, "--kafka-brokers", g.brokers, "--destination", "hook", "--from", "0"}
	if err := replay(ctx, args, io.Discard, &stderr); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if g.grown() == 0 {
		t.Fatal("the topic did not grow during the replay")
	}
	if len(delivered) != initial {
		t.Fatalf("the replay delivered %d distinct events, want the %d there when it began (%d were added meanwhile)", len(delivered), initial, g.grown())
	}
	for i := range initial {
		if id := fmt.Sprintf("initial-%d", i); delivered[id] != 1 {
			t.Fatalf("%s delivered %d times, want 1", id, delivered[id])
		}
	}
}

// growingWriter adds an event to the topic for every line written to it.
type growingWriter struct {
	g     *growingTopic
	lines int
}

func (w *growingWriter) Write(p []byte) (int, error) {
	n := bytes.Count(p, []byte("\n"))
	w.lines += n
	w.g.grow(n)
	return len(p), nil
}

// TestTailExitOfAGrowingTopicEndsOnKafka runs tail --exit on a topic that
// gets an event for every line tail prints. It ends, having printed the
// events that were there when it began.
func TestTailExitOfAGrowingTopicEndsOnKafka(t *testing.T) {
	const initial = 300
	g := newGrowingTopic(t, "http://127.0.0.1:1", initial, 1000)
	out := &growingWriter{g: g}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	args := []string{"--config", g.cfgPath, "--kafka-brokers", g.brokers, "--topic", "events", "--from-beginning", "--exit"}
	if err := tail(ctx, args, out, &stderr); err != nil {
		t.Fatalf("tail: %v\n%s", err, stderr.String())
	}
	if g.grown() == 0 {
		t.Fatal("the topic did not grow while tail read it")
	}
	if out.lines != initial {
		t.Fatalf("tail --exit printed %d lines, want the %d events there when it began (%d were added meanwhile)", out.lines, initial, g.grown())
	}
}
