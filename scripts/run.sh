#!/usr/bin/env bash
# run.sh builds switchyard and runs `switchyard serve` on the embedded log in
# ./data, listening on :8080 (SWITCHYARD_ADDR), with the write key in
# SWITCHYARD_WRITE_KEY (default dev-write-key). Extra arguments go to serve.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
go build -o bin/switchyard ./cmd/switchyard
export SWITCHYARD_WRITE_KEY=${SWITCHYARD_WRITE_KEY:-dev-write-key}
exec bin/switchyard serve "$@"
