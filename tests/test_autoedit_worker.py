"""Auto-edits run by real worker processes (db_worker) against the sandbox, moto and the live server.

Descript's poll floor stays at 3 seconds here, and the sandbox's record of every call shows it
held for every job. One worker is killed (SIGKILL) while Descript holds the answer of a job it
has already created: the next worker finds that job instead of creating another.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests
from django.conf import settings

from autoedit_support import apply, calls, gets_too_close, interview, roundtable, sandbox_job  # noqa: F401
from eid.jobs import machine
from eid.jobs.models import AutoEdit, JobStep
from eid.models import ReturnedExport
from partner_site.library.models import RecordingVersion
from support import ARTIFACTS, start_worker, stop_process, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Descript's cadence as documented (3-second floor), sped up only where it is not the point.
WORKER_SETTINGS = {
    "EID_JOBS_POLL_FIRST_SECONDS": 1.0,
    "EID_JOBS_POLL_SECONDS": (3.0, 3.5),
    "EID_JOBS_POLL_MIN_SECONDS": 3.0,
    "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 20.0,
    "EID_JOBS_STALE_SECONDS": 2.0,
    "EID_JOBS_CALLBACK_BASE": "",
    "EID_EXPORT_POLL_SECONDS": 0.3,
    # Longer than the held answer below lasts until the kill: the worker must be killed mid-POST.
    "DESCRIPT_READ_TIMEOUT": 20.0,
}
JOBS = {"queued_seconds": 0.0, "import_seconds": 0.8, "agent_seconds": 0.8, "publish_seconds": 0.8}


@pytest.fixture
def jobs_worker(settings, sandbox):
    """Start db_worker processes that run with this test's settings (and the test's own process too)."""
    ARTIFACTS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []
    sandbox.configure_jobs(**JOBS)

    def start(**overrides):
        values = {**WORKER_SETTINGS, **overrides}
        apply(settings, values)
        proc = start_worker(ARTIFACTS / "worker-autoedit.log", overrides=values)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


def finished(ae, timeout=40.0):
    return wait_until(lambda: AutoEdit.objects.filter(pk=ae.pk, state__in=AutoEdit.FINAL_STATES).first(),
                      timeout=timeout, interval=0.2, message="the auto-edit to end")


def test_round_trip_in_a_worker_with_callbacks_and_429s_lands_the_published_bytes(
        jobs_worker, sandbox, live_server, alice, roundtable, s3):
    jobs_worker(EID_JOBS_CALLBACK_BASE=live_server.url)
    # Two of the confirming GETs are refused with 429: the auto-edit waits and carries on.
    sandbox.add_fault(path="/v1/jobs/", path_regex=r"/v1/jobs/[^/]+", method="GET", status=429, times=2,
                      headers={"Retry-After": "1"})
    ae = machine.start_auto_edit(user=alice, item_ref=str(roundtable.pk), prompt="Remove the ums", via="page")
    done = finished(ae)
    assert done.state == "done", done.reason

    assert gets_too_close(sandbox, 3.0) == []  # for every job, no two GETs under 3 s apart (before ours below)
    statuses = [r["status"] for r in calls(sandbox, "GET", "/v1/jobs/")]
    assert statuses.count(429) == 2 and statuses[-1] == 200
    assert sum(s.callbacks for s in done.steps.all()) >= 3

    version = RecordingVersion.objects.get(recording=roundtable)
    assert (done.result_ref, done.version_number) == (str(roundtable.pk), version.number)
    publish = done.steps.get(kind="publish")
    published = requests.get(sandbox_job(publish.job_id)["result"]["download_url"], timeout=10).content
    stored = s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=version.assets.get(kind="audio").key)
    assert stored["Body"].read() == published and len(published) > 1000
    assert ReturnedExport.objects.get(pk=done.export_id).state == "done"


def test_a_worker_killed_while_descript_holds_the_answer_never_creates_a_second_job(
        jobs_worker, sandbox, settings, alice, interview):
    sandbox.add_fault(path="/v1/jobs/import/project_media", method="POST", hold_after_seconds=15.0, times=1)
    ae = machine.start_auto_edit(user=alice, item_ref=str(interview.pk), prompt="Remove the ums", via="page")
    first = jobs_worker()
    # The import exists at Descript, its answer is held, and the step says it may exist.
    wait_until(lambda: calls(sandbox, "POST", "/v1/jobs/import/project_media"), timeout=30, interval=0.02,
               message="the import POST")
    os.killpg(first.pid, signal.SIGKILL)  # as a crash would, mid-POST
    first.wait(timeout=10)
    [created] = sandbox.jobs()
    step = JobStep.objects.get(auto_edit=ae)
    assert step.state == "submitting" and step.job_id is None and step.submit_started_at is not None
    killed = AutoEdit.objects.get(pk=ae.pk)
    assert killed.lease_token is not None  # the dead worker's

    sandbox.clear_faults()
    jobs_worker()
    from eid.tasks import sweep_stale

    def handed_over() -> bool:
        sweep_stale()  # what manage.py eid_sweep runs: it nudges the row once its heartbeat is stale
        return AutoEdit.objects.get(pk=ae.pk).attempts > killed.attempts

    wait_until(handed_over, timeout=20, interval=0.5, message="the sweep to hand the auto-edit to a new worker")
    done = finished(ae)
    assert done.state == "done", done.reason
    imports = [j for j in sandbox.jobs() if j["job_type"] == "import/project_media"]
    assert [j["job_id"] for j in imports] == [created["job_id"]]
    assert len(calls(sandbox, "POST", "/v1/jobs/import/project_media")) == 1
    assert done.steps.get(kind="import").job_id == created["job_id"]
    assert gets_too_close(sandbox, 3.0) == []
