"""The click: check the files, sign them, ask Descript for an import link, record the outcome.

`send_to_descript` returns the link or raises HandoffFailed; in both cases a Handoff row says
what happened. Every failure is one kind, and one table (`ANSWERS`) says for each kind what the
operator's row records and what the user is told; the view around it only turns the result
into a redirect or a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from . import storage, webhooks
from .client import DescriptClient, DescriptError, ImportLink
from .conf import eid_settings
from .content import MAX_REF_LENGTH, Content
from .errors import EidError
from .models import Handoff
from .schema import SchemaFile, build_request
from .waiting import hand_back_connections

log = logging.getLogger(__name__)
Outcome = Handoff.Outcome

_NOT_CONNECTED = "This site is not connected to Descript yet. Please try again later."
_STORAGE_DOWN = "Storage is not available right now. Please try again in a moment."
_CANNOT_OPEN = "This recording cannot be opened in Descript"


@dataclass(frozen=True)
class Answer:
    """For one kind of failure: the operator's outcome, and what the user is told."""

    outcome: str
    http_status: int
    headline: str
    message: str  # empty: the failure's own reason, which names the file
    retryable: bool = True


ANSWERS: dict[str, Answer] = {
    # Our own set-up
    "misconfigured": Answer(Outcome.MISCONFIGURED, 503, "Edit in Descript is not available", _NOT_CONNECTED),
    # Storage (eid.storage.StorageError kinds)
    "missing": Answer(Outcome.STORAGE_MISSING, 422, _CANNOT_OPEN, "", retryable=False),
    "empty": Answer(Outcome.STORAGE_MISSING, 422, _CANNOT_OPEN, "", retryable=False),
    "unsupported": Answer(Outcome.INVALID_MEDIA, 422, _CANNOT_OPEN, "", retryable=False),
    "unavailable": Answer(Outcome.STORAGE_ERROR, 503, "Your files could not be prepared", _STORAGE_DOWN),
    "credentials": Answer(Outcome.MISCONFIGURED, 503, "Your files could not be prepared", _STORAGE_DOWN),
    # Descript (eid.client.DescriptError kinds)
    "rate_limited": Answer(Outcome.RATE_LIMITED, 503, "Descript is busy right now",
                           "Too many people are opening files in Descript at the moment. "
                           "Please try again in a minute."),
    "timeout": Answer(Outcome.TIMEOUT, 503, "Descript is taking too long",
                      "Descript did not answer in time. Please try again in a moment."),
    "upstream_error": Answer(Outcome.UPSTREAM_ERROR, 502, "Descript could not open this recording",
                             "Descript had a problem starting the import. Please try again in a moment."),
}

# Descript 4xx answers that mean our set-up is wrong rather than the user's request.
_UPSTREAM_MESSAGES = {
    400: "Descript could not read this recording's files. Our team has been notified.",
    401: "The connection to Descript is not set up correctly. Our team has been notified.",
    403: "The connection to Descript is not set up correctly. Our team has been notified.",
}


class HandoffFailed(EidError):
    """A click that ended without an import link: its row, and what the user is told."""

    Kind = StrEnum("Kind", {name.upper(): name for name in ANSWERS})  # type: ignore[misc]

    def __init__(self, kind: str, handoff: Handoff, answer: Answer, message: str, *,
                 retry_after: int | None = None) -> None:
        super().__init__(kind, message)
        self.handoff = handoff
        self.http_status = answer.http_status
        self.headline = answer.headline
        self.message = message
        self.retryable = answer.retryable
        self.retry_after = retry_after  # seconds, for the Retry-After header of a 503


def _finish(handoff: Handoff, outcome: str, **fields: Any) -> Handoff:
    handoff.outcome = outcome
    handoff.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(handoff, name, value)
    if connection.vendor == "postgresql" and handoff.pk is None and not connection.in_atomic_block:
        _insert_without_waiting_for_disk(handoff)
    else:
        with transaction.atomic():
            handoff.save()
    return handoff


def _insert_without_waiting_for_disk(handoff: Handoff) -> None:
    """INSERT the row in one round trip, its commit not waiting for PostgreSQL's disk sync.

    The row is the operator's record of a click, written on the response path: it need not wait
    for the disk (3-9 ms a commit here, bench/click_load). A crash of PostgreSQL itself could lose
    the last fraction of a second of such rows; nothing else is affected. Both statements go as one
    simple query, which PostgreSQL runs as one implicit transaction, so SET LOCAL holds for the
    INSERT alone (BEGIN, SET, INSERT, COMMIT were four round trips: bench/click_cpu).
    """
    meta = Handoff._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(handoff, add=True), connection) for f in fields]
    sql = (
        "SET LOCAL synchronous_commit TO OFF; "
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        while cursor.description is None and cursor.nextset():  # the SET's result comes first
            pass
        handoff.pk = cursor.fetchone()[0]
    handoff._state.adding = False
    handoff._state.db = connection.alias


def _fail(handoff: Handoff, kind: str, reason: str, *, message: str = "", retry_after: int | None = None,
          **fields: Any) -> HandoffFailed:
    """Record the failure on the row and build what the user is told, from the table."""
    answer = ANSWERS[kind]
    _finish(handoff, answer.outcome, detail=reason[:500], **fields)
    # One line per failed click, naming its row: operators find the rest in the admin.
    log.warning("handoff %s failed: %s (status=%s code=%s)", handoff.pk, kind, fields.get("upstream_status"),
                fields.get("upstream_error_code", ""))
    webhooks.handoff_failed(handoff)  # for endpoints that asked for handoff.failed
    return HandoffFailed(kind, handoff, answer, message or answer.message or reason, retry_after=retry_after)


def record_refused_click(user: Any, ref: str, option: str) -> Handoff:
    """A click on an item or option this user cannot send (not theirs, absent, unsupported)."""
    now = timezone.now()
    return Handoff.objects.create(
        user=user,
        item_ref=ref[:MAX_REF_LENGTH],
        option=option[:16],
        started_at=now,
        finished_at=now,
        outcome=Outcome.NOT_FOUND,
        detail="Answered 404: not this user's item, or no such download option for Descript.",
    )


def send_to_descript(user: Any, content: Content) -> tuple[str, Handoff]:
    handoff = Handoff(
        user=user,
        item_ref=content.ref[:MAX_REF_LENGTH],
        item_title=content.title[:300],
        source_id=content.source_id[:64],
        option=content.option[:16],
        file_count=len(content.files),
        started_at=timezone.now(),
    )
    if not eid_settings.DESCRIPT_PARTNER_DRIVE_ID or not eid_settings.DESCRIPT_API_TOKEN:
        raise _fail(handoff, "misconfigured", "DESCRIPT_API_TOKEN or DESCRIPT_PARTNER_DRIVE_ID unset")

    try:
        ttl = eid_settings.EID_PRESIGN_TTL_SECONDS
        files = [
            SchemaFile(uri=storage.presign_get(f.key, ttl), name=f.name, start_offset=f.start_offset)
            for f in content.files
        ]
    except storage.StorageError as exc:
        raise _fail(handoff, exc.kind, exc.reason) from None
    body = build_request(
        drive_id=eid_settings.DESCRIPT_PARTNER_DRIVE_ID,
        source_id=content.source_id,
        files=files,
        multitrack=content.multitrack,
    )

    # The files are checked while Descript answers (the checks cost as much as the rest of the
    # click); nobody is sent to a link before every check has passed.
    checks = storage.send_checks(f.key for f in content.files)
    hand_back_connections()
    link: ImportLink | None = None
    refused: DescriptError | None = None
    try:
        link = DescriptClient().create_import_url(body)
    except DescriptError as exc:
        refused = exc
    try:
        handoff.total_bytes = sum(info.size for info in storage.finish_checks(checks))
    except storage.StorageError as exc:
        if link is None:
            raise _fail(handoff, exc.kind, exc.reason) from None
        raise _fail(handoff, exc.kind, f"{exc.reason} The import link Descript made was dropped.",
                    message=exc.reason, upstream_latency_ms=link.latency_ms,
                    upstream_attempts=link.attempts) from None
    if refused is not None:
        raise _descript_failure(handoff, refused)
    assert link is not None
    _finish(handoff, Outcome.OK, upstream_latency_ms=link.latency_ms, upstream_attempts=link.attempts)
    return link.url, handoff


def _descript_failure(handoff: Handoff, exc: DescriptError) -> HandoffFailed:
    upstream: dict[str, Any] = dict(upstream_latency_ms=exc.latency_ms, upstream_attempts=exc.attempts,
                                    upstream_status=exc.status, upstream_error_code=exc.code)
    if exc.kind == "rate_limited":
        return _fail(handoff, exc.kind, exc.message, retry_after=max(1, round(exc.retry_after or 60)), **upstream)
    if exc.kind in ANSWERS and exc.kind != "upstream_error":
        return _fail(handoff, exc.kind, exc.message, **upstream)
    return _fail(handoff, "upstream_error", exc.message, message=_UPSTREAM_MESSAGES.get(exc.status or 0, ""),
                 **upstream)
