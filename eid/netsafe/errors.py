"""The two ways a fetch can end badly: refused before anything was fetched, or failed after.

Both carry `reason`, plain words a user can read; the messages this package writes name a link
only through `redact_url`, never with its query string.
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import EidError


class UnsafeURL(EidError, ValueError):
    """A link we refuse to fetch. `reason` is plain words a user can read."""

    class Kind(StrEnum):
        UNSAFE = "unsafe"

    def __init__(self, reason: str) -> None:
        super().__init__("unsafe", reason)


class FetchError(EidError):
    """A fetch that was allowed but failed; `status` is the HTTP status when there was one."""

    class Kind(StrEnum):
        TOO_LARGE = "too_large"
        TIMEOUT = "timeout"
        BAD_STATUS = "bad_status"
        NOT_HTML = "not_html"
        CONNECTION = "connection"
        REDIRECT = "redirect"
        BAD_ENCODING = "bad_encoding"

    def __init__(self, reason: str, kind: str = "connection", status: int | None = None) -> None:
        super().__init__(kind, reason)
        self.status = status
