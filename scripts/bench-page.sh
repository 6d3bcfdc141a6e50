#!/usr/bin/env bash
# bench-page.sh measures the delivery page of gateway and of serve (embedded
# log, a drop destination) while idle and while the gateway takes the
# /v1/batch benchmark load (100 events per request, 50 connections): the
# Overview's load time and bytes, the gaps between its stream's updates, the
# dead letters and live events pages, and the events/s with the page open
# and never opened. BENCH_DURATION (default 20s) is the time per phase. No
# Kafka is needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/wrk.sh >/dev/null
go test ./cmd/switchyard -run '^$' -bench '^BenchmarkPageUnderLoad$' -benchtime 1x -timeout 30m
