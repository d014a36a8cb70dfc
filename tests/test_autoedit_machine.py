"""The auto-edit state machine against the sandbox and moto over real HTTP, run in the test's process.

`drive` plays the worker (tests/autoedit_support.py); polls are sped up here (the 3-second floor
is kept and checked in test_autoedit_worker.py, with a real worker process).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings

from autoedit_support import calls, drive, fast, interview, roundtable, sandbox_job  # noqa: F401
from eid.jobs import machine
from eid.jobs.models import AutoEdit, AutoEditBatch, DescriptBudget, JobStep, PromptPreset
from eid.models import ReturnedExport
from partner_site.library.models import RecordingVersion

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "Remove filler words and add Studio Sound"


def start(user, recording, **kwargs):
    return machine.start_auto_edit(user=user, item_ref=str(recording.pk), prompt=kwargs.pop("prompt", PROMPT),
                                   via="page", requested_by=user.username, **kwargs)


# --- starting ---------------------------------------------------------------------------------


def test_refusals_are_plain_words_with_their_status(settings, alice, bob, interview, make_recording):
    with pytest.raises(machine.AutoEditRefused) as gone:
        start(bob, interview)  # alice's recording looks like no recording at all to bob
    assert gone.value.kind == "not_found" and gone.value.http_status == 404
    with pytest.raises(machine.AutoEditRefused) as no_prompt:
        start(alice, interview, prompt="   ")
    assert no_prompt.value.kind == "no_prompt" and no_prompt.value.http_status == 400
    with pytest.raises(machine.AutoEditRefused) as too_long:
        start(alice, interview, prompt="x" * 4001)
    assert too_long.value.kind == "too_long" and "4001" in too_long.value.reason
    with pytest.raises(machine.AutoEditRefused) as invalid:
        start(alice, interview, media_type="gif")
    assert invalid.value.kind == "invalid"
    notes = make_recording(alice, "Notes", mix=("alice/notes.txt", b"text", "text/plain"))
    with pytest.raises(machine.AutoEditRefused) as not_importable:
        start(alice, notes)
    assert not_importable.value.kind == "not_importable" and not_importable.value.http_status == 422

    first = start(alice, interview)
    with pytest.raises(machine.AutoEditRefused) as running:
        start(alice, interview)
    assert running.value.kind == "already_running" and running.value.http_status == 409
    assert list(AutoEdit.objects.values_list("pk", flat=True)) == [first.pk]

    settings.DESCRIPT_API_TOKEN = ""
    with pytest.raises(machine.AutoEditRefused) as unset:
        start(alice, interview)
    assert unset.value.kind == "not_configured" and unset.value.http_status == 503


def test_a_preset_gives_the_prompt_and_what_to_publish(alice, interview, roundtable):
    preset = PromptPreset.objects.create(name="Video clean-up", prompt="Cut the pauses", media_type="Video",
                                         resolution="1080p")
    ae = machine.start_auto_edit(user=alice, item_ref=str(interview.pk), preset=preset, via="page")
    assert (ae.prompt, ae.media_type, ae.resolution, ae.option) == ("Cut the pauses", "Video", "1080p", "mix")
    assert ae.state == "queued" and ae.project_name.endswith(f"auto-edit {str(ae.pk)[:8]}")
    # No option named: the multitrack one when the recording has one.
    assert start(alice, roundtable).option == "tracks"


# --- the whole way -------------------------------------------------------------------------------


def test_multitrack_round_trip_imports_edits_publishes_and_lands_a_version(fast, alice, roundtable, s3):
    ae = start(alice, roundtable)
    done = drive(ae)
    assert done.state == "done", done.reason

    [post] = calls(fast, "POST", "/v1/jobs/import/project_media")
    body = post["json"]
    assert body["project_name"] == ae.project_name and body["folder_name"] == "Edit in Descript"
    media = body["add_media"]
    assert set(media) == {"host.wav", "guest.wav", "music.wav", "All tracks"}
    assert media["All tracks"] == {"tracks": [{"media": "host.wav", "offset": 0.0},
                                              {"media": "guest.wav", "offset": 1.5},
                                              {"media": "music.wav", "offset": 0.25}]}
    signed = parse_qs(urlsplit(media["host.wav"]["url"]).query)
    assert signed["X-Amz-Expires"] == ["172800"]  # 48 hours
    assert body["add_compositions"] == [{"name": "Roundtable", "clips": [{"media": "All tracks"}]}]
    assert "callback_url" not in body  # no callback base: polling only

    [agent] = calls(fast, "POST", "/v1/jobs/agent")
    assert agent["json"]["prompt"] == PROMPT and agent["json"]["project_id"] == done.project_id
    assert agent["json"]["composition_id"] == done.composition_id
    [publish] = calls(fast, "POST", "/v1/jobs/publish")
    assert publish["json"]["media_type"] == "Audio"

    steps = {s.kind: s for s in done.steps.all()}
    assert set(steps) == {"import", "agent", "publish"}
    assert all(s.state == "succeeded" and s.job_id and s.polls >= 1 and s.calls >= 2 for s in steps.values())
    assert done.agent_summary and done.project_url and done.share_url

    # The edit came home through the way back's own import, as a version of the same recording.
    export = ReturnedExport.objects.get(pk=done.export_id)
    assert export.state == "done" and export.match == "own_source" and export.target_ref == str(roundtable.pk)
    version = RecordingVersion.objects.get(recording=roundtable)
    assert (done.result_ref, done.version_number) == (str(roundtable.pk), version.number)
    download = sandbox_job(steps["publish"].job_id)["result"]["download_url"]
    published = requests.get(download, timeout=10).content
    stored = s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=version.assets.get(kind="audio").key)
    assert stored["Body"].read() == published

    # What pages and the API see: every step, the summary, and no secret.
    described = machine.describe(done)
    assert described["state"] == "done" and described["version_number"] == version.number
    assert [s["kind"] for s in described["steps"]] == ["import", "agent", "publish"]
    text = json.dumps(described)
    assert "X-Amz" not in text and download not in text and settings.DESCRIPT_API_TOKEN not in text
    assert "download_url" not in steps["publish"].result and download not in json.dumps(steps["publish"].result)


def test_a_missing_file_fails_plainly_before_descript_hears_of_it(fast, alice, make_recording):
    recording = make_recording(alice, "Gone", mix=("alice/never-uploaded.wav", None, "audio/wav"))
    done = drive(start(alice, recording))
    assert done.state == "failed" and "never-uploaded.wav" in done.reason and "not in storage" in done.reason
    assert calls(fast, "POST", "/v1/jobs/") == []


# --- partial imports: go on or stop ---------------------------------------------------------------


def test_partial_import_waits_for_a_choice_then_goes_on_with_the_rest(fast, alice, roundtable):
    fast.configure_jobs(fail_media=["guest.wav"])
    ae = drive(start(alice, roundtable), until=("needs_choice", "failed"))
    assert ae.state == "needs_choice" and list(ae.failed_files) == ["guest.wav"]
    described = machine.describe(ae)
    assert described["can_choose"] and described["failed_files"] == ae.failed_files
    assert machine.advance(ae.pk) is None and AutoEdit.objects.get(pk=ae.pk).state == "needs_choice"

    assert machine.go_on(ae)
    assert not machine.go_on(ae)  # once
    done = drive(ae)
    assert done.state == "done", done.reason
    assert done.steps.get(kind="import").state == "partial"


def test_partial_import_stopped_is_cancelled_with_the_reason(fast, alice, roundtable):
    fast.configure_jobs(fail_media=["music.wav"])
    ae = drive(start(alice, roundtable), until=("needs_choice", "failed"))
    assert machine.stop(ae)
    ae.refresh_from_db()
    assert ae.state == "cancelled" and "1 file did not import" in ae.reason
    assert not machine.stop(ae) and calls(fast, "POST", "/v1/jobs/agent") == []


# --- Descript says no ----------------------------------------------------------------------------


@pytest.mark.parametrize("knobs, at, words", [
    ({"media_minutes_exhausted": True}, "import", "media minutes"),
    ({"ai_credits_exhausted": True}, "agent", "AI credits"),
    ({"forbidden": ["publish"]}, "publish", "may not do this"),
])
def test_402_and_403_fail_in_plain_words(fast, alice, interview, knobs, at, words):
    fast.configure_jobs(**knobs)
    done = drive(start(alice, interview))
    assert done.state == "failed" and words in done.reason
    step = done.steps.get(kind=at)
    assert step.state == "failed" and step.error == done.reason and step.job_id is None
    assert done.failure_kind in ("payment_required", "forbidden")


def test_an_agent_error_fails_with_descripts_words(fast, alice, interview):
    fast.configure_jobs(agent_error="AI agent failed to process the request")
    done = drive(start(alice, interview))
    assert done.state == "failed" and "AI agent failed to process the request" in done.reason
    assert done.failure_kind == "agent"


def test_429_while_polling_waits_retry_after_and_carries_on(fast, alice, interview):
    fast.add_fault(path="/v1/jobs/", path_regex=r"/v1/jobs/[^/]+", method="GET", status=429, times=2,
                   headers={"Retry-After": "1"})
    done = drive(start(alice, interview))
    assert done.state == "done", done.reason
    assert [r["status"] for r in calls(fast, "GET", "/v1/jobs/")][:2] == [429, 429]
    assert DescriptBudget.objects.get().throttled_total == 2


def test_a_lost_answer_is_found_again_not_submitted_twice(fast, settings, alice, interview):
    settings.DESCRIPT_READ_TIMEOUT = 0.5
    fast.add_fault(path="/v1/jobs/import/project_media", method="POST", hold_after_seconds=1.5, times=1)
    ae = start(alice, interview)
    machine.advance(ae.pk)  # the POST times out: the job may exist
    step = JobStep.objects.get(auto_edit=ae)
    assert step.state == "submitting" and step.job_id is None and step.submit_started_at is not None
    done = drive(ae)
    assert done.state == "done", done.reason
    imports = [j for j in fast.jobs() if j["job_type"] == "import/project_media"]
    assert len(imports) == 1 and len(calls(fast, "POST", "/v1/jobs/import/project_media")) == 1
    assert done.steps.get(kind="import").job_id == imports[0]["job_id"]


def test_a_step_that_never_stops_is_given_up(fast, settings, alice, interview):
    settings.EID_JOBS_GIVE_UP_SECONDS = 1.0
    fast.configure_jobs(import_seconds=60)
    done = drive(start(alice, interview))
    assert done.state == "failed" and "had not finished" in done.reason
    [job] = fast.jobs()
    assert job["job_state"] == "cancelled"


# --- cancel at every step ------------------------------------------------------------------------


def test_cancel_while_queued_calls_nobody(fast, settings, alice, interview):
    settings.EID_JOBS_MAX_IN_FLIGHT = 0
    ae = start(alice, interview)
    machine.advance(ae.pk)
    assert AutoEdit.objects.get(pk=ae.pk).state == "queued"
    assert machine.cancel(ae, by="alice")
    assert ae.state == "cancelled" and ae.reason == "Cancelled by alice." and fast.requests("/v1/") == []
    assert not machine.cancel(ae)


state_kind = {"importing": "import", "editing": "agent", "publishing": "publish"}


@pytest.mark.parametrize("state, kind", [("importing", "import/project_media"), ("editing", "agent"),
                                         ("publishing", "publish")])
def test_cancel_with_a_job_in_flight_cancels_it_at_descript(fast, alice, interview, state, kind):
    fast.configure_jobs(**{f"{kind.split('/')[0]}_seconds": 60})
    ae = start(alice, interview)
    drive(ae, until=(state,))
    step = JobStep.objects.get(auto_edit=ae, kind=JobStep.Kind(state_kind[state]))
    assert step.job_id and step.state in ("queued", "running")  # submitted in the run that got here
    assert machine.cancel(ae, by="alice")
    ae.refresh_from_db()
    assert ae.state == "cancelled"
    [delete] = calls(fast, "DELETE", "/v1/jobs/")
    assert delete["job_id"] == step.job_id and delete["status"] == 204
    assert [j["job_state"] for j in fast.jobs() if j["job_type"] == kind] == ["cancelled"]
    assert JobStep.objects.get(pk=step.pk).state == "cancelled"


def test_cancel_after_a_partial_import(fast, alice, roundtable):
    fast.configure_jobs(fail_media=["guest.wav"])
    ae = drive(start(alice, roundtable), until=("needs_choice",))
    assert machine.cancel(ae)
    assert ae.state == "cancelled" and calls(fast, "DELETE", "/v1/jobs/") == []


def test_cancel_while_copying_home_is_refused_and_the_copy_finishes(fast, alice, interview):
    ae = drive(start(alice, interview), until=("copying",))
    assert not machine.describe(ae)["can_cancel"]
    assert not machine.cancel(ae)
    assert drive(ae).state == "done"


# --- many at once ----------------------------------------------------------------------------------


def test_bounded_concurrency_and_a_batch_where_one_is_refused(fast, settings, alice, bob, interview, roundtable,
                                                             make_recording):
    settings.EID_JOBS_MAX_IN_FLIGHT = 5
    third = make_recording(alice, "Third", mix=("alice/third.wav", b"RIFF....WAVE", "audio/wav"))
    fast.configure_jobs(fail_media=["third.wav"])  # Descript cannot fetch it
    batch, outcomes = machine.start_batch(
        items=[(alice, str(interview.pk)), (bob, str(roundtable.pk)), (alice, str(roundtable.pk)),
               (alice, str(third.pk))],
        prompt=PROMPT, via="cli", name="Overnight", max_in_flight=1)
    assert [type(o).__name__ for _, o in outcomes] == ["AutoEdit", "AutoEditRefused", "AutoEdit", "AutoEdit"]
    assert outcomes[1][1].kind == "not_found"
    assert batch.max_in_flight == 1
    first, second = outcomes[0][1], outcomes[2][1]
    machine.advance(first.pk)
    machine.advance(second.pk)
    assert AutoEdit.objects.get(pk=first.pk).state == "importing"
    assert AutoEdit.objects.get(pk=second.pk).state == "queued"  # the batch's one slot is taken
    assert machine.batch_counts(batch) == {**{s: 0 for s in AutoEdit.State.values}, "importing": 1, "queued": 2,
                                           "total": 3}
    ends = [drive(o, timeout=30).state for _, o in outcomes if isinstance(o, AutoEdit)]
    assert sorted(ends) == ["done", "done", "failed"]  # the one Descript could not fetch fails alone
    counts = machine.batch_counts(batch)
    assert (counts["done"], counts["failed"], counts["total"]) == (2, 1, 3)
    assert AutoEditBatch.objects.get(pk=batch.pk).finished_at is not None
