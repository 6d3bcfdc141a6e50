#!/usr/bin/env bash
# bench-ingest.sh loads the gateway over loopback and prints events/s,
# requests/s, p50/p99 latency and peak RSS for /v1/batch (100 events per
# request) and /v1/track (single events), over 50 connections, on the
# embedded log and on Kafka. BENCH_DURATION (default 20s) is the time per
# scenario. Kafka is started with scripts/kafka.sh unless KAFKA_BROKERS is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${KAFKA_BROKERS:-}" ]; then
	KAFKA_BROKERS=$(scripts/kafka.sh start)
fi
export KAFKA_BROKERS
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkIngest$' -benchtime 1x -timeout 30m
