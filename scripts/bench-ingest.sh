#!/usr/bin/env bash
# bench-ingest.sh loads the gateway over loopback with wrk and prints
# events/s, requests/s, p50/p99 latency, peak RSS, CPU time and allocations
# per event for /v1/batch (100 events per request) and /v1/track (single
# events), over 50 connections: for a bare Fiber handler (the ceiling), for
# `switchyard gateway` on the embedded log and on Kafka, and for
# `switchyard serve` with a drop destination. BENCH_DURATION (default 20s)
# is the time per scenario; SWITCHYARD_PROFILE_DIR, a folder for the
# switchyard processes' CPU and allocation profiles. Kafka is started with
# scripts/kafka.sh unless KAFKA_BROKERS is set; wrk is installed by
# scripts/wrk.sh when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/wrk.sh >/dev/null
if [ -z "${KAFKA_BROKERS:-}" ]; then
	KAFKA_BROKERS=$(scripts/kafka.sh start)
fi
export KAFKA_BROKERS
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkIngest$' -benchtime 1x -timeout 30m
