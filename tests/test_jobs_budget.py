"""The shared rate budget per Descript token (a database row every process updates) and the poll cadence.

The budget's window is moved back in the row itself to stand in for a minute passing; the
concurrency test runs real threads, each on its own database connection.
"""

from __future__ import annotations

import hashlib
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from eid.jobs.budget import RateBudget
from eid.jobs.cadence import earliest_poll, next_poll_delay
from eid.jobs.models import DescriptBudget

TOKEN = "descript-token-budget-tests-Zq81"


def age_window(token: str, seconds: float) -> None:
    """A minute passing, for the row: its window started `seconds` earlier than it did."""
    row = DescriptBudget.objects.get(token_digest=hashlib.sha256(token.encode()).hexdigest())
    row.window_started_at -= timedelta(seconds=seconds)
    row.save(update_fields=["window_started_at"])


# --- the budget -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_budgets_on_one_token_share_the_window_and_a_new_minute_opens_it_again():
    first, second = RateBudget(TOKEN, per_minute=3), RateBudget(TOKEN, per_minute=3)

    assert [first.reserve(), second.reserve(), first.reserve()] == [0.0, 0.0, 0.0]
    wait = second.reserve()
    assert 55 < wait <= 60, "the fourth call of the minute waits for the next window"
    assert first.reserve() > 55, "the other object sees the same full window"
    assert first.snapshot()["calls_in_window"] == 3, "a refused reservation is not counted"

    age_window(TOKEN, 61)
    fresh = RateBudget(TOKEN, per_minute=3)  # as another process would: nothing known in memory
    assert fresh.reserve() == 0.0
    assert fresh.snapshot()["calls_in_window"] == 1


@pytest.mark.django_db
def test_different_tokens_have_their_own_budgets_and_the_token_is_never_stored():
    mine, theirs = RateBudget(TOKEN, per_minute=1), RateBudget("another-token-entirely-77", per_minute=1)
    assert mine.reserve() == 0.0
    assert mine.reserve() > 0
    assert theirs.reserve() == 0.0, "one token's spent minute does not slow another token"

    keys = set(DescriptBudget.objects.values_list("token_digest", flat=True))
    assert keys == {hashlib.sha256(t.encode()).hexdigest() for t in (TOKEN, "another-token-entirely-77")}
    assert TOKEN not in repr(mine) and TOKEN not in str(mine.snapshot())


@pytest.mark.django_db
def test_a_hold_off_stops_every_holder_of_the_token_and_is_never_shortened():
    worker, cli = RateBudget(TOKEN), RateBudget(TOKEN)
    assert worker.reserve() == 0.0

    cli.hold_off(20)  # Descript said 429, Retry-After: 20
    assert 18 < worker.reserve() <= 20, "a process that did not see the 429 waits too"
    cli.hold_off(2)
    assert 18 < RateBudget(TOKEN).reserve() <= 20, "a shorter Retry-After does not cut the longer wait"

    snapshot = RateBudget(TOKEN).snapshot()
    assert snapshot["throttled_total"] == 2
    assert snapshot["not_before"] > datetime.now(UTC) + timedelta(seconds=17)
    assert snapshot["calls_in_window"] == 1, "waiting calls are not counted"


@pytest.mark.django_db
def test_a_hold_off_that_has_passed_lets_calls_go_again():
    budget = RateBudget(TOKEN)
    budget.hold_off(0.05)
    threading.Event().wait(0.1)
    assert budget.reserve() == 0.0
    assert budget.snapshot()["not_before"] is None


@pytest.mark.django_db
def test_snapshot_of_an_unused_token():
    snapshot = RateBudget(TOKEN, per_minute=7).snapshot()
    assert snapshot == {"per_minute": 7, "not_before": None, "window_started_at": None,
                        "calls_in_window": 0, "throttled_total": 0, "wait_seconds": 0.0}


@pytest.mark.django_db
def test_default_rate_comes_from_the_settings():
    with override_settings(EID_JOBS_RATE_PER_MINUTE=2):
        budget = RateBudget(TOKEN)
    assert [budget.reserve(), budget.reserve()] == [0.0, 0.0] and budget.reserve() > 0
    with pytest.raises(ValueError):
        RateBudget("")


@pytest.mark.django_db(transaction=True)
def test_threads_reserving_at_once_never_exceed_the_rate():
    per_minute, threads, each = 25, 8, 10
    granted: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work() -> None:
        budget = RateBudget(TOKEN, per_minute=per_minute)  # one object per "process"
        try:
            start.wait()
            for _ in range(each):
                wait = budget.reserve()
                with lock:
                    granted.append(wait)
        finally:
            connection.close()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)

    assert len(granted) == threads * each
    assert granted.count(0.0) == per_minute, "exactly the minute's calls were let through"
    assert RateBudget(TOKEN, per_minute=per_minute).snapshot()["calls_in_window"] == per_minute


# --- the cadence ------------------------------------------------------------------------------


@override_settings(EID_JOBS_POLL_FIRST_SECONDS=5.0, EID_JOBS_POLL_SECONDS=(10.0, 15.0),
                   EID_JOBS_POLL_MIN_SECONDS=3.0, EID_JOBS_POLL_WITH_CALLBACKS_SECONDS=60.0)
def test_polls_start_at_five_seconds_then_spread_between_ten_and_fifteen():
    rng = random.Random(7)
    assert next_poll_delay(polls_so_far=0, callbacks_expected=False, rng=rng) == 5.0
    later = [next_poll_delay(polls_so_far=n, callbacks_expected=False, rng=rng) for n in range(1, 200)]
    assert all(10.0 <= d <= 15.0 for d in later)
    assert max(later) - min(later) > 4, "spread, so a batch started together does not poll in lockstep"
    assert next_poll_delay(polls_so_far=0, callbacks_expected=True) == 60.0
    assert next_poll_delay(polls_so_far=9, callbacks_expected=True) == 60.0


@override_settings(EID_JOBS_POLL_FIRST_SECONDS=0.5, EID_JOBS_POLL_SECONDS=(1.0, 2.0),
                   EID_JOBS_POLL_MIN_SECONDS=3.0, EID_JOBS_POLL_WITH_CALLBACKS_SECONDS=1.0)
def test_no_setting_brings_a_poll_under_the_minimum():
    for n in range(5):
        for callbacks in (False, True):
            assert next_poll_delay(polls_so_far=n, callbacks_expected=callbacks) >= 3.0


@override_settings(EID_JOBS_POLL_MIN_SECONDS=3.0)
def test_earliest_poll_keeps_three_seconds_from_the_previous_get():
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert earliest_poll(None, now) == now
    assert earliest_poll(now - timedelta(seconds=1), now) == now + timedelta(seconds=2)
    assert earliest_poll(now - timedelta(seconds=30), now) == now
