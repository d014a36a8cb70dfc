"""When to poll a Descript job next: Descript's documented cadence, as pure functions.

FACTS ("The jobs API"): the first poll after 5 s, then every 10 to 15 s, never more often than
every 3 s for one job. The spread is random so that a batch started together does not poll in
lockstep. With callbacks expected, a poll is only the fallback for a callback that never comes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ..conf import eid_settings


def next_poll_delay(*, polls_so_far: int, callbacks_expected: bool, rng: random.Random | None = None) -> float:
    """Seconds from now until the next GET /jobs/{id} of a job polled `polls_so_far` times."""
    floor = float(eid_settings.EID_JOBS_POLL_MIN_SECONDS)
    if callbacks_expected:
        delay = float(eid_settings.EID_JOBS_POLL_WITH_CALLBACKS_SECONDS)
    elif polls_so_far <= 0:
        delay = float(eid_settings.EID_JOBS_POLL_FIRST_SECONDS)
    else:
        low, high = (float(v) for v in eid_settings.EID_JOBS_POLL_SECONDS)
        delay = (rng or random).uniform(min(low, high), max(low, high))
    return max(floor, delay)


def earliest_poll(last_polled_at: datetime | None, now: datetime) -> datetime:
    """The first moment another GET of a job may go, whatever asked for it (a poll, a callback)."""
    if last_polled_at is None:
        return now
    return max(now, last_polled_at + timedelta(seconds=float(eid_settings.EID_JOBS_POLL_MIN_SECONDS)))
