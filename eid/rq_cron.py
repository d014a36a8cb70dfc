"""The stale-import sweep as RQ's own cron job, for sites on django-tasks-rq.

Run one scheduler beside the workers::

    python manage.py rqcron eid.rq_cron

It puts eid.tasks.sweep_stale_imports on the task's queue every EID_SWEEP_SECONDS (default 60);
a worker runs it like any other task, and the sweep puts every import no worker is moving back
on the queue. A second scheduler only sweeps twice as often: a sweep is idempotent (each import's
lease decides who copies it). On the database queue, which has no scheduler, run
`python manage.py eid_sweep --every 60` instead.

Only `rqcron` imports this module, so eid itself does not depend on RQ.
"""

from __future__ import annotations

from django.conf import settings
from rq import cron

from .tasks import sweep_stale_imports

SWEEP_JOB_NAME = "eid-sweep"

cron.register(
    # The function's import path names the Task itself (the decorator replaced the function
    # with it), which is how django-tasks-rq's own jobs name their task: its Job class runs it.
    sweep_stale_imports.func,
    queue_name=sweep_stale_imports.queue_name,
    interval=max(1, int(getattr(settings, "EID_SWEEP_SECONDS", 60))),
    meta={"backend_name": sweep_stale_imports.backend},
    name=SWEEP_JOB_NAME,
)
