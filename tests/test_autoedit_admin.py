"""Operators' side of auto-edits: presets, batches with counts, auto-edits with their Descript jobs
inline (and never a token, a callback token or a signed link), the cancel / go on / stop actions,
and the partner's Recording admin starting a batch through eid's reusable action."""

from __future__ import annotations

import pytest

from eid.jobs.models import AutoEdit, AutoEditBatch, JobStep, PromptPreset, digest

pytestmark = pytest.mark.django_db
ADMIN = "/admin/eid_jobs"
SIGNED = ("https://media.descript.test/published/abc.m4a?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Signature=5f0e1d2c3b4a")
CALLBACK_TOKEN = "cb-token-Zx81qLmP0o-never-shown"


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="root-pass-1234"))
    return client


@pytest.fixture
def solo(make_recording, alice):
    return make_recording(alice, "Solo episode", mix=("alice/solo.wav", None, "audio/wav"))


@pytest.fixture
def running(alice, solo):
    """An auto-edit with a finished import and a running agent job, as the machine leaves them."""
    from eid.jobs.machine import start_auto_edit

    ae = start_auto_edit(user=alice, item_ref=str(solo.pk), prompt="Tighten the intro", via="page",
                         requested_by="alice")
    JobStep.objects.create(auto_edit=ae, kind="import", state="succeeded", job_id="job-import-77",
                           callback_digest=digest(CALLBACK_TOKEN), progress_label="Imported", progress_percent=100,
                           # A step's result should hold no signed link; if one slipped in, the admin hides it.
                           result={"project_id": "proj-77", "download_url": SIGNED, "note": SIGNED},
                           calls=4, polls=3, polls_unchanged=1, callbacks=1)
    JobStep.objects.create(auto_edit=ae, kind="agent", state="running", job_id="job-agent-78",
                           callback_digest=digest("other"), progress_label="Underlord is thinking",
                           progress_percent=35)
    AutoEdit.objects.filter(pk=ae.pk).update(state="editing", project_id="proj-77",
                                             project_url="https://web.descript.com/p/proj-77")
    return AutoEdit.objects.get(pk=ae.pk)


def no_secrets(html: str) -> None:
    for secret in ("X-Amz-Signature", CALLBACK_TOKEN, digest(CALLBACK_TOKEN), "sandbox-token-tests"):
        assert secret not in html, secret


def test_auto_edits_list_and_change_page_with_their_jobs(operator, running):
    listing = operator.get(f"{ADMIN}/autoedit/")
    assert listing.status_code == 200 and "Solo episode" in listing.content.decode()
    no_secrets(listing.content.decode())

    page = operator.get(f"{ADMIN}/autoedit/{running.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    for shown in ("job-import-77", "job-agent-78", "Underlord is thinking (35%)", "Imported (100%)", "proj-77",
                  "4 / 3 (1) / 1", "Tighten the intro", "https://web.descript.com/p/proj-77"):
        assert shown in html, shown
    assert "(hidden)" in html  # the signed link's place, without the link
    no_secrets(html)
    assert 'name="_save"' not in html  # rows are the machine's: read-only


@pytest.mark.django_db(transaction=True)
def test_the_cancel_action(operator, running):
    answer = operator.post(f"{ADMIN}/autoedit/", {"action": "cancel_auto_edits", "_selected_action": [running.pk]},
                           follow=True)
    assert answer.status_code == 200 and "1 auto-edit(s) cancelled" in answer.content.decode()
    running.refresh_from_db()
    assert running.state in ("cancelled",) or running.cancel_requested_at is not None


@pytest.mark.django_db(transaction=True)
def test_go_on_and_stop_actions_only_touch_partial_imports(operator, running, alice, make_recording):
    from eid.jobs.machine import start_auto_edit

    other = make_recording(alice, "Second", mix=("alice/second.wav", None, "audio/wav"))
    waiting = start_auto_edit(user=alice, item_ref=str(other.pk), prompt="Tighten", via="page")
    JobStep.objects.create(auto_edit=waiting, kind="import", state="partial", job_id="job-import-90",
                           callback_digest=digest("x90"))
    AutoEdit.objects.filter(pk=waiting.pk).update(state="needs_choice", project_id="proj-90",
                                                  failed_files={"guest.wav": "Not a media file."})
    page = operator.get(f"{ADMIN}/autoedit/{waiting.pk}/change/").content.decode()
    assert "guest.wav" in page and "Not a media file." in page

    answer = operator.post(f"{ADMIN}/autoedit/", {"action": "stop_auto_edits",
                                                   "_selected_action": [waiting.pk, running.pk]}, follow=True)
    text = answer.content.decode()
    assert "1 auto-edit(s) stopped" in text and "1 left as they were: they were not waiting for a choice." in text
    waiting.refresh_from_db()
    running.refresh_from_db()
    assert waiting.state == "cancelled" and running.state == "editing"


def test_presets_are_editable(operator):
    answer = operator.post(f"{ADMIN}/promptpreset/add/", {"name": "Clean up", "prompt": "Remove filler words.",
                                                          "media_type": "Audio", "resolution": "", "position": 1,
                                                          "enabled": "on"})
    assert answer.status_code == 302
    assert PromptPreset.objects.get().prompt == "Remove filler words."
    assert "Clean up" in operator.get(f"{ADMIN}/promptpreset/").content.decode()


def test_the_recordings_admin_starts_a_batch(operator, solo, alice, bob, make_recording):
    PromptPreset.objects.create(name="Clean up", prompt="Remove filler words.")
    bobs = make_recording(bob, "Bob's show", mix=("bob/show.wav", None, "audio/wav"))
    empty = make_recording(alice, "No files")
    chosen = [solo.pk, bobs.pk, empty.pk]

    # The action first asks what to do (nothing started yet).
    form = operator.post("/admin/library/recording/", {"action": "start_auto_edits", "_selected_action": chosen})
    html = form.content.decode()
    assert form.status_code == 200 and "Edit automatically with Descript" in html and "Clean up" in html
    assert "Solo episode" in html and "Bob&#x27;s show" in html
    assert not AutoEditBatch.objects.exists()

    # Without a preset or a prompt: the same page, saying so.
    again = operator.post("/admin/library/recording/", {"action": "start_auto_edits", "_selected_action": chosen,
                                                        "start_auto_edits": "1", "prompt": "", "media_type": "Audio"})
    assert again.status_code == 200 and "Choose a preset or tell Underlord what to do." in again.content.decode()
    assert not AutoEditBatch.objects.exists()

    done = operator.post("/admin/library/recording/", {
        "action": "start_auto_edits", "_selected_action": chosen, "start_auto_edits": "1", "preset": "Clean up",
        "media_type": "Audio", "name": "From the admin", "max_in_flight": "3"}, follow=True)
    batch = AutoEditBatch.objects.get()
    assert (batch.via, batch.requested_by, batch.name, batch.max_in_flight) == ("admin", "root", "From the admin", 3)
    edits = {ae.item_ref: ae for ae in AutoEdit.objects.filter(batch=batch)}
    assert set(edits) == {str(solo.pk), str(bobs.pk)}  # each for its owner; the empty one refused
    assert edits[str(bobs.pk)].user == bob and edits[str(solo.pk)].user == alice
    text = done.content.decode()
    assert "2 auto-edit(s) started" in text and "1 not started" in text
    assert done.redirect_chain[-1][0].endswith(f"/admin/eid_jobs/autoeditbatch/{batch.pk}/change/")

    # The batch's page in the admin: counts by state and its auto-edits.
    assert "Waiting to start: 2" in text and "Solo episode" in text


def test_batches_list_with_counts(operator, solo, alice):
    from eid.jobs.machine import start_batch

    batch, _ = start_batch(items=[(alice, str(solo.pk))], prompt="Tighten", via="api", requested_by="token:x",
                           name="Nightly")
    listing = operator.get(f"{ADMIN}/autoeditbatch/").content.decode()
    assert "Nightly" in listing and "Waiting to start: 1" in listing


def test_the_rate_budget_shows_descripts_hold_off_and_never_the_token(operator, sandbox, settings):
    from eid.jobs.client import JobsClient, JobsError

    sandbox.add_fault(path="/v1/jobs", method="GET", status=429, headers={"Retry-After": "40"}, times=1)
    with pytest.raises(JobsError):
        JobsClient().list_jobs()

    from eid.jobs.models import DescriptBudget

    [budget] = DescriptBudget.objects.all()
    assert budget.throttled_total == 1 and budget.not_before is not None
    page = operator.get(f"{ADMIN}/descriptbudget/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "sha256:" + digest(settings.DESCRIPT_API_TOKEN)[:12] in text
    assert settings.DESCRIPT_API_TOKEN not in text
    row = operator.get(f"{ADMIN}/descriptbudget/{digest(settings.DESCRIPT_API_TOKEN)}/change/").content.decode()
    assert "Descript said wait until" in row and settings.DESCRIPT_API_TOKEN not in row
    assert operator.get(f"{ADMIN}/descriptbudget/add/").status_code == 403
