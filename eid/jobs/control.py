"""What a person may do to a running auto-edit: cancel it, or choose after a partial import.

Cancel works at every step before copying home. Queued or waiting for a choice, nothing runs at
Descript and the auto-edit is cancelled at once. With a Descript job in flight, the job is
cancelled too (DELETE /jobs/{id}, 204) before the row says cancelled: right here when no worker
holds the auto-edit, else by that worker as soon as its current call returns. Once the edit is
published and on its way home, cancel is refused: the edit is made (and paid for) and the copy
ends on its own; a cancel that crosses that moment lets the copy finish.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .lease import finish
from .models import AutoEdit

log = logging.getLogger(__name__)

State = AutoEdit.State
_NOT_CANCELLABLE = (*AutoEdit.FINAL_STATES, State.COPYING)
_AT_DESCRIPT = (State.IMPORTING, State.EDITING, State.PUBLISHING)
# A look at the auto-edit's page keeps it "watched" this long (the page asks every 2 s).
WATCH_SECONDS = 30.0


def cancel(auto_edit: AutoEdit, *, by: str = "") -> bool:
    """Ask to cancel; True when it is (or is being) cancelled, False when it is too late."""
    from .machine import advance
    from .tasks import enqueue_advance, nudge

    reason = f"Cancelled by {by}." if by else "Cancelled."
    now = timezone.now()
    rows = AutoEdit.objects.filter(pk=auto_edit.pk).exclude(state__in=_NOT_CANCELLABLE)
    if not rows.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now, reason=reason[:500],
                                                                updated_at=now):
        auto_edit.refresh_from_db()
        return auto_edit.cancel_requested_at is not None and auto_edit.state not in _NOT_CANCELLABLE
    log.info("auto-edit %s: cancel asked%s", auto_edit.pk, f" by {by}" if by else "")
    if transaction.get_connection().in_atomic_block:
        # Descript is called only outside transactions: a worker does it once this commits.
        transaction.on_commit(lambda: nudge(auto_edit.pk))
    else:
        again = advance(auto_edit.pk)  # no worker holds it: cancel here and now
        if again is not None:
            enqueue_advance(auto_edit.pk, run_after=again)
        nudge(auto_edit.pk)  # a worker holds it: it sees the request when it lets go
    auto_edit.refresh_from_db()
    return True


def go_on(auto_edit: AutoEdit) -> bool:
    """After a partial import: edit with the files that did import. False when there is no such choice.

    It goes straight back to Descript, without queueing for a slot: a person chose, and the
    project already exists there.
    """
    from .tasks import nudge

    now = timezone.now()
    changed = AutoEdit.objects.filter(pk=auto_edit.pk, state=State.NEEDS_CHOICE).update(
        state=State.EDITING, next_action_at=now, updated_at=now)
    if changed:
        log.info("auto-edit %s: going on without %d file(s)", auto_edit.pk, len(auto_edit.failed_files or {}))
        transaction.on_commit(lambda: nudge(auto_edit.pk))
    auto_edit.refresh_from_db()
    return bool(changed)


def stop(auto_edit: AutoEdit) -> bool:
    """After a partial import: stop here (cancelled, saying why). False when there is no such choice."""
    auto_edit.refresh_from_db()
    if auto_edit.state != State.NEEDS_CHOICE:
        return False
    count = len(auto_edit.failed_files or {})
    reason = (f"Stopped after the import: {count} file{'s' if count != 1 else ''} did not import, "
              "and the edit was not to go on without them.")
    return finish(auto_edit, State.CANCELLED, reason=reason, from_states=(State.NEEDS_CHOICE,))


def being_watched(auto_edit: AutoEdit, now: datetime | None = None) -> bool:
    """Someone is looking at the auto-edit's page: poll its Descript job at the active cadence.

    With callbacks expected, polls are only the fallback (every EID_JOBS_POLL_WITH_CALLBACKS_SECONDS,
    a minute), which is right for a batch overnight and wrong for a person watching Descript's
    progress label and percent. So for WATCH_SECONDS after each look the job is polled as if no
    callback would come (5 s, then 10 to 15 s; the 3 s floor holds), and the first look brings the
    next poll forward. The row is written at most once per half window. True when it was written.
    """
    from .steps import SPACING_MARGIN, open_step
    from .tasks import nudge

    now = now or timezone.now()
    if auto_edit.state not in _AT_DESCRIPT:
        return False
    until = auto_edit.watched_until
    if until is not None and until - now > timedelta(seconds=WATCH_SECONDS / 2):
        return False
    AutoEdit.objects.filter(pk=auto_edit.pk).update(watched_until=now + timedelta(seconds=WATCH_SECONDS))
    if until is None or until <= now:
        step = open_step(auto_edit)
        if step is not None and step.job_id:
            from .cadence import earliest_poll

            last = step.last_polled_at + SPACING_MARGIN if step.last_polled_at else None
            nudge(auto_edit.pk, earliest_poll(last, now))
    return True
