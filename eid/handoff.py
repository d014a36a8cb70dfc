"""The click: check the files, sign them, ask Descript for an import link, record the outcome.

`send_to_descript` returns the link or raises HandoffFailed; in both cases a Handoff row says
what happened. The view around it only turns the result into a redirect or a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from partner_site.library.models import Recording
from partner_site.library.options import DownloadOption

from . import storage
from .client import DescriptClient, DescriptError
from .models import Handoff
from .schema import SchemaFile, build_request

log = logging.getLogger(__name__)


@dataclass
class HandoffFailed(Exception):
    handoff: Handoff
    http_status: int
    headline: str
    message: str
    retryable: bool = True
    retry_after: int | None = None  # seconds, for the Retry-After header of a 503


_STORAGE_OUTCOMES = {
    "missing": Handoff.Outcome.STORAGE_MISSING,
    "empty": Handoff.Outcome.STORAGE_MISSING,
    "unsupported": Handoff.Outcome.INVALID_MEDIA,
    "unavailable": Handoff.Outcome.STORAGE_ERROR,
    "credentials": Handoff.Outcome.MISCONFIGURED,
}

# Descript 4xx answers that mean our set-up is wrong rather than the user's request.
_UPSTREAM_MESSAGES = {
    400: "Descript could not read this recording's files. Our team has been notified.",
    401: "The connection to Descript is not set up correctly. Our team has been notified.",
    403: "The connection to Descript is not set up correctly. Our team has been notified.",
}


def _finish(handoff: Handoff, outcome: str, **fields) -> Handoff:
    handoff.outcome = outcome
    handoff.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(handoff, name, value)
    handoff.save()
    return handoff


def record_refused_click(user, recording_id: int, option: str) -> Handoff:
    """A click on a recording or option this user cannot send (not theirs, absent, unsupported)."""
    now = timezone.now()
    return Handoff.objects.create(
        user=user,
        recording=Recording.objects.filter(pk=recording_id).first(),
        option=option[:16],
        started_at=now,
        finished_at=now,
        outcome=Handoff.Outcome.NOT_FOUND,
        detail="Answered 404: not this user's recording, or no such download option for Descript.",
    )


def send_to_descript(user, recording: Recording, option: DownloadOption) -> tuple[str, Handoff]:
    handoff = Handoff(
        user=user,
        recording=recording,
        option=option.slug,
        file_count=len(option.files),
        started_at=timezone.now(),
    )
    if not settings.DESCRIPT_PARTNER_DRIVE_ID or not settings.DESCRIPT_API_TOKEN:
        _finish(handoff, Handoff.Outcome.MISCONFIGURED, detail="DESCRIPT_API_TOKEN or DESCRIPT_PARTNER_DRIVE_ID unset")
        raise HandoffFailed(handoff, 503, "Edit in Descript is not available",
                            "This site is not connected to Descript yet. Please try again later.")

    try:
        infos = storage.check_for_descript(f.key for f in option.files)
        handoff.total_bytes = sum(i.size for i in infos)
        ttl = settings.EID_PRESIGN_TTL_SECONDS
        files = [
            SchemaFile(uri=storage.presign_get(f.key, ttl), name=f.display_name, start_offset=f.start_offset)
            for f in option.files
        ]
    except storage.StorageError as exc:
        outcome = _STORAGE_OUTCOMES[exc.kind]
        _finish(handoff, outcome, detail=exc.reason)
        if exc.kind in ("unavailable", "credentials"):
            raise HandoffFailed(handoff, 503, "Your files could not be prepared",
                                "Storage is not available right now. Please try again in a moment.") from None
        raise HandoffFailed(handoff, 422, "This recording cannot be opened in Descript", exc.reason,
                            retryable=False) from None

    body = build_request(
        drive_id=settings.DESCRIPT_PARTNER_DRIVE_ID,
        source_id=str(recording.source_id),
        files=files,
        multitrack=option.is_multitrack,
    )
    try:
        link = DescriptClient().create_import_url(body)
    except DescriptError as exc:
        fields = dict(
            upstream_latency_ms=exc.latency_ms,
            upstream_attempts=exc.attempts,
            upstream_status=exc.status,
            upstream_error_code=exc.code,
            detail=exc.message,
        )
        if exc.kind == "rate_limited":
            _finish(handoff, Handoff.Outcome.RATE_LIMITED, **fields)
            raise HandoffFailed(handoff, 503, "Descript is busy right now",
                                "Too many people are opening files in Descript at the moment. "
                                "Please try again in a minute.",
                                retry_after=max(1, round(exc.retry_after or 60))) from None
        if exc.kind == "timeout":
            _finish(handoff, Handoff.Outcome.TIMEOUT, **fields)
            raise HandoffFailed(handoff, 503, "Descript is taking too long",
                                "Descript did not answer in time. Please try again in a moment.") from None
        if exc.kind == "misconfigured":
            _finish(handoff, Handoff.Outcome.MISCONFIGURED, **fields)
            raise HandoffFailed(handoff, 503, "Edit in Descript is not available",
                                "This site is not connected to Descript yet. Please try again later.") from None
        _finish(handoff, Handoff.Outcome.UPSTREAM_ERROR, **fields)
        log.warning("handoff %s failed: status=%s code=%s", handoff.pk, exc.status, exc.code)
        raise HandoffFailed(handoff, 502, "Descript could not open this recording",
                            _UPSTREAM_MESSAGES.get(exc.status or 0,
                                                   "Descript had a problem starting the import. "
                                                   "Please try again in a moment.")) from None

    _finish(handoff, Handoff.Outcome.OK, upstream_latency_ms=link.latency_ms, upstream_attempts=link.attempts)
    return link.url, handoff
