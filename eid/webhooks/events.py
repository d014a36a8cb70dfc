"""Event payloads, and the outbox: one delivery row per endpoint that wants an event.

Every payload has the Standard Webhooks shape::

    {"type": "version.created", "timestamp": "2026-11-25T10:00:00.123456Z", "data": {...}}

`data.item` names the partner's item by the adapter's id (`ref`) and title, plus whatever the
adapter's optional `describe_item(ref)` adds (the demo library: `external_id`). `data.owner` is
the username of the user whose item it is. The body is serialised once, here, and stored: every
attempt and every replay sends the same bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..content import get_adapter
from .models import EVENT_TYPES, EventType, WebhookDelivery, WebhookEndpoint, new_webhook_id

if TYPE_CHECKING:
    from ..content import ReturnedFile, StoredEdit
    from ..jobs.models import AutoEdit
    from ..models import Handoff, ReturnedExport

log = logging.getLogger(__name__)


def _iso(moment: Any) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def describe_item(ref: str, title: str = "") -> dict[str, Any]:
    """The item as payloads name it: the adapter's id, its title, and what describe_item adds."""
    extra: dict[str, Any] = {}
    if ref:
        try:
            extra = dict(get_adapter().describe_item(ref) or {})
        except Exception:  # noqa: BLE001 - a partner's bug must not lose the event
            log.exception("webhooks: describe_item(%r) failed; sending the ref alone", ref)
    return {**extra, "ref": ref, "title": title or extra.get("title", "")}


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def endpoints_for(event_type: str, owner: Any) -> list[WebhookEndpoint]:
    """Enabled endpoints that want `event_type` and may hear about `owner`'s items."""
    scope = Q(owner__isnull=True)
    if owner is not None:
        scope |= Q(owner=owner)
    candidates = WebhookEndpoint.objects.filter(scope, enabled=True).only("id", "event_types", "enabled")
    # Filtered here, not in SQL: SQLite has no JSON containment lookup, and endpoints are few.
    return [endpoint for endpoint in candidates if endpoint.wants(event_type)]


def emit(event_type: str, data: dict[str, Any], *, owner: Any) -> list[int]:
    """Write a delivery per interested endpoint; nudge the worker when the transaction commits.

    Returns the new deliveries' ids (none when no endpoint wants the event).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = endpoints_for(event_type, owner)
    if not endpoints:
        return []
    now = timezone.now()
    body = json.dumps({"type": event_type, "timestamp": _iso(now), "data": data},
                      cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    webhook_id = new_webhook_id()
    rows = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, event_type=event_type, webhook_id=webhook_id, payload=body,
                        next_attempt_at=now)
        for endpoint in endpoints
    )
    ids = [row.pk for row in rows]
    if None in ids:  # a database that does not return keys from bulk inserts
        ids = list(WebhookDelivery.objects.filter(webhook_id=webhook_id).values_list("pk", flat=True))
    transaction.on_commit(lambda: _nudge(ids))
    return ids


def _nudge(ids: Iterable[int]) -> None:
    from .tasks import enqueue_delivery

    for delivery_id in ids:
        try:
            enqueue_delivery(delivery_id)
        except Exception:  # noqa: BLE001 - the row stays pending; the sweep nudges it later
            log.exception("webhooks: could not enqueue delivery %s; the sweep will", delivery_id)


# --- the events ----------------------------------------------------------------------------------


def version_created(export: ReturnedExport, stored: StoredEdit, files: tuple[ReturnedFile, ...],
                    duration_seconds: float | None) -> list[int]:
    data = {
        "item": describe_item(str(stored.ref), stored.title),
        "owner": _username(export.user),
        "version": stored.version,
        "title": export.title,
        "duration_seconds": duration_seconds,
        "files": [{"kind": f.kind, "key": f.key, "size": f.size, "content_type": f.content_type} for f in files],
        "import": {"id": str(export.pk), "share_id": export.share_id, "match": export.match},
    }
    return emit(EventType.VERSION_CREATED, data, owner=export.user)


def returned_export_failed(export: ReturnedExport) -> list[int]:
    data = {
        "item": describe_item(export.target_ref, export.target_title) if export.target_ref else None,
        "owner": _username(export.user),
        "import": {
            "id": str(export.pk),
            "share_id": export.share_id,
            "title": export.title,
            "match": export.match,
            "reason": export.reason,
            "retryable": export.retryable,
            "created_at": _iso(export.created_at),
            "failed_at": _iso(export.finished_at),
        },
    }
    return emit(EventType.RETURNED_EXPORT_FAILED, data, owner=export.user)


def handoff_failed(handoff: Handoff) -> list[int]:
    data = {
        "item": describe_item(handoff.item_ref, handoff.item_title),
        "owner": _username(handoff.user),
        "handoff": {
            "id": handoff.pk,
            "option": handoff.option,
            "outcome": handoff.outcome,
            "detail": handoff.detail,
            "upstream_status": handoff.upstream_status,
            "upstream_error_code": handoff.upstream_error_code,
            "started_at": _iso(handoff.started_at),
        },
    }
    return emit(EventType.HANDOFF_FAILED, data, owner=handoff.user)


def _auto_edit_data(ae: AutoEdit) -> dict[str, Any]:
    """What both auto-edit events say: which item, what was asked, where it went at Descript."""
    return {
        "auto_edit": {
            "id": str(ae.pk),
            "state": ae.state,
            "prompt": ae.prompt,
            "preset": ae.preset.name if ae.preset_id and ae.preset else None,
            "media_type": ae.media_type,
            "resolution": ae.resolution or None,
            "via": ae.via,
            "created_at": _iso(ae.created_at),
            "finished_at": _iso(ae.finished_at),
        },
        "item": describe_item(ae.item_ref, ae.item_title),
        "owner": _username(ae.user),
        "batch": str(ae.batch_id) if ae.batch_id else None,
        # Descript's own pages (they open for the drive's members only): never a signed media link.
        "project_url": ae.project_url or None,
        "share_url": ae.share_url or None,
    }


def auto_edit_completed(ae: AutoEdit) -> list[int]:
    data = {
        **_auto_edit_data(ae),
        "version": ae.version_number,
        "result_ref": ae.result_ref or None,  # the item the version belongs to (the recording's ref)
        "agent_summary": ae.agent_summary,
    }
    return emit(EventType.AUTO_EDIT_COMPLETED, data, owner=ae.user)


def auto_edit_failed(ae: AutoEdit) -> list[int]:
    """Failed or cancelled (`auto_edit.state` tells which): every auto-edit a pipeline started ends in an event."""
    data = {
        **_auto_edit_data(ae),
        "failure": {"kind": ae.failure_kind or ae.state, "reason": ae.reason,
                    "failed_files": dict(ae.failed_files or {})},
        "agent_summary": ae.agent_summary or None,
    }
    return emit(EventType.AUTO_EDIT_FAILED, data, owner=ae.user)
