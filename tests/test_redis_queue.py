"""The task queue on Redis (django-tasks-rq, RQ): the sweep as RQ's cron job, delayed re-checks
through RQ's scheduler. The worker tests (test_worker.py) run on both queues as well.

The processes are real: `manage.py rqcron eid.rq_cron` and `manage.py rqworker --with-scheduler`,
on a Redis database of the test's own. Without Redis the Redis cases are skipped, with the reason.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rq.utils import import_attribute

from eid.models import ReturnedExport
from eid.tasks import sweep_stale_imports
from partner_site.library.models import RecordingVersion

from support import ARTIFACTS, ROOT, start_worker, stop_process, subprocess_env, use_redis_queue, wait_until
from support import redis_url  # noqa: F401  (fixture)


def test_the_cron_config_schedules_the_sweep_task_every_eid_sweep_seconds(settings):
    """What `rqcron eid.rq_cron` loads: one job, naming the sweep's Task, on its queue and backend."""
    from django_rq.cron import DjangoCronScheduler

    settings.EID_SWEEP_SECONDS = 7
    scheduler = DjangoCronScheduler()  # connects to nothing until a job is enqueued
    scheduler.load_config_from_file("eid.rq_cron")
    (job,) = scheduler.get_jobs()
    assert job.interval == 7 and job.name == "eid-sweep"
    assert job.queue_name == sweep_stale_imports.queue_name
    assert job.job_options["meta"] == {"backend_name": sweep_stale_imports.backend}
    # django-tasks-rq's Job class runs only jobs whose function path resolves to a Task.
    assert import_attribute(job.func_name) is sweep_stale_imports


@pytest.mark.django_db(transaction=True)
def test_the_sweep_as_rq_cron_job_requeues_a_stale_import_on_redis(
    redis_url, settings, monkeypatch, sandbox, make_recording, alice, client, s3  # noqa: F811
):
    from django_tasks_db.models import DBTaskResult
    from rq.cron import get_cron_job_ids

    recording = make_recording(alice, "Cron show", mix=("alice/cron.wav", b"RIFF....WAVE", "audio/wav"))
    share = sandbox.create_share(partner=settings.DESCRIPT_PARTNER_DRIVE_ID, source=str(recording.source_id),
                                 media_bytes=256 * 1024, seed="cron")
    client.force_login(alice)
    # Confirmed while the site still enqueues on the database queue, which no worker serves here:
    # the nudge is lost as far as Redis is concerned. Then it is old enough to be stale.
    client.post("/descript/import/new", {"url": share["share_url"], "title": "Cron cut"})
    export = ReturnedExport.objects.get()
    assert DBTaskResult.objects.count() == 1
    old = timezone.now() - timedelta(seconds=settings.EID_EXPORT_STALE_SECONDS + 60)
    ReturnedExport.objects.filter(pk=export.pk).update(next_check_at=old, updated_at=old)
    assert ReturnedExport.objects.stale().filter(pk=export.pk).exists()

    use_redis_queue(settings, monkeypatch, redis_url)
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "rqcron.log", "ab")
    cron = subprocess.Popen([sys.executable, "manage.py", "rqcron", "eid.rq_cron"], cwd=ROOT,
                            env=subprocess_env(EID_SWEEP_SECONDS="1"), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    worker = start_worker(ARTIFACTS / "worker-redis.log", queue="redis")
    try:
        done = wait_until(lambda: ReturnedExport.objects.filter(pk=export.pk, state__in=["done", "failed"]).first(),
                          timeout=60, message="the swept import to finish")
        assert done.state == "done", done.reason
        assert RecordingVersion.objects.filter(recording=recording).count() == 1
        # RQ's cron enqueued the sweep; the database queue's nudge was never worked.
        import redis

        connection = redis.Redis.from_url(redis_url)
        assert get_cron_job_ids("eid-sweep", connection)
        assert DBTaskResult.objects.get().status == "READY"
    finally:
        stop_process(worker)
        stop_process(cron)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_a_recheck_while_descript_renders_comes_back_through_rqs_scheduler(
    redis_url, settings, monkeypatch, sandbox, make_recording, alice, client, s3  # noqa: F811
):
    """run_after on Redis: the job waits in RQ's scheduled registry until the worker's scheduler
    moves it onto the queue. No sweep runs here, so only those delayed jobs can finish the import."""
    import redis
    from rq import Queue, Worker
    from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

    recording = make_recording(alice, "Slow render", mix=("alice/slow.wav", b"RIFF....WAVE", "audio/wav"))
    use_redis_queue(settings, monkeypatch, redis_url)
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    worker = start_worker(ARTIFACTS / "worker-redis.log", queue="redis")
    try:
        # Published once the worker listens (it starts slowly on a busy machine), so that its first
        # check surely finds Descript still rendering.
        wait_until(lambda: Worker.all(connection=connection), timeout=30, message="the worker to start")
        share = sandbox.create_share(partner=settings.DESCRIPT_PARTNER_DRIVE_ID, source=str(recording.source_id),
                                     media_bytes=256 * 1024, seed="render", render_seconds=3.0)
        client.force_login(alice)
        client.post("/descript/import/new", {"url": share["share_url"], "title": "Slow cut"})
        export = ReturnedExport.objects.get()
        wait_until(lambda: ScheduledJobRegistry(queue=queue).count, timeout=30,
                   message="a re-check scheduled for later while Descript renders")
        done = wait_until(lambda: ReturnedExport.objects.filter(pk=export.pk, state__in=["done", "failed"]).first(),
                          timeout=60, message="the import to finish")
        assert done.state == "done", done.reason
        assert RecordingVersion.objects.filter(recording=recording).count() == 1
        assert FinishedJobRegistry(queue=queue).count >= 2  # the first check, and the delayed ones
    finally:
        stop_process(worker)
