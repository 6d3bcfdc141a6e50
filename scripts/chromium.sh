#!/usr/bin/env bash
# chromium.sh makes sure Debian's chromium is installed, for the browser tests
# of the delivery page (package ui, driven by chromedp). It installs it with
# apt-get only when it is missing, and prints the browser's path.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
	echo "chromium.sh: installing Debian's chromium" >&2
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi
command -v chromium
