"""Debian's Chromium driven by Playwright, as every browser test in the suite opens it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# Installed after eid.js's busy-state listener, so it sees the button as that left it.
REPORT_SUBMITS = """(sel) => document.addEventListener("submit", (event) => {
    const b = document.querySelector(sel);
    console.log("eid-submit " + JSON.stringify({disabled: b.disabled, text: b.textContent.trim(),
                                                busy: b.getAttribute("aria-busy"), prevented: event.defaultPrevented}));
})"""
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.log("csp-violation " + JSON.stringify({
    directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber,
    sample: e.sample, page: location.href})));
"""


@contextmanager
def chromium_page(monkeypatch: pytest.MonkeyPatch, *, height: int = 800) -> Iterator[Any]:
    """A fresh page; `page_errors`, `console_log` and `violations` (CSP) collect what it reports.

    Skips the test when Debian's chromium is not installed (a skipped test did not run).
    """
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (`make system-deps` installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop marked running in this thread, so Django's
    # async-unsafe guard would refuse the test's own ORM calls (fixtures, final checks). The
    # site itself runs in live_server's threads, untouched; the variable is unset afterwards.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    p = sync_playwright().start()
    try:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": height})
            context.set_default_timeout(30_000)
            context.add_init_script(REPORT_VIOLATIONS)
            page = context.new_page()
            page.page_errors = []  # uncaught JavaScript errors on any page
            page.console_log = []
            page.violations = []  # securitypolicyviolation events, and Chromium's CSP console errors

            def on_console(msg: Any) -> None:
                page.console_log.append(msg.text)
                if msg.text.startswith("csp-violation "):
                    page.violations.append(json.loads(msg.text[len("csp-violation "):]))
                elif "Content Security Policy" in msg.text:
                    page.violations.append({"console": msg.text})

            page.on("console", on_console)
            page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
            yield page
            # ORM calls made while Playwright's loop runs get their own connections (asgiref
            # keys them by context): close them here, or PostgreSQL cannot drop the test database.
            from django.db import connections

            connections.close_all()
            context.close()
        finally:
            browser.close()
    finally:
        p.stop()
