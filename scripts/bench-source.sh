#!/usr/bin/env bash
# bench-source.sh measures the HubSpot source through switchyard serve
# (embedded log) with a free-tier `switchyard hubspot-sandbox` process and a
# local receiver standing for the app, and prints the figures with the
# machine's CPU: webhook notifications/s accepted from 10 concurrent signed
# deliveries of 100, with the requests' p50/p99, and p50/p99 from a sandbox
# edit to its event in the log and at the app at BENCH_RATE edits/s
# (default 100). BENCH_DURATION (default 30s) is the time per scenario;
# BENCH_BATCH_WAIT sets the source's batch_wait (default: its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkSource$' -benchtime 1x -timeout 30m
