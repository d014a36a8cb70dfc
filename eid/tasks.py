"""Background work on the Django Tasks API. A task is only a nudge: eid.ingest does the work."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.apps import apps as django_apps
from django_tasks import task

if TYPE_CHECKING:
    from .models import ReturnedExport

log = logging.getLogger(__name__)


@task()
def advance_export(export_id: str) -> None:
    from .copyslots import process_slots
    from .ingest import advance

    # A copy goes to one of this process's copy slots (eid.copyslots) and the task returns.
    step = advance(export_id, slots=process_slots(follow_up=_enqueue_later, on_free=_nudge_waiting))
    if step.run_again_at is not None:
        enqueue_advance(export_id, run_after=step.run_again_at)


def _enqueue_later(export_id: Any, run_after: datetime) -> None:
    enqueue_advance(export_id, run_after=run_after)


def _nudge_waiting(free: int) -> None:
    """A copy slot came free: the imports waiting longest for one go now, not at their next retry."""
    from .ingest import waiting_for_a_slot

    for export_id in waiting_for_a_slot(free):
        enqueue_advance(export_id)


def enqueue_advance(export_id: Any, *, run_after: datetime | None = None) -> None:
    task_ = advance_export.using(run_after=run_after) if run_after is not None else advance_export
    task_.enqueue(str(export_id))


def retry_import(export: ReturnedExport, *, operator: bool = False) -> bool:
    """Retry a failed import and nudge a worker; False when there was nothing to retry."""
    from .ingest import retry

    if not retry(export, operator=operator):
        return False
    enqueue_advance(export.pk)
    return True


def sweep_stale() -> int:
    """Nudge every import no worker is moving (a dead worker's, or one whose nudge was lost)."""
    from .models import ReturnedExport

    ids = list(ReturnedExport.objects.stale().values_list("pk", flat=True))
    for export_id in ids:
        enqueue_advance(export_id)
    if ids:
        log.info("sweep: re-enqueued %d stale import(s)", len(ids))
    from .webhooks.tasks import requeue_lost

    requeue_lost()  # and webhook deliveries whose nudge was lost (logs its own count)
    if django_apps.is_installed("eid.jobs"):
        from .jobs.tasks import sweep_stale as sweep_auto_edits

        sweep_auto_edits()  # and auto-edits no worker is moving (logs its own count)
    return len(ids)


@task()
def sweep_stale_imports() -> int:
    """The sweep as a task, for queues with a scheduler of their own (RQ's cron: eid.rq_cron)."""
    return sweep_stale()
