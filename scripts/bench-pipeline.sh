#!/usr/bin/env bash
# bench-pipeline.sh drives events through gateway, log and router into the
# drop destination and into the webhook destination (a local receiver) and
# prints delivered events/s, p50/p99 receivedAt-to-delivery latency and peak
# RSS, on the embedded log and on Kafka. BENCH_DURATION (default 20s) is how
# long load is offered per scenario. Kafka is started with scripts/kafka.sh
# unless KAFKA_BROKERS is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${KAFKA_BROKERS:-}" ]; then
	KAFKA_BROKERS=$(scripts/kafka.sh start)
fi
export KAFKA_BROKERS
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkPipeline$' -benchtime 1x -timeout 30m
