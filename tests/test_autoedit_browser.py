"""An automatic edit in a real browser: Debian's Chromium driven by Playwright, a real worker
process, the sandbox's jobs API with callbacks to the live server, and moto's S3.

A person picks a preset on the recording page and starts the edit; the status page then follows
the import, Underlord and the publish as they happen (Descript's progress label and percent), by
polling its JSON, never reloading itself, until it shows Underlord's summary and the new version.
No CSP violation, no JavaScript error, no signed link on any page.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from demo.media import wav_bytes
from eid.jobs.models import AutoEdit, PromptPreset

from chromium import chromium_page
from support import ARTIFACTS, start_worker, stop_process
from test_browser import assert_no_secrets, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Jobs long enough to be seen running on the page, short enough for a quick test.
JOBS = {"queued_seconds": 0.0, "import_seconds": 4.0, "agent_seconds": 4.0, "publish_seconds": 3.0,
        "callbacks": True}


def start_jobs_worker(callback_base: str):
    """A real db_worker with the auto-edit settings the test wants."""
    return start_worker(ARTIFACTS / "autoedit-browser-worker.log", overrides={
        "EID_JOBS_CALLBACK_BASE": callback_base,
        # Polls (the fallback to callbacks) often enough to see Descript's progress while a job runs.
        "EID_JOBS_POLL_FIRST_SECONDS": 0.5,
        "EID_JOBS_POLL_SECONDS": (1.0, 1.2),
        "EID_JOBS_POLL_MIN_SECONDS": 0.5,
        "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 1.0,
        "EID_EXPORT_POLL_SECONDS": 0.2,
    })


@pytest.fixture
def page(monkeypatch):
    with chromium_page(monkeypatch) as pg:
        yield pg


def test_an_automatic_edit_followed_live_to_its_new_version(page, live_server, sandbox, make_recording, alice,
                                                            settings):
    ARTIFACTS.mkdir(exist_ok=True)
    settings.EID_JOBS_CALLBACK_BASE = live_server.url  # the callbacks come to the live server
    sandbox.configure_jobs(**JOBS)
    PromptPreset.objects.create(name="Clean up", prompt="Remove filler words and add Studio Sound.", position=1)
    recording = make_recording(alice, "Interview with Ada", mix=("alice/ada.wav", wav_bytes(0.5), "audio/wav"))
    from eid.webhooks.models import WebhookDelivery, WebhookEndpoint

    hooks = WebhookEndpoint.objects.create(url="https://hooks.example.test/descript",
                                           event_types=["auto_edit.completed", "auto_edit.failed"])
    base = live_server.url
    worker = start_jobs_worker(base)
    try:
        log_in(page, base, "alice", "alice-pass-1234")
        page.goto(f"{base}/recordings/{recording.pk}/")
        panel = page.locator("#auto-edit-panel")
        assert "Edit automatically with Descript" in panel.inner_text()
        # The resolution is for video only: hidden until "Video" is chosen (auto_edit.js).
        assert not page.locator("select[name=resolution]").is_visible()
        page.get_by_label("Video", exact=True).check()
        assert page.locator("select[name=resolution]").is_visible()
        page.get_by_label("Audio", exact=True).check()
        page.get_by_label("Clean up").check()
        with page.expect_navigation():
            page.get_by_test_id("auto-edit-start").click()

        assert re.search(r"/auto-edits/[0-9a-f-]{36}/$", page.url), page.url
        ae = AutoEdit.objects.get()
        assert (ae.prompt, ae.via, ae.media_type) == ("Remove filler words and add Studio Sound.", "page", "Audio")
        # A mark on this document: still there at the end means the page updated itself, never reloaded.
        page.evaluate("window.__stillTheSamePage = true")
        page.screenshot(path=str(ARTIFACTS / "autoedit-status-start.png"), full_page=True)

        # Descript's progress, shown while a job runs.
        running = page.wait_for_selector("#ae-steps li[data-state=running]", timeout=30_000)
        assert running.query_selector(".ae-step-label").inner_text()  # Descript's progress label
        page.wait_for_selector('#auto-edit[data-state="editing"], #auto-edit[data-state="publishing"]',
                               timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "autoedit-status-running.png"), full_page=True)
        assert page.locator("#ae-cancel").is_visible()

        page.wait_for_selector('#auto-edit[data-state="done"]', timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "autoedit-status-done.png"), full_page=True)
        assert page.evaluate("window.__stillTheSamePage") is True
        assert page.locator("#ae-state").inner_text() == "Done"
        summary = page.locator("#ae-summary")
        assert summary.is_visible() and "Done!" in summary.inner_text()
        assert "Remove filler words" in summary.inner_text()
        steps = page.locator("#ae-steps li")
        assert [steps.nth(i).get_attribute("data-kind") for i in range(steps.count())] == [
            "import", "agent", "publish"]
        assert all(steps.nth(i).get_attribute("data-state") == "succeeded" for i in range(3))
        assert page.locator("#ae-project-link").get_attribute("href").startswith("http")
        assert not page.locator("#ae-cancel").is_visible()
        version = page.locator("#ae-version")
        assert version.is_visible() and "Version 1 of" in version.inner_text()
        assert_no_secrets(page)
        assert page.violations == [] and page.page_errors == []

        with page.expect_navigation():
            page.click("#ae-version-link")
        assert page.url == f"{base}/recordings/{recording.pk}/"
        assert page.locator("li[data-version]").count() == 1
        assert page.locator(f"#auto-edit-list li[data-auto-edit='{ae.pk}'][data-state='done']").count() == 1
        assert page.violations == [] and page.page_errors == []
    finally:
        stop_process(worker)

    ae.refresh_from_db()
    assert ae.state == "done" and ae.version_number == 1 and ae.agent_summary
    assert sum(step.callbacks for step in ae.steps.all()) >= 1  # Descript's callbacks reached the live server
    # The worker's machine told the pipelines: one auto_edit.completed for the endpoint that asked.
    [event] = WebhookDelivery.objects.filter(endpoint=hooks)
    assert event.event_type == "auto_edit.completed" and f'"id":"{ae.pk}"' in event.payload
    assert settings.DESCRIPT_API_TOKEN not in (ARTIFACTS / "autoedit-browser-worker.log").read_text(errors="replace")


def test_a_batch_page_keeps_its_counts_current(page, live_server, make_recording, alice, django_user_model):
    """The batch page polls its JSON too: rows that change (here set directly, as the machine would)
    show up in the counts and the list without a reload."""
    from eid.jobs.machine import start_batch

    django_user_model.objects.create_user("operator", password="operator-pass-1234", is_staff=True)
    recordings = [make_recording(alice, f"Episode {n}", mix=(f"alice/e{n}.wav", None, "audio/wav")) for n in (1, 2)]
    batch, results = start_batch(items=[(alice, str(r.pk)) for r in recordings], prompt="Tighten", via="admin",
                                 requested_by="operator", name="Overnight")
    first = results[0][1]
    log_in_as(page, live_server.url, "operator", "operator-pass-1234")
    page.goto(f"{live_server.url}/auto-edits/batches/{batch.pk}/")
    assert page.locator("h1").inner_text() == "Overnight"
    assert page.locator("#batch-counts li[data-state=queued] .batch-count").inner_text() == "2"
    page.evaluate("window.__stillTheSamePage = true")

    AutoEdit.objects.filter(pk=first.pk).update(state="done", version_number=1, result_ref=str(recordings[0].pk))
    AutoEdit.objects.exclude(pk=first.pk).update(state="failed", reason="Descript could not import the file.")
    page.wait_for_selector("#auto-edit-batch[data-final='1']", timeout=15_000)
    assert page.locator("#batch-counts li[data-state=done] .batch-count").inner_text() == "1"
    assert page.locator("#batch-counts li[data-state=failed] .batch-count").inner_text() == "1"
    assert page.locator("#batch-counts li[data-state=queued]").count() == 0
    assert page.locator(f"#batch-items tr[data-id='{first.pk}'] .batch-item-detail").inner_text() == "Version 1"
    assert "Descript could not import the file." in page.locator("#batch-items").inner_text()
    assert page.evaluate("window.__stillTheSamePage") is True
    page.screenshot(path=str(ARTIFACTS / "autoedit-batch.png"), full_page=True)
    assert page.violations == [] and page.page_errors == []


def log_in_as(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]:has-text('Log in')")
