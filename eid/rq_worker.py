"""RQ's worker for eid's tasks on Redis (django-tasks-rq), set as RQ["WORKER_CLASS"].

RQ's SimpleWorker runs each job in the worker's own process instead of forking a child per job:
a worker that is killed takes its job with it (the import's heartbeat goes stale and the sweep
hands it to another worker, as with the database queue's db_worker), and what a process keeps
(database connections or their pool) lasts across jobs. Like db_worker, it drops database
connections that are broken or past their age around every job, since no request cycle does it
in a worker.

Only RQ's worker imports this module, so eid itself does not depend on RQ.
"""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections
from rq.worker import SimpleWorker


class DjangoSimpleWorker(SimpleWorker):
    def execute_job(self, job: Any, queue: Any) -> None:
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()
