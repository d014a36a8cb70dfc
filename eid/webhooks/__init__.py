"""Webhooks out: signed POSTs to a partner pipeline's endpoints when something happens.

Install as the app "eid.webhooks" (after "eid"); without it the hooks below do nothing.

Events (the hooks eid calls, each in the transaction that records what happened):

    version.created          an edit came back and landed as a new version (eid.ingest)
    returned_export.failed   an import from Descript failed (eid.ingest.Lease.fail)
    handoff.failed           a click on "Edit in Descript" failed (eid.handoff), for endpoints that ask
    auto_edit.completed      an automatic edit landed as a new version (eid.jobs, when installed)
    auto_edit.failed         an automatic edit failed or was cancelled

A hook writes one WebhookDelivery row per endpoint that wants the event (the outbox: the rows
commit or roll back with what they describe) and nudges a worker once the transaction commits;
nothing is sent in the request or task that caused the event. The worker (eid.webhooks.tasks)
signs each delivery per Standard Webhooks (eid.webhooks.signing) and sends it under the same
address rules as share pages (eid.webhooks.delivery), retrying on a schedule.

The modules: models, signing, events (payloads, the outbox), delivery (one attempt, the
schedule, replay), tasks (the nudge, the sweep of lost nudges), admin, api, checks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.apps import apps as django_apps  # (not `apps`: the submodule eid.webhooks.apps would shadow it)
from django.db import transaction

if TYPE_CHECKING:
    from ..content import ReturnedFile, StoredEdit
    from ..jobs.models import AutoEdit
    from ..models import Handoff, ReturnedExport

log = logging.getLogger(__name__)


def _installed() -> bool:
    return django_apps.is_installed("eid.webhooks")


def _safely(what: str, emit: Any) -> None:
    """Run `emit` in a savepoint: a failing webhook hook must never undo the event it reports."""
    try:
        with transaction.atomic():
            emit()
    except Exception:  # noqa: BLE001 - the version, failure or click is recorded; the webhook is not
        log.exception("webhooks: could not record the %s event", what)


def version_created(export: ReturnedExport, stored: StoredEdit, files: tuple[ReturnedFile, ...],
                    duration_seconds: float | None) -> None:
    """An import landed as a new version (called inside the transaction that marks it done)."""
    if not _installed():
        return
    from . import events

    _safely("version.created", lambda: events.version_created(export, stored, files, duration_seconds))


def returned_export_failed(export: ReturnedExport) -> None:
    """An import failed (its row already says so)."""
    if not _installed():
        return
    from . import events

    _safely("returned_export.failed", lambda: events.returned_export_failed(export))


def handoff_failed(handoff: Handoff) -> None:
    """A click failed (its Handoff row already says how)."""
    if not _installed():
        return
    from . import events

    _safely("handoff.failed", lambda: events.handoff_failed(handoff))


def auto_edit_finished(sender: Any, auto_edit: AutoEdit, **kwargs: Any) -> None:
    """eid.jobs.signals.auto_edit_finished (sent after the final state commits): connected by
    WebhooksConfig.ready() only when eid.jobs is installed."""
    if not _installed():
        return
    from . import events

    if auto_edit.state == "done":
        _safely("auto_edit.completed", lambda: events.auto_edit_completed(auto_edit))
    elif auto_edit.state in ("failed", "cancelled"):
        _safely("auto_edit.failed", lambda: events.auto_edit_failed(auto_edit))
