"""Keep secrets out of logs, whatever a library decides to print."""

from __future__ import annotations

import logging
import re

from django.conf import settings

# A presigned URL's query (signature, credential, token), bearer tokens, API keys, webhook secrets.
_PATTERNS = [
    (re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"'<>]+", re.I), r"\1[redacted]"),
    (re.compile(r"(Signature=|AWSAccessKeyId=|x-goog-signature=)[^&\s\"'<>]+", re.I), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1[redacted]"),
    # eid's own secrets wherever they appear: API keys (eid_ + 43) and webhook secrets (whsec_ + base64).
    (re.compile(r"\b(eid_)[A-Za-z0-9_-]{40,}"), r"\1[redacted]"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/]{24,}={0,2}"), r"\1[redacted]"),
    # Descript's job callbacks (eid.jobs.callbacks): the token in the path, e.g. an access log line.
    (re.compile(r"(/jobs/callback/)[A-Za-z0-9_-]+"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    token = getattr(settings, "DESCRIPT_API_TOKEN", "") if settings.configured else ""
    if token and len(token) >= 6:
        text = text.replace(token, "[redacted]")
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
