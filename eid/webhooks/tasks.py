"""The worker's side: a task per delivery attempt (a nudge; the row is the truth), and the sweep.

`deliver_webhook` makes one attempt when the row is due and enqueues itself again for the
retry the row now names. A nudge that is lost (a queue outage, a worker killed mid-attempt)
leaves a pending row whose next_attempt_at has long passed: `requeue_lost` (run by
`manage.py eid_sweep` and eid.tasks.sweep_stale) nudges those again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone
from django_tasks import task

log = logging.getLogger(__name__)


@task()
def deliver_webhook(delivery_id: int) -> None:
    from .delivery import deliver

    again = deliver(delivery_id)
    if again is not None:
        enqueue_delivery(delivery_id, run_after=again)


def enqueue_delivery(delivery_id: int, *, run_after: datetime | None = None) -> None:
    task_ = deliver_webhook.using(run_after=run_after) if run_after is not None else deliver_webhook
    task_.enqueue(int(delivery_id))


def requeue_lost() -> int:
    """Nudge pending deliveries that were due long ago and that nobody is sending.

    Their next_attempt_at moves to now, so one sweep after another does not pile up nudges
    for a row the worker has not reached yet.
    """
    from django.apps import apps

    if not apps.is_installed("eid.webhooks"):
        return 0
    from .models import WebhookDelivery

    now = timezone.now()
    ids = list(WebhookDelivery.objects.lost(now).values_list("pk", flat=True)[:10_000])
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
    for delivery_id in ids:
        enqueue_delivery(delivery_id)
    log.info("sweep: re-enqueued %d webhook delivery(ies) whose nudge was lost", len(ids))
    return len(ids)
