"""One rate budget per Descript token, shared by every process that uses the token.

Descript limits calls per token, not per worker; each process finding the limit on its own
means a 429 per process. So the budget lives in one database row (DescriptBudget, keyed by the
token's SHA-256 digest: the token itself is never stored) and every call first reserves a slot:

- a fixed one-minute window: at most `per_minute` calls are counted in it, then everyone waits
  for the next window;
- `not_before`: set from Descript's Retry-After on a 429, it holds every process off until then.

Each change is one conditional UPDATE, atomic on SQLite (writes are serialised) and PostgreSQL
(the WHERE is re-checked on the locked row), so no process reads a count and writes it back.
Do not reserve inside a caller's transaction: on PostgreSQL the row would stay locked (and every
other process waiting) until that transaction ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from ..conf import eid_settings
from .models import DescriptBudget, digest

WINDOW = timedelta(minutes=1)


class RateBudget:
    def __init__(self, token: str, *, per_minute: int | None = None) -> None:
        if not token:
            raise ValueError("A rate budget needs the Descript token it counts calls for.")
        self.key = digest(token)
        self.per_minute = int(eid_settings.EID_JOBS_RATE_PER_MINUTE if per_minute is None else per_minute)
        if self.per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        # The fast path: a moment before which this object already knows no call may go. It can
        # only be too early (another process may have pushed the shared one later), never too late.
        self._known_not_before: datetime | None = None
        self._row_exists = False

    def __repr__(self) -> str:  # the digest's start is enough to tell budgets apart
        return f"<RateBudget {self.key[:8]} {self.per_minute}/min>"

    def reserve(self) -> float:
        """0.0: one call may go now and is counted; otherwise the seconds to wait (nothing counted)."""
        now = timezone.now()
        if self._known_not_before is not None and now < self._known_not_before:
            return (self._known_not_before - now).total_seconds()
        self._ensure_row()
        for _ in range(3):
            now = timezone.now()
            free = self._rows().filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            # A slot in the current window...
            if free.filter(window_started_at__gt=now - WINDOW, calls_in_window__lt=self.per_minute).update(
                calls_in_window=F("calls_in_window") + 1
            ):
                return 0.0
            # ...or the first call of a new one.
            if free.filter(Q(window_started_at__isnull=True) | Q(window_started_at__lte=now - WINDOW)).update(
                window_started_at=now, calls_in_window=1
            ):
                return 0.0
            row = self._rows().values("not_before", "window_started_at", "calls_in_window").first()
            if row is None:  # deleted under us (an operator cleaned the table): start again
                self._row_exists = False
                self._ensure_row()
                continue
            until = now
            if row["not_before"] is not None:
                until = max(until, row["not_before"])
            if row["window_started_at"] is not None and row["calls_in_window"] >= self.per_minute:
                until = max(until, row["window_started_at"] + WINDOW)
            wait = (until - now).total_seconds()
            if wait > 0:
                self._known_not_before = until
                return wait
            # The window rolled over between the UPDATEs and the read: try again.
        return 0.05

    def hold_off(self, seconds: float) -> None:
        """Descript answered 429: no process calls with this token for `seconds` (never shortens a wait)."""
        seconds = max(0.0, float(seconds))
        self._ensure_row()
        now = timezone.now()
        until = now + timedelta(seconds=seconds)
        later = Value(until)
        for _ in range(2):
            if self._rows().update(
                not_before=Greatest(Coalesce(F("not_before"), later), later),
                throttled_total=F("throttled_total") + 1,
            ):
                break
            self._row_exists = False  # deleted under us: create it again
            self._ensure_row()
        if self._known_not_before is None or self._known_not_before < until:
            self._known_not_before = until

    def snapshot(self) -> dict[str, Any]:
        """What the admin and the CLI show: the hold-off, this window's calls, the 429s so far."""
        row = self._rows().first()
        now = timezone.now()
        if row is None:
            return {"per_minute": self.per_minute, "not_before": None, "window_started_at": None,
                    "calls_in_window": 0, "throttled_total": 0, "wait_seconds": 0.0}
        in_window = row.window_started_at is not None and row.window_started_at > now - WINDOW
        calls = row.calls_in_window if in_window else 0
        wait = 0.0
        if row.not_before is not None:
            wait = max(wait, (row.not_before - now).total_seconds())
        if in_window and calls >= self.per_minute and row.window_started_at is not None:
            wait = max(wait, (row.window_started_at + WINDOW - now).total_seconds())
        return {
            "per_minute": self.per_minute,
            "not_before": row.not_before if row.not_before and row.not_before > now else None,
            "window_started_at": row.window_started_at if in_window else None,
            "calls_in_window": calls,
            "throttled_total": row.throttled_total,
            "wait_seconds": wait,
        }

    # ---------------------------------------------------------------------------------------

    def _rows(self) -> QuerySet[DescriptBudget]:
        return DescriptBudget.objects.filter(token_digest=self.key)

    def _ensure_row(self) -> None:
        if self._row_exists or self._rows().exists():
            self._row_exists = True
            return
        try:
            with transaction.atomic():
                DescriptBudget.objects.create(token_digest=self.key)
        except IntegrityError:
            pass  # another process created it first: the same row for everyone
        self._row_exists = True
