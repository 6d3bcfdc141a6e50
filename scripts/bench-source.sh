#!/usr/bin/env bash
# bench-source.sh measures the HubSpot source through switchyard serve
# (embedded log) with a free-tier `switchyard hubspot-sandbox` process and a
# local receiver standing for the app, and prints the figures with the
# machine's CPU: webhook notifications/s accepted from 10 concurrent signed
# deliveries of 100, with the requests' p50/p99, and p50/p99 from a sandbox
# edit to its event in the log and at the app at BENCH_RATE edits/s
# (default 100); the records/s of a catch-up of BENCH_RECORDS (default
# 5,000) contacts edited while no webhook reached serve, against the search
# ceiling (5 searches/s of 200), with the searches made; and the records/s of
# a full sync of BENCH_FULL_RECORDS (default 30,000) contacts against the free
# tier's 1,000, with the share of the token's 10-second budget it used, once
# with the destination idle and once beside BENCH_RATE identifies/s through
# the gateway. BENCH_DURATION (default 30s) is the time of the webhooks and
# edits scenarios; BENCH_BATCH_WAIT sets the source's batch_wait (default:
# its own); BENCH_HUBSPOT_LATENCY (default 0) delays the sandbox's answers
# in the syncs' measured runs. One scenario: go test ./cmd/switchyard -run '^$' -bench
# 'BenchmarkSource/full-sync' -benchtime 1x.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkSource$' -benchtime 1x -timeout 30m
