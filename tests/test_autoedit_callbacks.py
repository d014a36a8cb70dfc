"""Descript's job callbacks, over real HTTP: the sandbox POSTs to the live server; the machine runs here.

A callback is only a hint: it makes the machine GET the job sooner (never within the poll spacing),
and the machine acts on that answer, once. Unknown, forged and replayed calls are 404s that
change nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pytest
import requests

from autoedit_support import calls, drive, fast, interview, roundtable  # noqa: F401
from eid.jobs import machine
from eid.jobs.models import AutoEdit, JobStep

pytestmark = pytest.mark.django_db(transaction=True)

CALLBACK_PATH = "/descript/jobs/callback/"


@pytest.fixture
def callbacks(fast, settings, live_server):
    """Callbacks to the live server; the fallback poll slow enough that only a callback is quick."""
    settings.EID_JOBS_CALLBACK_BASE = live_server.url
    settings.EID_JOBS_POLL_WITH_CALLBACKS_SECONDS = 30.0
    fast.configure_jobs(callbacks=True)
    return live_server


def start(user, recording):
    return machine.start_auto_edit(user=user, item_ref=str(recording.pk), prompt="Tighten it", via="page")


def snapshot(ae):
    ae.refresh_from_db()
    steps = [(s.pk, s.state, s.polls, s.callbacks, s.calls, s.last_polled_at) for s in ae.steps.order_by("pk")]
    return ae.state, ae.next_action_at, ae.updated_at, steps


def test_callbacks_make_each_step_quick_and_each_is_confirmed_with_a_get(callbacks, fast, alice, interview):
    ae = start(alice, interview)
    done = drive(ae, timeout=20)  # each step would wait 30 s for its fallback poll without its callback
    assert done.state == "done", done.reason
    for step in done.steps.all():
        assert step.callbacks >= 1 and step.polls >= 1, (step.kind, step.callbacks, step.polls)
        # What moved the auto-edit on was our own GET of the job, after its callback.
        [callback] = next(j for j in fast.jobs() if j["job_id"] == step.job_id)["callback_attempts"]
        assert callback["status"] == 202
        last_get = calls(fast, "GET", f"/v1/jobs/{step.job_id}")[-1]
        assert last_get["status"] == 200 and last_get["wall"] >= callback["at"]
    # Each submit carried its own callback address; only the token's digest is kept.
    posts = [r for r in fast.requests("/v1/jobs/") if r["method"] == "POST"]
    urls = [p["json"]["callback_url"] for p in posts]
    assert len(set(urls)) == 3 and all(u.startswith(f"{callbacks.url}{CALLBACK_PATH}") for u in urls)
    tokens = [u.rsplit("/", 1)[1] for u in urls]
    digests = set(done.steps.values_list("callback_digest", flat=True))
    assert digests == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}


def test_callbacks_that_never_come_leave_polling_to_finish(callbacks, settings, fast, alice, interview):
    fast.configure_jobs(callbacks=False)
    settings.EID_JOBS_POLL_WITH_CALLBACKS_SECONDS = 0.5  # the fallback, sped up
    done = drive(start(alice, interview), timeout=20)
    assert done.state == "done", done.reason
    assert all(s.callbacks == 0 and s.polls >= 1 for s in done.steps.all())
    assert all(not j["callback_attempts"] for j in fast.jobs())


def test_unknown_and_forged_callbacks_are_404_and_change_nothing(callbacks, fast, alice, interview):
    fast.configure_jobs(import_seconds=60)
    ae = start(alice, interview)
    drive(ae, until=("importing",))
    machine.advance(ae.pk)
    before = snapshot(ae)
    for token in (secrets.token_urlsafe(32), "x", "a" * 200):
        answer = requests.post(f"{callbacks.url}{CALLBACK_PATH}{token}", json={"job_state": "stopped"}, timeout=5)
        assert answer.status_code == 404
    assert requests.get(f"{callbacks.url}{CALLBACK_PATH}{secrets.token_urlsafe(32)}", timeout=5).status_code == 405
    assert snapshot(ae) == before


def test_a_callback_is_a_hint_the_body_is_not_believed(callbacks, settings, fast, alice, interview):
    settings.EID_JOBS_POLL_MIN_SECONDS = 1.0
    fast.configure_jobs(import_seconds=60, callbacks=False)
    settings.EID_JOBS_CALLBACK_BASE = callbacks.url
    ae = start(alice, interview)
    machine.advance(ae.pk)  # admitted and the import submitted
    [job] = fast.jobs()
    url = job["callback_url"]
    # The first poll, then a "stopped, success" callback at once: a forged body on a known address.
    step = JobStep.objects.get(auto_edit=ae)
    AutoEdit.objects.filter(pk=ae.pk).update(next_action_at=None)
    machine.advance(ae.pk)
    step.refresh_from_db()
    assert step.polls == 1 and step.state in ("queued", "running")
    fake = {"job_id": job["job_id"], "job_type": "import/project_media", "job_state": "stopped",
            "result": {"status": "success", "media_status": {}, "created_compositions": [{"id": "fake"}]}}
    answer = requests.post(url, json=fake, timeout=5)
    assert answer.status_code == 202
    ae.refresh_from_db()
    step.refresh_from_db()
    assert step.callbacks == 1
    # The confirming GET is due no sooner than the spacing allows after the last poll.
    assert ae.next_action_at >= step.last_polled_at + timedelta(seconds=1.0)
    ae = _run_until_polled(ae, polls=2)
    step.refresh_from_db()
    assert ae.state == "importing" and step.state == "running" and ae.composition_id == ""
    gets = [r["wall"] for r in calls(fast, "GET", f"/v1/jobs/{job['job_id']}")]
    assert len(gets) == 2 and gets[1] - gets[0] >= 1.0


def _run_until_polled(ae, polls, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        machine.advance(ae.pk)
        if JobStep.objects.get(auto_edit=ae).polls >= polls:
            ae.refresh_from_db()
            return ae
        time.sleep(0.05)
    raise AssertionError("no confirming poll")


def test_a_replayed_callback_after_the_step_is_over_is_404(callbacks, fast, alice, interview):
    done = drive(start(alice, interview), timeout=20)
    assert done.state == "done"
    before = snapshot(done)
    gets_before = len(calls(fast, "GET", "/v1/jobs/"))
    for job in fast.jobs():
        answer = requests.post(job["callback_url"], json={"job_id": job["job_id"], "job_state": "stopped"}, timeout=5)
        assert answer.status_code == 404
    assert snapshot(done) == before and len(calls(fast, "GET", "/v1/jobs/")) == gets_before


def test_a_watched_auto_edit_is_polled_at_the_active_cadence_though_callbacks_are_expected(
        callbacks, fast, client, alice, interview):
    # Callbacks are expected (a base is set) but never come, and the fallback poll is 30 s away:
    # only someone watching the page makes the machine look at Descript's progress sooner.
    fast.configure_jobs(callbacks=False, import_seconds=2.0)
    client.force_login(alice)
    ae = start(alice, interview)
    drive(ae, until=("importing",))
    machine.advance(ae.pk)  # the import is submitted
    step = JobStep.objects.get(auto_edit=ae, kind="import")
    assert step.job_id and step.next_poll_at - step.submitted_at >= timedelta(seconds=29)

    answer = client.get(f"/auto-edits/{ae.pk}/status")

    assert answer.status_code == 200 and answer.json()["state"] == "importing"
    ae.refresh_from_db()
    assert ae.watched_until is not None and ae.next_action_at is not None
    assert (ae.next_action_at - step.submitted_at).total_seconds() < 1  # brought forward from 30 s
    looked = drive(ae, until=("editing", "failed"), timeout=15)
    assert looked.state == "editing", looked.reason
    step.refresh_from_db()
    assert step.polls >= 2 and step.callbacks == 0  # progress seen while running, not only the end


def test_an_unwatched_auto_edit_leaves_its_polls_to_the_slow_fallback(callbacks, fast, alice, interview):
    fast.configure_jobs(callbacks=False, import_seconds=2.0)
    ae = start(alice, interview)
    drive(ae, until=("importing",))
    machine.advance(ae.pk)
    ae.refresh_from_db()
    step = JobStep.objects.get(auto_edit=ae, kind="import")
    assert ae.watched_until is None
    assert (ae.next_action_at - step.submitted_at).total_seconds() >= 29
