"""Imports share a worker fairly: copies run on bounded slots, and a slow link is stopped and retried.

Real `db_worker` processes copy from the sandbox into moto's S3. The sandbox's throttle fault
makes one media link drip; the worker's settings come from the environment (small windows and
waits, so the suite stays quick).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django_tasks_db.models import DBTaskResult

from eid.models import ReturnedExport
from eid.tasks import retry_import
from partner_site.library.models import RecordingVersion

from support import ARTIFACTS, ROOT, subprocess_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

KiB = 1024
MiB = 1024 * 1024
ACTIVE = ("waiting", "copying")


@pytest.fixture
def workers():
    """Start real db_worker processes with extra settings in their environment; all stopped after."""
    ARTIFACTS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        log = open(ARTIFACTS / "worker-fairness.log", "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"],
                cwd=ROOT, env=subprocess_env(**env), stdout=log, stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # each test stops its own workers as it means to; this is only cleanup
            proc.wait(timeout=10)


def worker_env(**overrides) -> dict[str, str]:
    env = {
        "EID_WORKER_COPY_SLOTS": "3",
        "EID_WORKER_BUSY_RETRY_SECONDS": "0.2",
        "EID_EXPORT_MIN_BYTES_PER_SECOND": str(64 * KiB),
        "EID_EXPORT_RATE_WINDOW_SECONDS": "60",
        "EID_EXPORT_SLOW_RETRY_SECONDS": "0.2",
        "EID_WORKER_STOP_GRACE_SECONDS": "5",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def bring_back(client, sandbox, title: str, size: int, drip_bps: int | None = None) -> tuple[str, dict]:
    """Publish a share on the sandbox (its media dripping at `drip_bps`) and confirm its import."""
    share = sandbox.create_share(title=title, media_bytes=size, seed=title)
    if drip_bps:
        sandbox.add_fault(path=f"/media/{share['share_id']}/audio.m4a", throttle_bps=drip_bps)
    answer = client.post("/descript/import/new", {"url": share["share_url"], "title": title})
    assert answer.status_code in (200, 302), answer.status_code
    return str(ReturnedExport.objects.get(share_id=share["share_id"]).pk), share


def row(export_id: str) -> ReturnedExport:
    return ReturnedExport.objects.get(pk=export_id)


def copying_now(export_id: str) -> bool:
    r = row(export_id)
    return r.state == "copying" and r.lease_token is not None and r.bytes_total is not None


def media_downloads(sandbox, share: dict) -> list[dict]:
    """The media GETs of a copy (the render check's probes ask for one byte with Range)."""
    return [r for r in sandbox.requests(f"/media/{share['share_id']}/audio.m4a") if not r["range"]]


def uploads_in_flight(s3) -> list:
    return s3.list_multipart_uploads(Bucket=settings.AWS_STORAGE_BUCKET_NAME).get("Uploads", [])


def test_normal_imports_finish_while_a_dripping_one_is_still_copying(sandbox, s3, alice, client, workers):
    client.force_login(alice)
    # The rate window is longer than the test: only the slots can keep the others moving.
    worker = workers(**worker_env(EID_WORKER_COPY_SLOTS=3, EID_EXPORT_RATE_WINDOW_SECONDS=120))
    drip_id, drip_share = bring_back(client, sandbox, "drip", 1 * MiB, drip_bps=2000)
    wait_until(lambda: copying_now(drip_id), timeout=30, message="the dripping copy to start")

    normal = [bring_back(client, sandbox, f"normal-{n}", 2 * MiB + n)[0] for n in range(5)]
    started = time.monotonic()
    wait_until(lambda: ReturnedExport.objects.filter(pk__in=normal, state="done").count() == len(normal),
               timeout=60, message="the normal imports")
    took = time.monotonic() - started

    drip = row(drip_id)
    assert (drip.state, drip.attempts) == ("copying", 1) and drip.lease_token is not None, drip.reason
    assert drip.bytes_copied < drip_share["media_bytes"]
    assert all(row(i).attempts == 1 for i in normal)  # waiting for a slot is not an attempt
    assert took < 30, f"the normal imports took {took:.1f} s"

    # A stopped worker lets go of the dripping import at once (no wait for the copy, nor for
    # the sweep): released, not counted as an attempt, queued again, nothing left in S3.
    stopping = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)
    assert time.monotonic() - stopping < 10
    drip = row(drip_id)
    assert (drip.state, drip.lease_token, drip.attempts) == ("copying", None, 0)
    assert any(t.args_kwargs["args"] == [drip_id] for t in DBTaskResult.objects.filter(status="READY"))
    assert uploads_in_flight(s3) == []

    # Another worker finishes it, once, when the link is fast again.
    sandbox.clear_faults()
    workers(**worker_env())
    done = wait_until(lambda: ReturnedExport.objects.filter(pk=drip_id, state__in=["done", "failed"]).first(),
                      timeout=60, message="the dripping import to finish")
    assert done.state == "done" and done.attempts == 1, done.reason
    assert RecordingVersion.objects.filter(recording_id=done.result_ref).count() == 1


def test_a_link_too_slow_is_stopped_retried_later_then_failed_with_a_reason(sandbox, s3, alice, client, workers):
    client.force_login(alice)
    workers(**worker_env(EID_EXPORT_RATE_WINDOW_SECONDS=1, EID_EXPORT_SLOW_RETRY_SECONDS=0.3))
    # 50 bytes a second, as measured on the landed code: the download's read of a piece waits
    # for the whole piece, so the stop has to cut the connection to end it.
    export_id, share = bring_back(client, sandbox, "drip", 1 * MiB, drip_bps=50)

    seen: dict[str, object] = {}

    def released_with_a_reason() -> bool:
        r = row(export_id)
        if r.state == "copying" and r.lease_token is None and "too slow" in r.reason:
            seen.update(reason=r.reason, attempts=r.attempts, next_check_at=r.next_check_at, at=r.updated_at)
            return True
        return False

    wait_until(lambda: copying_now(export_id), timeout=30, message="the copy to start")
    first_copy = time.monotonic()
    wait_until(released_with_a_reason, timeout=30, interval=0.02, message="the slow copy to be stopped")
    assert seen["attempts"] == 1 and seen["next_check_at"] > seen["at"]
    assert "Descript's link was too slow" in seen["reason"] and "trying again" in seen["reason"]
    wait_until(lambda: row(export_id).attempts >= 2 and copying_now(export_id), timeout=30,
               message="a second attempt")

    failed = wait_until(lambda: ReturnedExport.objects.filter(pk=export_id, state="failed").first(),
                        timeout=60, message="the import to fail after the last attempt")
    elapsed = time.monotonic() - first_copy
    assert failed.retryable and failed.attempts == 5
    assert "too slow" in failed.reason and "5 times" in failed.reason and "try again later" in failed.reason
    assert len(media_downloads(sandbox, share)) == 5  # one download per attempt
    # Each attempt ended about a window after it began: reads were cut, not left to time out (60 s).
    assert elapsed < 30, f"five stopped attempts took {elapsed:.1f} s"
    assert uploads_in_flight(s3) == []
    assert s3.list_objects_v2(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=f"returns/{export_id}/") \
        .get("KeyCount") == 0

    # Retryable means it: once the link is healthy the user's retry brings the edit in.
    sandbox.clear_faults()
    assert retry_import(failed)
    done = wait_until(lambda: ReturnedExport.objects.filter(pk=export_id, state__in=["done", "failed"]).first(),
                      timeout=60, message="the retried import")
    assert done.state == "done", done.reason


def test_never_more_copies_at_once_than_slots(sandbox, alice, client, workers):
    client.force_login(alice)
    slots = 2
    ids = []
    for n in range(6):  # each copy lasts about a second: long enough to overlap
        export_id, _share = bring_back(client, sandbox, f"slot-{n}", 200 * KiB, drip_bps=200 * KiB)
        ids.append(export_id)

    most = [0]
    stop = threading.Event()

    def watch() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                live = ReturnedExport.objects.filter(pk__in=ids, state="copying", lease_token__isnull=False).count()
                most[0] = max(most[0], live)
                stop.wait(0.01)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # Imports that find no free slot would try again only after 30 s: a slot that comes
        # free nudges the longest waiting at once instead.
        workers(**worker_env(EID_WORKER_COPY_SLOTS=slots, EID_WORKER_BUSY_RETRY_SECONDS=30))
        started = time.monotonic()
        wait_until(lambda: ReturnedExport.objects.filter(pk__in=ids, state="done").count() == len(ids),
                   timeout=90, message="every import")
        took = time.monotonic() - started
    finally:
        stop.set()
        watcher.join(5)
    assert most[0] == slots  # the bound was reached, and never passed
    assert [row(i).attempts for i in ids] == [1] * len(ids)  # waiting for a slot cost no attempt
    assert took < 25, f"six one-second copies on two slots took {took:.1f} s"


def test_a_process_that_ends_with_its_task_copies_in_the_task(monkeypatch, settings):
    """RQ's forking worker ends the process with the job: no copy may be left on a thread there."""
    from eid import copyslots

    settings.EID_WORKER_COPY_SLOTS = 2
    assert copyslots.process_slots(lambda *a: None) is not None
    monkeypatch.setenv("RQ_JOB_ID", "job-1")
    assert copyslots.process_slots(lambda *a: None) is None
    monkeypatch.delenv("RQ_JOB_ID")
    settings.EID_WORKER_COPY_SLOTS = 0
    assert copyslots.process_slots(lambda *a: None) is None

