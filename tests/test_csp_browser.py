"""The Content-Security-Policy in a real browser: Debian's Chromium reports no violation on our pages.

Every page is loaded with a listener for `securitypolicyviolation` events installed before any
script of the page runs, and with the console watched for Chromium's own CSP messages (which
report what a listener cannot see, such as a blocked form submission). The policy is the one the
site sends (test_safe_defaults.py checks its words); here it is checked that the pages live with it:
their styles apply, eid.js runs (the busy state), and the click's 302 to Descript's import page is
allowed by form-action, which Chromium applies to a form's redirects as well.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from django.conf import settings

from demo.media import wav_bytes

from chromium import REPORT_SUBMITS, chromium_page
from support import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCHEMA_PATH = "/v1/edit_in_descript/schema"
DRIVE = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"


@pytest.fixture
def page(monkeypatch):
    with chromium_page(monkeypatch) as pg:
        yield pg


def visit(page, url: str, name: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response.status == status, (url, response.status)
    assert "content-security-policy" in response.headers, url
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # violation events are queued tasks
    page.screenshot(path=str(ARTIFACTS / f"csp-{name}.png"), full_page=True)
    # site.css applied: the header bar is dark, the body font is not the browser's default serif.
    header_bg = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
    assert header_bg == "rgb(29, 29, 31)", (name, header_bg)
    assert page.violations == [], (name, page.violations)


def log_in(page, base: str) -> None:
    visit(page, f"{base}/accounts/login/", "login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-1234")
    with page.expect_navigation():
        page.click("button[type=submit]:has-text('Log in')")
    assert page.url == f"{base}/", page.inner_text("main")


def test_no_page_violates_the_policy_and_the_button_still_works(page, live_server, sandbox_server, sandbox,
                                                                 make_recording, alice):
    base = live_server.url
    recording = make_recording(alice, "Policy check", mix=("alice/csp.wav", wav_bytes(0.3), "audio/wav"))
    share = sandbox.create_share(partner=DRIVE, source=str(recording.source_id), media_bytes=1000)

    # The lockout page (django-axes, after repeated failures; another username, so alice is not locked).
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        visit(page, f"{base}/accounts/login/", "login")
        page.fill("input[name=username]", "mallory")
        page.fill("input[name=password]", f"guess-{attempt}")
        with page.expect_navigation() as nav:
            page.click("button[type=submit]:has-text('Log in')")
    assert nav.value.status == 429
    page.wait_for_timeout(150)
    assert "Too many failed logins" in page.get_by_role("alert").inner_text()
    assert page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor") == "rgb(29, 29, 31)"
    page.screenshot(path=str(ARTIFACTS / "csp-locked-out.png"), full_page=True)
    assert page.violations == []

    log_in(page, base)

    visit(page, f"{base}/", "library")
    visit(page, f"{base}/recordings/{recording.pk}/", "recording")
    visit(page, f"{base}/descript/import/new?" + urlencode({"url": share["share_url"], "title": "Cut"}), "landing")
    assert "Edited version of" in page.locator("#import-target").inner_text()
    visit(page, f"{base}/recordings/999999/", "not-found", status=404)
    assert page.get_by_role("alert").inner_text().startswith("Not found")

    # eid's error page (Descript fails): its Try again form is styled without a style attribute.
    sandbox.add_fault(path=SCHEMA_PATH, status=500, times=2)  # the click retries a 5xx once
    visit(page, f"{base}/recordings/{recording.pk}/", "recording-again")
    with page.expect_navigation() as nav:
        page.get_by_test_id(f"edit-{recording.pk}-mix").click()
    assert nav.value.status == 502
    page.wait_for_timeout(150)
    retry_form = page.locator("form[data-once].inline")
    assert retry_form.evaluate("f => getComputedStyle(f).display") == "inline"
    page.screenshot(path=str(ARTIFACTS / "csp-eid-error.png"), full_page=True)
    assert page.violations == []

    # The button: busy at once (eid.js runs under the policy), then Descript's import page (the
    # sandbox's origin is in form-action, as web.descript.com is in production).
    sandbox.add_fault(path=SCHEMA_PATH, latency_ms=800, times=1)
    visit(page, f"{base}/recordings/{recording.pk}/", "recording-click")
    submits: list[dict] = []
    page.on("console", lambda msg: submits.append(json.loads(msg.text[len("eid-submit "):]))
            if msg.text.startswith("eid-submit ") else None)
    page.evaluate(REPORT_SUBMITS, f"[data-testid='edit-{recording.pk}-mix']")
    page.get_by_test_id(f"edit-{recording.pk}-mix").click()
    page.wait_for_url(f"{sandbox_server.url}/import?nonce=*")
    assert submits == [{"disabled": True, "text": "Opening Descript…", "busy": "true", "prevented": False}]
    assert page.violations == []
    assert page.page_errors == []


def test_the_admin_lives_with_the_policy_too(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-pass-1234")
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "root-pass-1234")
    with page.expect_navigation():
        page.click("input[type=submit]")
    for path in ("/admin/", "/admin/eid/handoff/", "/admin/auth/user/", "/admin/auth/user/add/"):
        response = page.goto(f"{base}{path}")
        assert response.status == 200, path
        page.wait_for_timeout(150)
    assert page.violations == [], page.violations
    assert page.page_errors == []


def test_without_descripts_origin_in_form_action_chromium_blocks_the_click(page, live_server, sandbox_server,
                                                                            sandbox, make_recording, alice,
                                                                            settings):
    """Why form-action lists the import link's origin: Chromium checks a form's redirect against it."""
    recording = make_recording(alice, "Blocked", mix=("alice/blocked.wav", wav_bytes(0.2), "audio/wav"))
    directives = dict(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"], **{"form-action": ["'self'"]})
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/recordings/{recording.pk}/")
    page.get_by_test_id(f"edit-{recording.pk}-mix").click()
    page.wait_for_timeout(2000)
    assert not page.url.startswith(sandbox_server.url)
    assert any("form-action" in json.dumps(v) for v in page.violations), page.console_log
    assert len(sandbox.requests(SCHEMA_PATH)) == 1  # the click reached Descript; the browser stopped
    assert re.search(r"/(recordings/\d+|descript/edit/\d+/mix)/$", page.url)
