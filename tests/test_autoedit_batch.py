"""A batch of 50 auto-edits at scale: real db_worker processes, the sandbox, moto and the site over HTTP.

Descript's jobs are made short through the sandbox's job knobs and the poll cadence through
settings (the worker processes get them as EID_TEST_SETTINGS: tests/support.py start_worker);
the 3 s minimum spacing between polls of one job is tested at its real value elsewhere. The
callbacks go to the live server. A few recordings fail on purpose, each in its own way: a file
missing from the bucket, a file Descript cannot import, and a 402 (no media minutes) on a
couple of import submits; and Descript answers some polls and submits with 429 and Retry-After.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.conf import settings

from demo.media import wav_bytes
from eid.jobs.machine import batch_counts, start_batch
from eid.jobs.models import AutoEdit, DescriptBudget, JobStep
from partner_site.library.models import RecordingVersion

from support import ARTIFACTS, start_worker, stop_process, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 50
IN_FLIGHT = 8
MISSING = (30, 37, 44)  # no object in the bucket: refused before anything is sent to Descript
UNIMPORTABLE = (33, 40, 47)  # Descript's import of their only file fails (the sandbox's fail_media)
PAYMENT_REQUIRED = 2  # the first import submits are answered 402
RETRY_AFTER = 2.0
# A call that had its slot in the budget before the 429 came may arrive this long after it.
IN_FLIGHT_MARGIN = 0.5
# Cadence, scaled down with the jobs (its shape kept: a first poll, then a spread, a floor).
CADENCE = {
    "EID_JOBS_POLL_FIRST_SECONDS": 0.3,
    "EID_JOBS_POLL_SECONDS": (0.3, 0.5),
    "EID_JOBS_POLL_MIN_SECONDS": 0.25,
    "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 2.0,
    "EID_JOBS_MAX_IN_FLIGHT": 20,
}


@pytest.fixture
def workers(live_server, settings):
    """Two db_worker processes whose jobs settings are the test's (callbacks to the live server)."""
    values = {**CADENCE, "EID_JOBS_CALLBACK_BASE": live_server.url}
    for name, value in values.items():
        setattr(settings, name, value)
    ARTIFACTS.mkdir(exist_ok=True)
    procs = [start_worker(ARTIFACTS / "worker-autoedit-batch.log", overrides=values) for _ in range(2)]
    yield procs
    for proc in procs:
        stop_process(proc)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end at the same moment as a start comes first)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def test_a_batch_of_50_where_a_few_fail_and_descript_throttles(live_server, sandbox, make_recording, alice, s3,
                                                                workers):
    sandbox.configure_jobs(import_seconds=0.4, agent_seconds=0.4, publish_seconds=0.4, queued_seconds=0.1,
                           jitter_seconds=0.4, callbacks=True,
                           fail_media=[f"broken-{i}.wav" for i in UNIMPORTABLE])
    media = wav_bytes(0.2, 330)
    recordings = []
    for i in range(SIZE):
        name = f"broken-{i}.wav" if i in UNIMPORTABLE else f"take-{i}.wav"
        recordings.append(make_recording(alice, f"Episode {i}",
                                         mix=(f"alice/{name}", None if i in MISSING else media, "audio/wav")))
    sandbox.add_fault(path="/v1/jobs/import/project_media", method="POST", status=402, times=PAYMENT_REQUIRED)
    sandbox.add_fault(path="/v1/jobs/", path_regex="/v1/jobs/[^/]+", method="GET", status=429, times=3,
                      headers={"Retry-After": str(RETRY_AFTER)})
    sandbox.add_fault(path="/v1/jobs/agent", method="POST", status=429, times=2,
                      headers={"Retry-After": str(RETRY_AFTER)})

    batch, outcomes = start_batch(items=[(alice, str(r.pk)) for r in recordings], prompt="Remove filler words",
                                  via="api", requested_by="pipeline", name="Overnight", max_in_flight=IN_FLIGHT)
    assert all(isinstance(o, AutoEdit) for _, o in outcomes) and batch.max_in_flight == IN_FLIGHT

    def finished():
        for proc in workers:
            assert proc.poll() is None, "a worker died (see test-artifacts/worker-autoedit-batch.log)"
        return not AutoEdit.objects.filter(batch=batch).active().exists()

    wait_until(finished, timeout=150, interval=0.5, message="every auto-edit of the batch to end")

    # The counts by state, and which ones failed, each for its own reason.
    counts = batch_counts(batch)
    failures = PAYMENT_REQUIRED + len(MISSING) + len(UNIMPORTABLE)
    assert counts["total"] == SIZE and counts["done"] == SIZE - failures and counts["failed"] == failures
    assert sum(counts[s] for s in AutoEdit.State.values) == SIZE
    rows = {ae.item_ref: ae for ae in AutoEdit.objects.filter(batch=batch)}
    kinds = Counter(ae.failure_kind for ae in rows.values() if ae.state == "failed")
    assert kinds == {"storage_missing": len(MISSING), "import": len(UNIMPORTABLE),
                     "payment_required": PAYMENT_REQUIRED}, kinds
    for i in MISSING:
        assert rows[str(recordings[i].pk)].failure_kind == "storage_missing"
    for i in UNIMPORTABLE:
        ae = rows[str(recordings[i].pk)]
        assert ae.failure_kind == "import" and f"broken-{i}.wav" in ae.reason
    assert all(ae.reason for ae in rows.values() if ae.state == "failed")

    # Each done one has a new version of its own recording; the failed ones have none.
    for recording in recordings:
        ae = rows[str(recording.pk)]
        versions = RecordingVersion.objects.filter(recording=recording)
        if ae.state == "done":
            assert ae.version_number == 1 and ae.result_ref == str(recording.pk)
            assert versions.count() == 1 and versions.get().assets.filter(kind="audio").exists()
        else:
            assert not versions.exists()
    done = next(ae for ae in rows.values() if ae.state == "done")
    asset = RecordingVersion.objects.get(recording_id=int(done.result_ref)).assets.get(kind="audio")
    assert s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=asset.key)["Body"].read() == media

    # Nothing was paid for twice: one import, agent and publish job per done auto-edit, and one
    # import per file Descript could not import, in spite of the 429s on agent submits.
    jobs = sandbox.jobs()
    by_type = Counter(job["job_type"] for job in jobs)
    assert by_type == {"import/project_media": SIZE - failures + len(UNIMPORTABLE),
                       "agent": SIZE - failures, "publish": SIZE - failures}, by_type
    assert not any(job["job_state"] == "cancelled" for job in jobs)

    # Bounded concurrency: never more than the batch's max_in_flight at Descript. From the
    # sandbox: a project is busy from its import's creation until its last job stopped.
    spans: dict[str, list[float]] = {}
    for job in jobs:
        stop = job["cancelled_at"] or max(job["planned_stop"], job["work_done_at"] or job["planned_stop"])
        span = spans.setdefault(job["project_id"], [job["created_at"], stop])
        span[0], span[1] = min(span[0], job["created_at"]), max(span[1], stop)
    at_descript = peak_overlap([(a, b) for a, b in spans.values()])
    # From our rows: from leaving the queue until the last step was seen stopped (less 50 ms at
    # the start: `started_at` is read just before the admission's count, a hair early).
    ours = []
    for ae in rows.values():
        ends = [s.finished_at.timestamp() for s in ae.steps.all() if s.finished_at]
        if ae.started_at and ends and ae.started_at.timestamp() + 0.05 < max(ends):
            ours.append((ae.started_at.timestamp() + 0.05, max(ends)))
    assert 1 < at_descript <= IN_FLIGHT, at_descript
    assert peak_overlap(ours) == IN_FLIGHT  # the bound was reached, and held

    # Descript's 429s: every one was waited out by every process (the shared budget), and none
    # failed an auto-edit. A call already on its way when the 429 came may still arrive.
    calls = sandbox.requests("/v1/jobs")
    throttled = [c for c in calls if c["status"] == 429]
    assert Counter((c["method"], c["path"].startswith("/v1/jobs/agent")) for c in throttled) == {
        ("GET", False): 3, ("POST", True): 2}
    for c in throttled:
        too_soon = [o for o in calls if c["wall"] + IN_FLIGHT_MARGIN < o["wall"] < c["wall"] + RETRY_AFTER - 0.05]
        assert not too_soon, f"{len(too_soon)} call(s) within Retry-After of a 429"
    assert DescriptBudget.objects.get().throttled_total == 5
    assert not JobStep.objects.filter(auto_edit__batch=batch, error_kind="rate_limited").exists()
    assert not any(ae.failure_kind == "rate_limited" for ae in rows.values())

    # The callbacks came (a rare one finds its step already seen stopped by a fallback poll).
    steps = JobStep.objects.filter(auto_edit__batch=batch, job_id__isnull=False)
    assert steps.count() == len(jobs)
    assert sum(s.callbacks for s in steps) >= 0.9 * len(jobs)
    batch.refresh_from_db()
    assert batch.finished_at is not None
