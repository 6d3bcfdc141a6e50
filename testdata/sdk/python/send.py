"""Sends every Segment call type with the official Python SDK, unchanged
and gzipped, to the gateway at HOST with WRITE_KEY:
python send.py HOST WRITE_KEY. Exits non-zero when the SDK reports an error."""

import sys
from datetime import datetime, timezone

from segment.analytics import Client

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = Client(write_key, host=host, gzip=True, max_retries=0, upload_interval=0.05,
                on_error=lambda err, batch: errors.append(err))

timestamp = datetime(2026, 11, 22, 11, 0, 0, 123000, tzinfo=timezone.utc)
client.identify(message_id="sdk-identify", user_id="u-1", timestamp=timestamp,
                traits={"email": "ada@example.com", "firstName": "Ada", "Plan Type": "pro", "plan type": "free", "gone": None})
client.track(message_id="sdk-track", user_id="u-1", event="Order Completed", timestamp=timestamp,
             properties={"revenue": 42.5, "currency": "EUR"})
client.page(message_id="sdk-page", anonymous_id="anon-1", name="Pricing", timestamp=timestamp,
            properties={"url": "https://example.com/pricing", "category": "Docs"})
client.screen(message_id="sdk-screen", user_id="u-1", name="Home", timestamp=timestamp)
client.group(message_id="sdk-group", user_id="u-1", group_id="acme", timestamp=timestamp,
             traits={"name": "Acme", "website": "https://www.acme.example/"})
client.alias(message_id="sdk-alias", user_id="u-1", previous_id="anon-1", timestamp=timestamp)

client.flush()
client.shutdown()
for err in errors:
    print("analytics-python error:", err, file=sys.stderr)
sys.exit(1 if errors else 0)
