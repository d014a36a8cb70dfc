"""What the auto-edit tests share: fast settings, a recording to edit, and a driver for the machine.

`drive` does what a worker does, in the test's own process: it runs `advance` when the row is
due, and the way back's `eid.ingest.advance` for the import that brings the edit home.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from demo.media import wav_bytes

SANDBOX_API = settings.DESCRIPT_API_BASE
AUTH = {"Authorization": f"Bearer {settings.DESCRIPT_API_TOKEN}"}
FAST_JOBS = {"queued_seconds": 0.0, "import_seconds": 0.2, "agent_seconds": 0.2, "publish_seconds": 0.2,
             "callbacks": False}
# In-process tests poll fast; the worker tests keep Descript's 3-second floor and check it.
FAST_SETTINGS: dict[str, Any] = {
    "EID_JOBS_POLL_FIRST_SECONDS": 0.25,
    "EID_JOBS_POLL_SECONDS": (0.25, 0.35),
    "EID_JOBS_POLL_MIN_SECONDS": 0.2,
    "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 0.5,
    "EID_JOBS_CALLBACK_BASE": "",
    "EID_EXPORT_POLL_SECONDS": 0.1,
}
TRACKS = (("host", 0.0, 330), ("guest", 1.5, 440), ("music", 0.25, 550))


def apply(settings_fixture: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(settings_fixture, name, value)


@pytest.fixture
def fast(settings, sandbox):
    apply(settings, FAST_SETTINGS)
    sandbox.configure_jobs(**FAST_JOBS)
    return sandbox


@pytest.fixture
def interview(make_recording, alice):
    """alice's one-file recording."""
    return make_recording(alice, "Interview", mix=("alice/interview.wav", wav_bytes(0.4, 330), "audio/wav"))


@pytest.fixture
def roundtable(make_recording, alice):
    """alice's three tracks with start offsets (and no mix)."""
    return make_recording(alice, "Roundtable", tracks=[
        (f"alice/rt/{name}.wav", wav_bytes(0.3, freq), "audio/wav", f"{name}.wav", offset)
        for name, offset, freq in TRACKS
    ])


def drive(auto_edit: Any, until: tuple[str, ...] = ("done", "failed", "cancelled"), timeout: float = 20.0) -> Any:
    """Run the machine (and the way back's import) in this process until the auto-edit reaches `until`."""
    from eid import ingest
    from eid.jobs.machine import advance
    from eid.jobs.models import AutoEdit

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ae = AutoEdit.objects.get(pk=auto_edit.pk)
        if ae.state in until:
            return ae
        if ae.state == "copying" and ae.export_id:
            ingest.advance(ae.export_id)
        due = ae.next_action_at
        if due is not None and due > timezone.now() + timedelta(milliseconds=50):
            time.sleep(min(0.05, (due - timezone.now()).total_seconds()))
            continue
        advance(ae.pk)
    ae = AutoEdit.objects.get(pk=auto_edit.pk)
    raise AssertionError(f"auto-edit still {ae.state} after {timeout}s ({ae.reason})")


def sandbox_job(job_id: str) -> dict[str, Any]:
    """The job as Descript answers it, signed download link included (the test may read it)."""
    answer = requests.get(f"{SANDBOX_API}/jobs/{job_id}", headers=AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def calls(sandbox: Any, method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests(path) if r["method"] == method]


def gets_too_close(sandbox: Any, floor: float = 3.0) -> list[tuple[str, float]]:
    """(job id, gap) for every two GET /jobs/{id} of one job less than `floor` seconds apart."""
    by_job: dict[str, list[float]] = {}
    for r in sandbox.requests("/v1/jobs/"):
        if r["method"] == "GET" and r["job_id"]:
            by_job.setdefault(r["job_id"], []).append(r["wall"])
    close = []
    for job_id, times in by_job.items():
        times.sort()
        close += [(job_id, b - a) for a, b in zip(times, times[1:]) if b - a < floor]
    return close
