#!/usr/bin/env bash
# test.sh runs every test of the project on a fresh machine: it fetches the Go
# modules, installs the Node.js and Python Segment SDKs (scripts/sdk-deps.sh)
# and Debian's chromium for the browser tests (scripts/chromium.sh),
# starts a real single-node Kafka (scripts/kafka.sh) unless
# KAFKA_BROKERS already names one, runs go vet, every test with the race
# detector, and each fuzz target briefly (FUZZTIME, default 20000x: an
# execution count rather than a duration, since Go 1.26's fuzz coordinator can
# fail a duration-bounded run with a spurious "context deadline exceeded" as
# the time runs out, golang/go#75804).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME=${FUZZTIME:-20000x}

go mod download
scripts/sdk-deps.sh
# The delivery page's browser tests (package ui) drive Debian's chromium.
scripts/chromium.sh >/dev/null

if [ -z "${KAFKA_BROKERS:-}" ]; then
	KAFKA_BROKERS=$(scripts/kafka.sh start)
	trap 'scripts/kafka.sh stop || true' EXIT
fi
export KAFKA_BROKERS
echo "test.sh: Kafka at $KAFKA_BROKERS" >&2

go vet ./...
go test -race -count=1 -timeout 20m ./...

# Each fuzz target runs on its own: go test -fuzz takes one target per run.
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r pkg; do
	for target in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //'); do
		echo "test.sh: fuzzing $target in $pkg for $FUZZTIME" >&2
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
