"""Standard Webhooks signatures, made by the `standardwebhooks` package (no HMAC code of ours).

A delivery carries three headers: `webhook-id` (the message id, kept by retries and replays),
`webhook-timestamp` (seconds since the epoch, at this attempt) and `webhook-signature`: one
`v1,<base64>` per signing secret, separated by spaces. During a secret rotation the endpoint has
two secrets and every delivery carries both signatures, so a receiver that still knows only the
old secret, and one that knows only the new, both verify.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone

from standardwebhooks import Webhook


def signature_header(secrets: Sequence[str], webhook_id: str, timestamp: int, body: str) -> str:
    """`webhook-signature`: one `v1,<base64>` per secret, space-separated."""
    at = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return " ".join(Webhook(secret).sign(webhook_id, at, body) for secret in secrets)


def signed_headers(secrets: Sequence[str], webhook_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` (the exact text that is sent)."""
    if not secrets:
        raise ValueError("a delivery needs at least one secret")
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets, webhook_id, ts, body),
    }
