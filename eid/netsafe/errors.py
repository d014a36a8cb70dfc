"""The two ways a fetch can end badly: refused before anything was fetched, or failed after.

Both carry `reason`, plain words a user can read; the messages this package writes name a link
only through `redact_url`, never with its query string.
"""

from __future__ import annotations


class UnsafeURL(ValueError):
    """A link we refuse to fetch. `reason` is plain words a user can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchError(Exception):
    """A fetch that was allowed but failed.

    `kind` is one of "too_large", "timeout", "bad_status", "not_html", "connection",
    "redirect", "bad_encoding"; `status` is the HTTP status when there was one.
    """

    KINDS = frozenset({"too_large", "timeout", "bad_status", "not_html", "connection", "redirect", "bad_encoding"})

    def __init__(self, reason: str, kind: str = "connection", status: int | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown FetchError kind {kind!r}")
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status
