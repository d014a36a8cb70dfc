"""Per-user rate limits, so one user cannot spend the partner's Descript rate budget.

A fixed window per (scope, user) counted in Django's cache: `EID_THROTTLE_RATES` maps a scope
to "N/period" (period: s, m, h, d). With a shared cache (Redis) the limit holds across every
process; with the default per-process memory cache it holds per process. The API's views use
the same scopes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import caches

from .conf import eid_settings

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the window ends, when refused


def parse_rate(rate: str) -> tuple[int, int]:
    """"20/m" -> (20, 60). Also "20/min", "100/hour"; the period's first letter counts."""
    count, _, period = rate.partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"not a rate: {rate!r} (expected N/s, N/m, N/h or N/d)")
    return int(count), seconds


def check(scope: str, user_key: object, *, now: float | None = None) -> Verdict:
    rate = eid_settings.EID_THROTTLE_RATES.get(scope)
    if not rate:
        return Verdict(True)
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"eid:throttle:{scope}:{user_key}:{window}"
    cache = caches[eid_settings.EID_THROTTLE_CACHE]
    cache.add(key, 0, timeout=period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=period + 1)
        count = 1
    if count <= limit:
        return Verdict(True)
    return Verdict(False, retry_after=max(1, int((window + 1) * period - now) + 1))
