"""Background work for auto-edits on the Django Tasks API. A task is only a nudge: eid.jobs.machine does the work.

Every nudge goes through `nudge`, which first lowers the row's `next_action_at` to its time: a
run that finds the row not yet due drops its task (the one for that time is queued), and a run
that holds the row when a nudge comes sees the earlier time when it lets go (eid.jobs.steps.later).
The sweep (eid.tasks.sweep_stale) nudges rows no worker moved for EID_JOBS_STALE_SECONDS.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from ..conf import eid_settings

if TYPE_CHECKING:
    from .models import AutoEdit

log = logging.getLogger(__name__)


@task()
def advance_auto_edit(auto_edit_id: str) -> None:
    from .machine import advance

    again = advance(auto_edit_id)
    if again is not None:
        enqueue_advance(auto_edit_id, run_after=again)


def enqueue_advance(auto_edit_id: Any, run_after: datetime | None = None) -> None:
    if run_after is not None and run_after <= timezone.now():
        run_after = None
    task_ = advance_auto_edit.using(run_after=run_after) if run_after is not None else advance_auto_edit
    task_.enqueue(str(auto_edit_id))


def nudge(auto_edit_id: Any, at: datetime | None = None) -> bool:
    """Have the auto-edit run at `at` (now by default) unless it is due sooner already."""
    from .models import AutoEdit

    at = at or timezone.now()
    changed = (AutoEdit.objects.filter(pk=auto_edit_id).exclude(state__in=AutoEdit.FINAL_STATES)
               .filter(Q(next_action_at__isnull=True) | Q(next_action_at__gt=at)).update(next_action_at=at))
    if changed:
        enqueue_advance(auto_edit_id, run_after=at)
    return bool(changed)


def nudge_queued(left: AutoEdit | None = None) -> int:
    """Slots came free at Descript: nudge the oldest queued auto-edits (of `left`'s batch first)."""
    from .machine import AT_DESCRIPT
    from .models import AutoEdit

    free = int(eid_settings.EID_JOBS_MAX_IN_FLIGHT) - AutoEdit.objects.filter(state__in=AT_DESCRIPT).count()
    if free <= 0:
        return 0
    queued = AutoEdit.objects.filter(state=AutoEdit.State.QUEUED).order_by("created_at")
    ids: list[Any] = []
    if left is not None and left.batch_id is not None and left.batch is not None:
        # Its batch's own slots first (a nudge to a row whose batch is full is only a wasted look).
        batch_busy = AutoEdit.objects.filter(batch_id=left.batch_id, state__in=AT_DESCRIPT).count()
        room = min(free, max(0, left.batch.max_in_flight - batch_busy))
        ids += list(queued.filter(batch_id=left.batch_id).values_list("pk", flat=True)[:room])
    if len(ids) < free:
        others = queued.exclude(batch_id=left.batch_id) if left is not None and left.batch_id else queued
        ids += list(others.values_list("pk", flat=True)[:free - len(ids)])
    for pk in ids:
        nudge(pk)
    return len(ids)


def sweep_stale() -> int:
    """Nudge every auto-edit no worker is moving (a dead worker's, or one whose nudge was lost)."""
    from .models import AutoEdit

    stale = AutoEdit.objects.stale(stale_seconds=float(eid_settings.EID_JOBS_STALE_SECONDS))
    ids = list(stale.values_list("pk", flat=True))
    for pk in ids:
        enqueue_advance(pk)
    if ids:
        log.info("sweep: re-enqueued %d stale auto-edit(s)", len(ids))
    return len(ids)
