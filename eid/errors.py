"""The one base of eid's failures: a `kind` from the failing class's own enumeration, and plain words.

Each failure class lists the kinds it can have (`Kind`, a StrEnum, so a kind still compares
equal to its string and keys the tables that map it to an answer); constructing one with a kind
it does not list is a ValueError, so a misspelt kind fails where it is written instead of
falling through a table. `reason` is always words a user or operator can read, never a token or
a signed URL.
"""

from __future__ import annotations

from enum import StrEnum

class EidError(Exception):
    class Kind(StrEnum):
        pass

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = type(self).Kind(kind)
        self.reason = reason
