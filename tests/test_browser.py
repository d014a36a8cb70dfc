"""The Edit in Descript round trip in a real browser: Debian's Chromium driven by Playwright.

test_worker.py does the same trip with `requests`; this one clicks what a person clicks, so
it also covers the pages' own behaviour: the login redirect, the busy state that stops a
second click, the sandbox's import and share pages, the landing's Import button, and the
status page that keeps itself current until the import is done. Screenshots go to
test-artifacts/ so a person can look at the pages afterwards.
"""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings

from demo.media import wav_bytes

from chromium import REPORT_SUBMITS, chromium_page
from support import ARTIFACTS, start_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCHEMA_PATH = "/v1/edit_in_descript/schema"


@pytest.fixture
def page(monkeypatch):
    with chromium_page(monkeypatch) as pg:
        yield pg


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r"/accounts/login/"))  # the library needs a login
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_request(lambda r: r.method == "POST") as sent, page.expect_navigation():
        page.click("button[type=submit]:has-text('Log in')")
    if page.url != f"{base}/":
        page.screenshot(path=str(ARTIFACTS / "browser-login-failed.png"), full_page=True)
    assert page.url == f"{base}/", (
        f"logging in did not reach the library (sent Origin: {sent.value.headers.get('origin')!r}); "
        f"the page says: {page.inner_text('main')!r}"
    )
    assert page.locator("h1").inner_text() == "Your recordings"


def assert_no_secrets(page) -> None:
    """Nothing on our pages may carry a presigned URL or the Descript API token."""
    html, text = page.content(), page.inner_text("body")
    for secret in ("X-Amz-Signature", settings.DESCRIPT_API_TOKEN):
        assert secret not in html and secret not in text, f"{secret!r} on {page.url}"


def test_round_trip_in_a_real_browser(page, live_server, sandbox_server, sandbox, make_recording, alice, s3,
                                      monkeypatch):
    from partner_site.library.models import RecordingVersion

    original = wav_bytes(0.6)
    recording = make_recording(alice, "Interview with Ada", mix=("alice/ada.wav", original, "audio/wav"))
    # The sandbox's config is shared by the session: put it back for the tests that follow.
    monkeypatch.setattr(sandbox_server.config, "partner_import_url", f"{live_server.url}/descript/import/new")
    monkeypatch.setattr(sandbox_server.config, "render_seconds", 1.0)
    # Slow Descript's answer once so the busy state is there to see (and to click twice).
    sandbox.add_fault(path=SCHEMA_PATH, latency_ms=800, times=1)
    base = live_server.url
    worker = start_worker(ARTIFACTS / "browser-worker.log")
    try:
        log_in(page, base, "alice", "alice-pass-1234")
        card = page.locator(f"section.recording[data-recording='{recording.pk}']")
        assert "Interview with Ada" in card.inner_text()
        assert_no_secrets(page)

        # The click: the button turns busy at once, and a second click sends nothing. The page
        # cannot be inspected once the browser is waiting on the POST (Playwright's evaluate
        # waits for the next document), so a listener reports each submit's button state on
        # the console, and the clicks are plain mouse clicks at the button's place.
        button = page.get_by_test_id(f"edit-{recording.pk}-mix")
        assert button.inner_text() == "Edit in Descript" and button.is_enabled()
        submits: list[dict] = []
        page.on("console", lambda msg: submits.append(json.loads(msg.text[len("eid-submit "):]))
                if msg.text.startswith("eid-submit ") else None)
        page.evaluate(REPORT_SUBMITS, f"[data-testid='edit-{recording.pk}-mix']")
        edit_posts: list[str] = []
        page.on("request", lambda r: edit_posts.append(r.url) if r.method == "POST" and "/descript/edit/" in r.url
                else None)
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        page.mouse.click(x, y)  # again, while Descript is still answering (800 ms)

        # Descript's (the sandbox's) import page, which fetched our file.
        page.wait_for_url(f"{sandbox_server.url}/import?nonce=*")
        assert page.locator('#import-result[data-ok="true"]').count() == 1
        assert submits == [{"disabled": True, "text": "Opening Descript…", "busy": "true", "prevented": False}]
        assert edit_posts == [f"{base}/descript/edit/{recording.pk}/mix/"]
        assert len(sandbox.requests(SCHEMA_PATH)) == 1

        # Publish in "Descript", then send the edit back to us.
        page.fill("#publish input[name=title]", "Tight cut")
        with page.expect_navigation():
            page.click("#publish button[type=submit]")
        assert page.url.startswith(f"{sandbox_server.url}/view/")
        with page.expect_navigation():
            page.click("#send-to-partner")

        # Our landing: says what will happen before anything is written.
        assert page.url.startswith(f"{base}/descript/import/new?")
        target = page.locator("#import-target").inner_text()
        assert "Edited version of" in target and "Interview with Ada" in target
        assert page.locator("#import-title").inner_text() == "Tight cut"
        assert_no_secrets(page)
        page.screenshot(path=str(ARTIFACTS / "browser-landing.png"), full_page=True)
        with page.expect_navigation():
            page.click("button[type=submit]:has-text('Import')")

        # The status page polls and reloads itself until the import is done.
        assert re.search(r"/descript/imports/[0-9a-f-]+/$", page.url), page.url
        page.wait_for_selector("#import-status")
        assert_no_secrets(page)
        page.screenshot(path=str(ARTIFACTS / "browser-status.png"), full_page=True)
        page.wait_for_selector('#import-status[data-state="done"]', timeout=60_000)
        assert_no_secrets(page)
        page.screenshot(path=str(ARTIFACTS / "browser-status-done.png"), full_page=True)
        with page.expect_navigation():
            page.click("#recording-link")

        assert page.url == f"{base}/recordings/{recording.pk}/"
        versions = page.locator("li[data-version]")
        assert versions.count() == 1
        assert "Version 1: Tight cut" in versions.first.inner_text()
        assert_no_secrets(page)
        page.screenshot(path=str(ARTIFACTS / "browser-round-trip.png"), full_page=True)
        assert page.page_errors == []
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except Exception:
            worker.kill()

    # The version's audio is the very WAV we sent: the sandbox publishes what it imported.
    version = RecordingVersion.objects.get(recording=recording)
    assert version.number == 1
    audio = version.assets.get(kind="audio")
    stored = s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=audio.key)["Body"].read()
    assert stored == original
    assert len(sandbox.requests(SCHEMA_PATH)) == 1  # one click, one request to Descript


def test_descript_failing_shows_the_plain_error_page(page, live_server, sandbox, make_recording, alice):
    recording = make_recording(alice, "Broken day", mix=("alice/broken.wav", wav_bytes(0.2), "audio/wav"))
    sandbox.add_fault(path=SCHEMA_PATH, status=500)
    log_in(page, live_server.url, "alice", "alice-pass-1234")

    with page.expect_navigation() as nav:
        page.get_by_test_id(f"edit-{recording.pk}-mix").click()
    response = nav.value
    assert response.status == 502
    assert page.url == f"{live_server.url}/descript/edit/{recording.pk}/mix/"
    alert = page.get_by_role("alert")
    assert "Descript could not open this recording" in alert.inner_text()
    assert page.get_by_role("button", name="Try again").is_enabled()
    help_link = page.get_by_role("link", name="Help with Edit in Descript")
    assert help_link.get_attribute("href") == settings.DESCRIPT_HELP_URL
    assert page.get_by_role("link", name="Back to your recordings").get_attribute("href") == "/"
    html = page.content()
    assert "Traceback" not in html and 'File "' not in html
    assert_no_secrets(page)
    page.screenshot(path=str(ARTIFACTS / "browser-error.png"), full_page=True)
    assert page.page_errors == []
