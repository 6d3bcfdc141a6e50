"""Signs and verifies HubSpot webhook requests with HubSpot's own Python
client, hubspot-api-client (hubspot.utils.signature.Signature), for the Go
package internal/hubspot/signature to compare against.

Reads one JSON object on stdin:

  {"sign":   [{"secret", "method", "uri", "body", "version", "timestamp"}...],
   "verify": [{"signature", "secret", "method", "uri", "body", "version", "timestamp"}...]}

and writes one JSON object on stdout:

  {"library": "<hubspot-api-client version>",
   "signatures": ["<Signature.get_signature of each sign case>"...],
   "verdicts": ["valid" | "invalid" | "bad timestamp" for each verify case]}

"bad timestamp" is Signature.is_valid raising InvalidSignatureTimestampError
(a v3 timestamp it finds 5 minutes old or more, or unreadable).
"""

import json
import sys
from importlib.metadata import version

from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature


def sign(case):
    return Signature.get_signature(
        client_secret=case["secret"],
        request_body=case["body"],
        signature_version=case["version"],
        http_uri=case["uri"],
        http_method=case["method"],
        timestamp=case["timestamp"],
    )


def verify(case):
    try:
        ok = Signature.is_valid(
            signature=case["signature"],
            client_secret=case["secret"],
            request_body=case["body"],
            http_uri=case["uri"],
            http_method=case["method"],
            signature_version=case["version"],
            timestamp=case["timestamp"],
        )
    except InvalidSignatureTimestampError:
        return "bad timestamp"
    return "valid" if ok else "invalid"


def main():
    cases = json.load(sys.stdin)
    json.dump(
        {
            "library": version("hubspot-api-client"),
            "signatures": [sign(c) for c in cases["sign"]],
            "verdicts": [verify(c) for c in cases["verify"]],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
