"""Auto-edits from the recording page: the panel, starting one (a preset, free text), the refusals in
plain words, the live status JSON (its owner's only), the cancel / go on / stop buttons, the
per-user throttle, and a batch's page. The machine's own steps are eid.jobs' tests."""

from __future__ import annotations

import pytest
from django.urls import reverse

from demo.media import wav_bytes
from eid.jobs.models import AutoEdit, AutoEditBatch, JobStep, PromptPreset

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset(db):
    return PromptPreset.objects.create(name="Clean up", prompt="Remove filler words and add Studio Sound.",
                                       position=1)


@pytest.fixture
def solo(make_recording, alice):
    return make_recording(alice, "Solo episode", mix=("alice/solo.wav", wav_bytes(0.2), "audio/wav"))


def start_url(recording) -> str:
    return reverse("eid_jobs:start", args=[recording.pk])


def page_of(ae) -> str:
    return reverse("eid_jobs:auto_edit", args=[ae.pk])


def status_of(ae) -> str:
    return reverse("eid_jobs:auto_edit_status", args=[ae.pk])


def test_the_recording_page_offers_presets_and_free_text(alice_client, solo, preset):
    PromptPreset.objects.create(name="Retired", prompt="Old", enabled=False)
    page = alice_client.get(f"/recordings/{solo.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'action="{start_url(solo)}"' in html
    assert "Clean up" in html and "Retired" not in html  # enabled presets only
    assert 'name="prompt"' in html and 'name="media_type"' in html and 'name="resolution"' in html
    assert "eid_jobs/auto_edit.js" in html and "<script>" not in html  # static script only (CSP)


def test_start_with_a_preset(alice_client, solo, preset, alice):
    answer = alice_client.post(start_url(solo), {"preset": "Clean up", "prompt": "", "media_type": "Audio"})
    ae = AutoEdit.objects.get()
    assert answer.status_code == 302 and answer["Location"] == page_of(ae)
    assert (ae.user, ae.item_ref, ae.item_title) == (alice, str(solo.pk), "Solo episode")
    assert (ae.prompt, ae.preset, ae.media_type, ae.via, ae.requested_by) == (
        preset.prompt, preset, "Audio", "page", "alice")
    assert ae.state == "queued" and ae.option == "mix"

    # The panel lists it, linked to its page.
    html = alice_client.get(f"/recordings/{solo.pk}/").content.decode()
    assert f'href="{page_of(ae)}"' in html and "Waiting to start" in html


def test_start_with_free_text_as_video(alice_client, solo):
    answer = alice_client.post(start_url(solo), {"prompt": "  Cut the long pauses.  ", "media_type": "Video",
                                                 "resolution": "1080p"})
    assert answer.status_code == 302
    ae = AutoEdit.objects.get()
    assert (ae.prompt, ae.preset, ae.media_type, ae.resolution) == ("Cut the long pauses.", None, "Video", "1080p")


def test_someone_elses_recording_is_a_404(client, bob, solo, preset):
    client.force_login(bob)
    answer = client.post(start_url(solo), {"preset": "Clean up"})
    assert answer.status_code == 404
    assert "There is no such recording." in answer.content.decode()
    assert not AutoEdit.objects.exists()


def test_no_prompt_is_a_400_in_plain_words(alice_client, solo):
    answer = alice_client.post(start_url(solo), {"prompt": "   ", "media_type": "Audio"})
    assert answer.status_code == 400
    text = answer.content.decode()
    assert "Choose a preset or tell Underlord what to do." in text and "Traceback" not in text
    assert not AutoEdit.objects.exists()


def test_a_disabled_or_unknown_preset_is_a_400(alice_client, solo, preset):
    PromptPreset.objects.filter(pk=preset.pk).update(enabled=False)
    answer = alice_client.post(start_url(solo), {"preset": "Clean up"})
    assert answer.status_code == 400 and "preset" in answer.content.decode().lower()
    assert not AutoEdit.objects.exists()


def test_start_answers_post_only(alice_client, solo):
    answer = alice_client.get(start_url(solo))
    assert answer.status_code == 405 and answer["Allow"] == "POST"


def test_a_second_start_while_one_runs_is_refused(alice_client, solo):
    assert alice_client.post(start_url(solo), {"prompt": "Tighten it"}).status_code == 302
    again = alice_client.post(start_url(solo), {"prompt": "Tighten it"})
    assert again.status_code == 409 and "already running" in again.content.decode()
    assert AutoEdit.objects.count() == 1


def test_starting_is_throttled_per_user_with_a_plain_429(alice_client, solo, make_recording, alice, settings):
    settings.EID_THROTTLE_RATES = {**settings.EID_THROTTLE_RATES, "auto_edit": "2/m"}
    others = [make_recording(alice, f"Episode {n}", mix=(f"alice/e{n}.wav", None, "audio/wav")) for n in range(3)]
    assert [alice_client.post(start_url(r), {"prompt": "Tighten"}).status_code for r in others[:2]] == [302, 302]
    third = alice_client.post(start_url(others[2]), {"prompt": "Tighten"})
    assert third.status_code == 429 and int(third["Retry-After"]) >= 1
    assert "You have started a lot of automatic edits" in third.content.decode()
    assert AutoEdit.objects.count() == 2


def test_the_status_page_and_its_json_are_the_owners_only(alice_client, client, bob, solo, preset):
    alice_client.post(start_url(solo), {"preset": "Clean up"})
    ae = AutoEdit.objects.get()
    JobStep.objects.create(auto_edit=ae, kind="import", state="running", job_id="job-imp-1",
                           callback_digest="d" * 64, progress_label="Transcribing", progress_percent=40)
    AutoEdit.objects.filter(pk=ae.pk).update(state="importing", project_url="https://web.descript.com/p/abc")

    page = alice_client.get(page_of(ae))
    html = page.content.decode()
    assert page.status_code == 200 and 'data-active="1"' in html
    assert f'data-poll="{status_of(ae)}"' in html
    assert "Transcribing" in html and 'value="40"' in html and "https://web.descript.com/p/abc" in html

    status = alice_client.get(status_of(ae))
    assert status.status_code == 200 and status["Content-Type"] == "application/json"
    assert "no-cache" in status["Cache-Control"]
    body = status.json()
    assert (body["state"], body["can_cancel"], body["can_choose"], body["final"]) == ("importing", True, False, False)
    assert body["steps"][0]["progress_label"] == "Transcribing" and body["steps"][0]["progress_percent"] == 40
    assert body["item_url"] == f"/recordings/{solo.pk}/"

    client.force_login(bob)
    assert client.get(status_of(ae)).status_code == 404
    assert client.get(page_of(ae)).status_code == 404
    assert client.post(reverse("eid_jobs:cancel", args=[ae.pk])).status_code == 404
    assert AutoEdit.objects.get(pk=ae.pk).state == "importing"


def test_not_signed_in_goes_to_the_login(client, solo):
    answer = client.post(start_url(solo), {"prompt": "x"})
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


@pytest.mark.django_db(transaction=True)  # as in a real request: no transaction around the view
def test_the_cancel_button_cancels(alice_client, solo):
    alice_client.post(start_url(solo), {"prompt": "Tighten"})
    ae = AutoEdit.objects.get()
    answer = alice_client.post(reverse("eid_jobs:cancel", args=[ae.pk]))
    assert answer.status_code == 302 and answer["Location"] == page_of(ae)
    ae.refresh_from_db()
    assert ae.state == "cancelled" and ae.is_final
    body = alice_client.get(status_of(ae)).json()
    assert body["final"] and not body["can_cancel"]
    # Too late now: said in plain words, nothing changes.
    again = alice_client.post(reverse("eid_jobs:cancel", args=[ae.pk]))
    assert again.status_code == 409 and "can no longer be cancelled" in again.content.decode()


def partial_import(alice_client, solo) -> AutoEdit:
    """An auto-edit whose import partly succeeded: the row as the machine leaves it."""
    alice_client.post(start_url(solo), {"prompt": "Tighten"})
    ae = AutoEdit.objects.get()
    JobStep.objects.create(auto_edit=ae, kind="import", state="partial", job_id="job-imp-2",
                           callback_digest="e" * 64, progress_label="Done", progress_percent=100)
    AutoEdit.objects.filter(pk=ae.pk).update(
        state="needs_choice", project_id="proj-1", project_url="https://web.descript.com/p/proj-1",
        failed_files={"guest.wav": "The file could not be decoded."})
    return AutoEdit.objects.get(pk=ae.pk)


@pytest.mark.django_db(transaction=True)  # as in a real request: no transaction around the view
def test_a_partial_import_shows_what_failed_and_offers_go_on_or_stop(alice_client, solo):
    ae = partial_import(alice_client, solo)
    html = alice_client.get(page_of(ae)).content.decode()
    assert "guest.wav" in html and "The file could not be decoded." in html
    assert reverse("eid_jobs:go_on", args=[ae.pk]) in html and reverse("eid_jobs:stop", args=[ae.pk]) in html
    body = alice_client.get(status_of(ae)).json()
    assert body["can_choose"] and body["failed_files"] == {"guest.wav": "The file could not be decoded."}

    answer = alice_client.post(reverse("eid_jobs:stop", args=[ae.pk]))
    assert answer.status_code == 302
    ae.refresh_from_db()
    assert ae.state == "cancelled"


@pytest.mark.django_db(transaction=True)  # as in a real request: no transaction around the view
def test_go_on_after_a_partial_import(alice_client, solo):
    ae = partial_import(alice_client, solo)
    answer = alice_client.post(reverse("eid_jobs:go_on", args=[ae.pk]))
    assert answer.status_code == 302
    ae.refresh_from_db()
    assert ae.state not in ("needs_choice", "failed", "cancelled")
    # No longer a choice to make: a second click says so.
    again = alice_client.post(reverse("eid_jobs:go_on", args=[ae.pk]))
    assert again.status_code == 409 and "not waiting for a choice" in again.content.decode()


def test_a_failed_auto_edit_shows_its_reason(alice_client, solo):
    alice_client.post(start_url(solo), {"prompt": "Tighten"})
    ae = AutoEdit.objects.get()
    words = "Descript says this drive has no media minutes left (402). Add minutes, then try again."
    AutoEdit.objects.filter(pk=ae.pk).update(state="failed", reason=words, failure_kind="payment_required")
    html = alice_client.get(page_of(ae)).content.decode()
    assert words in html and 'data-active="1"' not in html
    assert alice_client.get(status_of(ae)).json()["reason"] == words


# --- batches -------------------------------------------------------------------------------------


@pytest.fixture
def batch(alice, solo):
    from eid.jobs.machine import start_batch

    made, _ = start_batch(items=[(alice, str(solo.pk)), (alice, "999999")], prompt="Tighten", via="admin",
                          requested_by="operator", name="Tonight")
    return made


def test_a_batch_page_for_staff_with_counts_and_links(client, django_user_model, batch, alice):
    staff = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("eid_jobs:batch", args=[batch.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "Tonight" in html and "Solo episode" in html
    ae = AutoEdit.objects.get(batch=batch)
    assert reverse("admin:eid_jobs_autoedit_change", args=[ae.pk]) in html  # not staff's own: the admin's page
    status = client.get(reverse("eid_jobs:batch_status", args=[batch.pk])).json()
    assert status["total"] == 1 and status["counts"]["queued"] == 1 and not status["final"]
    assert status["by_state"] == [{"state": "queued", "words": "Waiting to start", "n": 1}]


def test_a_batch_page_is_nobody_elses(client, bob, batch):
    client.force_login(bob)
    assert client.get(reverse("eid_jobs:batch", args=[batch.pk])).status_code == 404
    assert client.get(reverse("eid_jobs:batch_status", args=[batch.pk])).status_code == 404


def test_the_requester_sees_their_batch(alice_client, alice, solo):
    from eid.jobs.machine import start_batch

    made, _ = start_batch(items=[(alice, str(solo.pk))], prompt="Tighten", via="page", requested_by="alice")
    page = alice_client.get(reverse("eid_jobs:batch", args=[made.pk]))
    ae = AutoEdit.objects.get(batch=made)
    assert page.status_code == 200 and page_of(ae) in page.content.decode()
    assert AutoEditBatch.objects.count() == 1
