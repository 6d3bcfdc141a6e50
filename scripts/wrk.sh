#!/usr/bin/env bash
# wrk.sh makes sure wrk is installed, for the ingest benchmarks' load. It
# installs Debian's package with apt-get only when it is missing, and prints
# its path.
set -euo pipefail

if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
	echo "wrk.sh: installing Debian's wrk" >&2
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >&2
fi
command -v wrk
