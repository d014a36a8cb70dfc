"""System checks: catch a set-up that would only fail when a user clicks."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import eid_settings
from .content import get_adapter
from .storage import MAX_PRESIGN_SECONDS


@register(Tags.compatibility, deploy=False)
def descript_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    drive = eid_settings.DESCRIPT_PARTNER_DRIVE_ID
    if not drive or not eid_settings.DESCRIPT_API_TOKEN:
        problems.append(Warning(
            "DESCRIPT_API_TOKEN or DESCRIPT_PARTNER_DRIVE_ID is not set: Edit in Descript answers 503.",
            id="eid.W001",
        ))
    elif not _is_uuid(drive):
        problems.append(Error("DESCRIPT_PARTNER_DRIVE_ID must be a UUID.", id="eid.E001"))
    ttl = eid_settings.EID_PRESIGN_TTL_SECONDS
    if not 0 < ttl <= MAX_PRESIGN_SECONDS:
        problems.append(Error("EID_PRESIGN_TTL_SECONDS must be between 1 and 604800 (7 days).", id="eid.E002"))
    elif ttl < 12 * 3600:
        problems.append(Warning(
            "EID_PRESIGN_TTL_SECONDS is under 12 hours; Descript retries fetches for longer (48 h advised).",
            id="eid.W002",
        ))
    if eid_settings.DESCRIPT_SANDBOX_ORIGINS and not settings.DEBUG:
        problems.append(Warning(
            "DESCRIPT_SANDBOX_ORIGINS is set: links to those origins are trusted over http. "
            "Never set it in production.",
            id="eid.W003",
        ))
    try:
        get_adapter()
    except ImproperlyConfigured as exc:
        problems.append(Error(str(exc), hint="See eid.content for the adapter a site writes over its content.",
                              id="eid.E003"))
    if not eid_settings.DESCRIPT_API_BASE.startswith("https://") and not settings.DEBUG:
        problems.append(Warning("DESCRIPT_API_BASE is not https.", id="eid.W004"))
    return problems


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
