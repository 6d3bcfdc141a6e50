#!/usr/bin/env bash
# bench-hubspot.sh measures the HubSpot destination: transform cost per
# event, and delivery against the sandbox at the free tier (share of the
# 1,000 contacts/s ceiling, records per call, 429s, and latency at half the
# ceiling). BENCH_DURATION (default 30s) is the length of each phase.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go test ./destinations/hubspot -run '^$' -bench . -benchtime 1x -timeout 30m
