"""System checks for the auto-edits' settings: a set-up Descript would refuse or punish is reported
by `manage.py check`, not found by a batch overnight."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..conf import eid_settings

DESCRIPT_POLL_FLOOR = 3.0  # Descript: never more often than every 3 s for one job
LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # the demo and the tests: Descript's stand-in on this machine


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


@register(Tags.compatibility)
def jobs_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    base = str(eid_settings.EID_JOBS_CALLBACK_BASE or "")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            problems.append(Error("EID_JOBS_CALLBACK_BASE must be the site's origin, e.g. https://studio.example.com.",
                                  id="eid_jobs.E001"))
        elif parts.scheme != "https" and parts.hostname not in LOOPBACK and not settings.DEBUG:
            problems.append(Warning(
                "EID_JOBS_CALLBACK_BASE is not https: Descript's callbacks, and the token in each callback "
                "address, would cross the network in clear.", id="eid_jobs.W001"))
    floor = _seconds(eid_settings.EID_JOBS_POLL_MIN_SECONDS)
    if floor is None or floor <= 0:
        problems.append(Error("EID_JOBS_POLL_MIN_SECONDS must be a number of seconds above 0.", id="eid_jobs.E002"))
    elif floor < DESCRIPT_POLL_FLOOR and not settings.DEBUG:
        problems.append(Warning(
            f"EID_JOBS_POLL_MIN_SECONDS is {floor:g}: Descript asks for at least {DESCRIPT_POLL_FLOOR:g} s between "
            "two polls of one job.", id="eid_jobs.W002"))
    # MAX_IN_FLIGHT may be 0: nothing goes to Descript (auto-edits wait queued), a pause.
    bounds = (("EID_JOBS_RATE_PER_MINUTE", 1), ("EID_JOBS_MAX_IN_FLIGHT", 0), ("EID_JOBS_BATCH_IN_FLIGHT", 1))
    for name, least in bounds:
        value = getattr(eid_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            problems.append(Error(f"{name} must be a whole number of {least} or more.", id="eid_jobs.E003"))
    return problems
