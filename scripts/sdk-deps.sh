#!/usr/bin/env bash
# sdk-deps.sh installs the official Segment SDKs that the compatibility tests
# drive: @segment/analytics-node with npm ci from testdata/sdk/node's lock file,
# and segment-analytics-python in a virtualenv from testdata/sdk/python's
# pinned requirements. Running it again changes nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../testdata/sdk"

(cd node && npm ci --no-audit --no-fund --loglevel=error)

if [ ! -x python/.venv/bin/python ]; then
	python3 -m venv python/.venv
fi
python/.venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements.txt
