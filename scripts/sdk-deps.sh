#!/usr/bin/env bash
# sdk-deps.sh installs the official Segment SDKs that the compatibility tests
# drive: @segment/analytics-node with npm ci from testdata/sdk/node's lock file,
# segment-analytics-python in a virtualenv from testdata/sdk/python's pinned
# requirements, and analytics-java from Maven Central into
# testdata/sdk/java/target/lib, with Send.java compiled against it; HubSpot's
# official Python clients (hubspot-api-client, hubspot-sdk) in a virtualenv
# from testdata/hubspot-schemas's pinned requirements, which the sandbox's
# schema test and internal/hubspot/signature's cross-check with
# hubspot-api-client's signature code drive; and schemathesis, which checks the gateway against its
# OpenAPI document, in a virtualenv from testdata/schemathesis's pinned
# requirements. Running it again changes nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../testdata/sdk"

(cd node && npm ci --no-audit --no-fund --loglevel=error)

if [ ! -x python/.venv/bin/python ]; then
	python3 -m venv python/.venv
fi
python/.venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements.txt

if [ ! -x ../hubspot-schemas/.venv/bin/python ]; then
	python3 -m venv ../hubspot-schemas/.venv
fi
../hubspot-schemas/.venv/bin/pip install --quiet --disable-pip-version-check -r ../hubspot-schemas/requirements.txt

(
	cd java
	mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=target/lib >&2
	mkdir -p target/classes
	javac -nowarn -cp 'target/lib/*' -d target/classes Send.java
)

# CPython before 3.11.8 (and 3.12.2) can stop a schemathesis run with
# "SystemError: AST constructor recursion depth mismatch"; take pyenv's 3.13
# when it is there.
python=python3
if command -v pyenv >/dev/null; then
	for candidate in "$(pyenv root)"/versions/3.13*/bin/python3; do
		if [ -x "$candidate" ]; then python=$candidate; fi
	done
fi
if [ ! -x ../schemathesis/.venv/bin/python ]; then
	"$python" -m venv ../schemathesis/.venv
fi
../schemathesis/.venv/bin/pip install --quiet --disable-pip-version-check -r ../schemathesis/requirements.txt
