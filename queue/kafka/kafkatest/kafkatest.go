// Package kafkatest gives tests the address of the real Kafka cluster they
// run against. Start one on this machine with
//
//	export KAFKA_BROKERS=$(scripts/kafka.sh start)
package kafkatest

import (
	"os"
	"strings"
	"testing"
)

// Brokers returns the brokers listed, comma-separated, in KAFKA_BROKERS.
// When KAFKA_BROKERS is unset or empty it fails the test if CI is set, since
// CI must run every Kafka test, and skips it otherwise.
func Brokers(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for _, b := range strings.Split(os.Getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) > 0 {
		return brokers
	}
	if os.Getenv("CI") != "" {
		t.Fatal("KAFKA_BROKERS not set; CI must start Kafka with scripts/kafka.sh start")
	}
	t.Skip("KAFKA_BROKERS not set; run scripts/kafka.sh start")
	return nil
}
