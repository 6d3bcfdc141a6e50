package kafka

import (
	"context"
	"net"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
)

// countingTransport answers metadata requests with answer(topic) and
// counts the requests it gets.
type countingTransport struct {
	answer func(topic string) *metadata.Response
	calls  int
}

func (c *countingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafkago.Request) (kafkago.Response, error) {
	c.calls++
	if m, ok := req.(*metadata.Request); ok {
		return c.answer(m.TopicNames[0]), nil
	}
	return &produce.Response{}, nil
}

func topicAnswer(topic string, partitions int, errorCode int16) *metadata.Response {
	t := metadata.ResponseTopic{Name: topic, ErrorCode: errorCode}
	for i := range partitions {
		t.Partitions = append(t.Partitions, metadata.ResponsePartition{PartitionIndex: int32(i)})
	}
	return &metadata.Response{Topics: []metadata.ResponseTopic{t}}
}

func TestWriterTransportAnswersATopicsMetadataForASecond(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	partitions := 8
	inner := &countingTransport{answer: func(topic string) *metadata.Response { return topicAnswer(topic, partitions, 0) }}
	tr := newWriterTransport(inner, func() time.Time { return now })
	ask := func(topic string) int {
		t.Helper()
		res, err := tr.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.(*metadata.Response).Topics[0].Partitions)
	}
	for range 100 {
		if n := ask("events"); n != 8 {
			t.Fatalf("%d partitions, want 8", n)
		}
	}
	if inner.calls != 1 {
		t.Fatalf("100 lookups within the TTL reached the transport %d times, want once", inner.calls)
	}
	ask("dlq")
	if inner.calls != 2 {
		t.Fatalf("another topic's lookup was answered from the first topic's: %d calls", inner.calls)
	}
	// The topic grows; the change shows once the answer is a TTL old.
	partitions = 12
	now = now.Add(topicMetadataTTL - time.Millisecond)
	if n := ask("events"); n != 8 {
		t.Fatalf("%d partitions before the TTL ended, want the cached 8", n)
	}
	now = now.Add(time.Millisecond)
	if n := ask("events"); n != 12 {
		t.Fatalf("%d partitions after the TTL, want 12", n)
	}
	// Requests other than a one-topic metadata request always go through.
	calls := inner.calls
	for range 3 {
		if _, err := tr.RoundTrip(context.Background(), nil, &produce.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if inner.calls != calls+3 {
		t.Fatalf("produce requests reached the transport %d times, want 3", inner.calls-calls)
	}
}

func TestWriterTransportDoesNotKeepAnAnswerWithAnError(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var errorCode int16 = 3 // UNKNOWN_TOPIC_OR_PARTITION, as just after creating it
	inner := &countingTransport{answer: func(topic string) *metadata.Response { return topicAnswer(topic, 4, errorCode) }}
	tr := newWriterTransport(inner, func() time.Time { return now })
	for range 3 {
		res, err := tr.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{"events"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.(*metadata.Response).Topics[0].ErrorCode; got != errorCode {
			t.Fatalf("error code %d, want the transport's %d", got, errorCode)
		}
	}
	if inner.calls != 3 {
		t.Fatalf("an answer with an error was kept: %d calls of 3 reached the transport", inner.calls)
	}
	errorCode = 0
	tr.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{"events"}})
	tr.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{"events"}})
	if inner.calls != 4 {
		t.Fatalf("the first good answer was not kept: %d calls, want 4", inner.calls)
	}
}
