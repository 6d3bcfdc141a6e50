package kafka_test

import (
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/switchyard/switchyard/queue"
)

// The Writer's balancer decides partitions on Kafka; queue.PartitionFor
// decides them on the embedded log and is what tests and the router rely on.
func TestHashBalancerAgreesWithPartitionFor(t *testing.T) {
	keys := [][]byte{
		[]byte("user-1"),
		[]byte("anonymous-6f1c2e4a-9b1d-4c3e-8f00-1234567890ab"),
		[]byte("ünïcødé"),
		{0},
		{0xff, 0xfe, 0xfd},
		[]byte{},
	}
	for i := range 1000 {
		keys = append(keys, fmt.Appendf(nil, "user-%d", i))
	}
	for _, n := range []int{1, 2, 3, 7, 8, 12, 64, 100} {
		partitions := make([]int, n)
		for i := range partitions {
			partitions[i] = i
		}
		// A fresh balancer per key: Hash keeps no state between keys, and
		// the result must not depend on earlier calls.
		for _, key := range keys {
			got := (&kafkago.Hash{}).Balance(kafkago.Message{Key: key}, partitions...)
			if want := queue.PartitionFor(key, n); got != want {
				t.Fatalf("key %q over %d partitions: kafka-go Hash chose %d, queue.PartitionFor %d", key, n, got, want)
			}
		}
	}
}
