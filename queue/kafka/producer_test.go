package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/queue/kafka"
	"github.com/switchyard/switchyard/queue/kafka/kafkatest"
	"github.com/switchyard/switchyard/queue/queuetest"
)

// openObserved opens a Log whose debug entries the test can read.
func openObserved(t *testing.T, cfg kafka.Config) (*kafka.Log, *observer.ObservedLogs) {
	t.Helper()
	cfg.Brokers = kafkatest.Brokers(t)
	core, logs := observer.New(zap.DebugLevel)
	l, err := kafka.New(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("opening kafka log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, logs
}

// rounds returns the "round sent" entries: calls, batches and attempts of
// each round.
func rounds(logs *observer.ObservedLogs) [][3]int64 {
	var out [][3]int64
	for _, e := range logs.FilterMessage("round sent").All() {
		f := e.ContextMap()
		out = append(out, [3]int64{f["calls"].(int64), f["batches"].(int64), f["attempts"].(int64)})
	}
	return out
}

// Calls waiting together go out in one round: one produce request to the
// single broker, with one batch per partition, whatever the number of calls.
func TestCallsWaitingTogetherShareOneRound(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The linger gives every call time to arrive before the round goes.
	l, logs := openObserved(t, kafka.Config{Partitions: 4, BatchTimeout: config.Duration(time.Second)})
	topic := queuetest.Topic(t)
	if _, err := l.Partitions(ctx, topic); err != nil {
		t.Fatal(err)
	}
	const calls = 40
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.Publish(ctx, queue.Message{Topic: topic, Key: fmt.Appendf(nil, "user-%d", i), Value: fmt.Appendf(nil, "%d", i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got := rounds(logs)
	if len(got) != 1 || got[0] != [3]int64{calls, 4, 1} {
		t.Fatalf("rounds (calls, batches, attempts) = %v, want one of %d calls in 4 batches, sent once", got, calls)
	}
	if n := len(queuetest.ReadAll(t, l, topic)); n != calls {
		t.Fatalf("read %d messages, want %d", n, calls)
	}
}

// A caller that stops waiting may reuse its buffers at once: what is
// written is what it passed, though its call was still waiting for its
// round, and the calls after it, whose copies may take the same memory once
// that round is answered, keep their own contents too.
func TestACallerMayReuseItsBuffersAfterGivingUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The linger holds the first round long after its caller gives up.
	l, _ := openObserved(t, kafka.Config{Partitions: 1, BatchTimeout: config.Duration(500 * time.Millisecond)})
	topic := queuetest.Topic(t)
	if _, err := l.Partitions(ctx, topic); err != nil {
		t.Fatal(err)
	}
	key, value := []byte("user-1"), []byte("first value")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	err := l.Publish(short, queue.Message{Topic: topic, Key: key, Value: value})
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with a 50 ms context = %v, want context.DeadlineExceeded", err)
	}
	copy(key, "XXXXXX")
	copy(value, "overwritten")
	want := []string{"first value"}
	for i := range 4 {
		v := fmt.Sprintf("later value %d", i)
		want = append(want, v)
		if err := l.Publish(ctx, queue.Message{Topic: topic, Key: []byte("user-1"), Value: []byte(v)}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	read := queuetest.ReadAll(t, l, topic)
	if len(read) != len(want) {
		t.Fatalf("read %d messages, want %d", len(read), len(want))
	}
	for i, m := range read {
		if string(m.Key) != "user-1" || string(m.Value) != want[i] {
			t.Fatalf("message %d is %q=%q, want user-1=%q", i, m.Key, m.Value, want[i])
		}
	}
}

// A call with more messages for a partition than one batch holds is sent
// in parts, in order.
func TestALargeCallIsSentInPartsInItsOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l, logs := openObserved(t, kafka.Config{Partitions: 1, BatchSize: 10})
	topic := queuetest.Topic(t)
	var msgs []queue.Message
	for i := range 95 {
		msgs = append(msgs, queue.Message{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := l.Publish(ctx, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := rounds(logs); len(got) != 10 {
		t.Fatalf("rounds = %v, want 10 (95 messages, 10 a batch)", got)
	}
	read := queuetest.ReadAll(t, l, topic)
	if len(read) != len(msgs) {
		t.Fatalf("read %d messages, want %d", len(read), len(msgs))
	}
	for i, m := range read {
		if want := fmt.Sprint(i); string(m.Value) != want {
			t.Fatalf("message %d is %q, want %q", i, m.Value, want)
		}
	}
}

// The broker refusing one partition's batch fails the calls with messages
// in it, with the broker's error, and no other call of the round. Source:
// Kafka's produce response carries an error code per partition
// (MESSAGE_TOO_LARGE, code 10, for a batch over the topic's
// max.message.bytes).
func TestARefusedBatchFailsOnlyItsCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	topic := queuetest.Topic(t)
	// A topic that takes batches of at most 2,000 bytes, made before the
	// log sees it.
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	res, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: 8, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2000"}},
	}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("creating %s: %v %v", topic, err, res.Errors[topic])
	}
	l, logs := openObserved(t, kafka.Config{Compression: "none", BatchTimeout: config.Duration(time.Second)})
	if n, err := l.Partitions(ctx, topic); err != nil || n != 8 {
		t.Fatalf("Partitions = %d, %v; want 8", n, err)
	}
	large, small := []byte("big"), []byte("tiny")
	if queue.PartitionFor(large, 8) == queue.PartitionFor(small, 8) {
		t.Fatal("the keys share a partition; pick others")
	}
	big := make([]byte, 5000)
	rand.Read(big)
	var wg sync.WaitGroup
	var errLarge, errSmall error
	wg.Add(2)
	go func() {
		defer wg.Done()
		errLarge = l.Publish(ctx, queue.Message{Topic: topic, Key: large, Value: big})
	}()
	go func() {
		defer wg.Done()
		errSmall = l.Publish(ctx, queue.Message{Topic: topic, Key: small, Value: []byte("fits")})
	}()
	wg.Wait()
	if got := rounds(logs); len(got) != 1 || got[0] != [3]int64{2, 2, 1} {
		t.Fatalf("rounds (calls, batches, attempts) = %v, want one of 2 calls in 2 batches, sent once (the refusal is not transient)", got)
	}
	if !errors.Is(errLarge, kafkago.MessageSizeTooLarge) || errors.Is(errLarge, queue.ErrUnavailable) {
		t.Fatalf("the large message's Publish = %v, want the broker's MessageSizeTooLarge, not unavailable", errLarge)
	}
	if errSmall != nil {
		t.Fatalf("the small message's Publish = %v, want nil", errSmall)
	}
	read := queuetest.ReadAll(t, l, topic)
	if len(read) != 1 || string(read[0].Value) != "fits" {
		t.Fatalf("read %v, want only the small message", read)
	}
}
