"""A set-up that would only fail when a user clicks is reported by `manage.py check`; logs stay clean."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.checks import run_checks

from eid.logging import RedactSecretsFilter, redact


def check_ids() -> set[str]:
    return {m.id for m in run_checks() if m.id and m.id.startswith("eid.")}


def test_test_settings_only_warn_about_the_sandbox(settings):
    # The suite trusts the sandbox over http, and says so; nothing else is wrong.
    assert check_ids() == {"eid.W003", "eid.W004"}


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"DESCRIPT_API_TOKEN": ""}, "eid.W001"),
        ({"DESCRIPT_PARTNER_DRIVE_ID": "not-a-uuid"}, "eid.E001"),
        ({"EID_PRESIGN_TTL_SECONDS": 8 * 24 * 3600}, "eid.E002"),
        ({"EID_PRESIGN_TTL_SECONDS": 0}, "eid.E002"),
        ({"EID_PRESIGN_TTL_SECONDS": 3600}, "eid.W002"),
    ],
)
def test_misconfiguration_is_reported(settings, changes, expected):
    for name, value in changes.items():
        setattr(settings, name, value)
    assert expected in check_ids()


def test_production_like_settings_pass_cleanly(settings):
    settings.DESCRIPT_SANDBOX_ORIGINS = []
    settings.DESCRIPT_API_BASE = "https://descriptapi.com/v1"
    assert check_ids() == set()


def test_log_records_lose_tokens_and_signatures(settings):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        url = ("https://bucket.s3.amazonaws.com/a.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256"
               "&X-Amz-Credential=AKIAEXAMPLE%2F20261124%2Fus-east-1%2Fs3%2Faws4_request"
               "&X-Amz-Signature=0123456789abcdef&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE")
        logger.warning("fetch %s failed", url)
        logger.warning("sent Authorization: Bearer %s", settings.DESCRIPT_API_TOKEN)
        logger.warning("token was %s", settings.DESCRIPT_API_TOKEN)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    for secret in ("0123456789abcdef", "AKIAEXAMPLE", "FwoGZXIvYXdzEXAMPLE", settings.DESCRIPT_API_TOKEN):
        assert secret not in text
    assert text.count("[redacted]") >= 5
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in text  # what is not secret stays readable


def test_api_keys_and_webhook_secrets_are_redacted_wherever_they_appear():
    import secrets

    from eid.webhooks.models import new_secret

    key = "eid_" + secrets.token_urlsafe(32)  # as eid.api.models.ApiToken.issue makes them
    secret = new_secret()
    text = redact(f"key={key} secret={secret} prefix=eid_A1b2C3d4")
    assert key not in text and secret not in text
    assert "eid_[redacted]" in text and "whsec_[redacted]" in text
    assert "prefix=eid_A1b2C3d4" in text  # the short prefix lists show stays readable


def test_redact_leaves_plain_text_alone():
    assert redact("nothing to see at https://share.descript.com/view/abc") == (
        "nothing to see at https://share.descript.com/view/abc")



def jobs_check_ids() -> set[str]:
    return {m.id for m in run_checks() if m.id and m.id.startswith("eid_jobs.")}


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, set()),
        ({"EID_JOBS_CALLBACK_BASE": "https://studio.example.com"}, set()),
        ({"EID_JOBS_CALLBACK_BASE": "http://127.0.0.1:8000"}, set()),  # the demo's own machine
        ({"EID_JOBS_CALLBACK_BASE": "http://studio.example.com"}, {"eid_jobs.W001"}),
        ({"EID_JOBS_CALLBACK_BASE": "https://studio.example.com/descript"}, {"eid_jobs.E001"}),
        ({"EID_JOBS_CALLBACK_BASE": "studio.example.com"}, {"eid_jobs.E001"}),
        ({"EID_JOBS_POLL_MIN_SECONDS": 1.0}, {"eid_jobs.W002"}),
        ({"EID_JOBS_POLL_MIN_SECONDS": 0}, {"eid_jobs.E002"}),
        ({"EID_JOBS_MAX_IN_FLIGHT": 0}, set()),  # a pause: auto-edits wait queued
        ({"EID_JOBS_MAX_IN_FLIGHT": -1}, {"eid_jobs.E003"}),
        ({"EID_JOBS_BATCH_IN_FLIGHT": 0}, {"eid_jobs.E003"}),
        ({"EID_JOBS_RATE_PER_MINUTE": "lots"}, {"eid_jobs.E003"}),
    ],
)
def test_auto_edit_settings_descript_would_refuse_are_reported(settings, changes, expected):
    settings.DEBUG = False
    for name, value in changes.items():
        setattr(settings, name, value)
    assert jobs_check_ids() == expected
