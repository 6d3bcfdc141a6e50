#!/usr/bin/env bash
# bench-soak.sh runs switchyard serve on the embedded log with a HubSpot
# destination pointed at a free-tier `switchyard hubspot-sandbox` process,
# offers mixed traffic (identify, group, track, page, 1% invalid) at about
# half the free tier's call ceiling, and prints every minute serve's RSS,
# goroutines, open files and consumer lag, the HubSpot calls/s, the p99
# receivedAt-to-HubSpot latency and the destination state's size on disk,
# then whether they stayed flat. BENCH_DURATION (default 30m) is the length
# of the load; BENCH_RATE (default 170) the events offered per second. The
# benchmark bounds its own waits, so go test's timeout is off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_DURATION=${BENCH_DURATION:-30m}
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkSoak$' -benchtime 1x -timeout 0
