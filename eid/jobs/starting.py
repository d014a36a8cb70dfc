"""Starting auto-edits: one recording, or a batch of them. Every way in (page, API, admin, CLI) comes here.

What is checked here is what can be known without Descript: the item is the user's, one of its
download options is importable, there is a prompt, the integration is configured, and the item
is not being auto-edited already. The files themselves are checked in storage when the import is
submitted (eid.jobs.machine), where a missing one fails the auto-edit in plain words.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import eid_settings
from ..content import MAX_REF_LENGTH, Content, get_adapter
from ..errors import EidError
from .models import AutoEdit, AutoEditBatch, MediaType, PromptPreset

log = logging.getLogger(__name__)

PROMPT_MAX = 4000
RESOLUTIONS = {"720p": "720p", "1080p": "1080p", "4k": "4K"}


class AutoEditRefused(EidError):
    """An auto-edit that will not start. `reason` is for the person who asked; `http_status` for HTTP."""

    class Kind(StrEnum):
        NOT_FOUND = "not_found"  # no such item for this user (someone else's looks the same)
        NOT_IMPORTABLE = "not_importable"  # no download option Descript can import
        NO_PROMPT = "no_prompt"
        TOO_LONG = "too_long"
        INVALID = "invalid"  # a media type or resolution Descript does not publish
        NOT_CONFIGURED = "not_configured"  # no Descript token or drive
        ALREADY_RUNNING = "already_running"

    _STATUS = {"not_found": 404, "not_importable": 422, "no_prompt": 400, "too_long": 400, "invalid": 400,
               "not_configured": 503, "already_running": 409}

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(kind, reason)
        self.http_status = self._STATUS[str(self.kind)]


def _configured() -> None:
    if not eid_settings.DESCRIPT_API_TOKEN or not eid_settings.DESCRIPT_PARTNER_DRIVE_ID:
        raise AutoEditRefused("not_configured", "Automatic edits are not set up on this site yet. Please try again later.")


def _what_to_do(prompt: str | None, preset: PromptPreset | None, media_type: str | None,
                resolution: str | None) -> tuple[str, str, str]:
    """(prompt, media type, resolution), from the preset and what was given; refused in plain words."""
    text = (prompt if prompt is not None and prompt.strip() else (preset.prompt if preset else "")) or ""
    text = text.strip()
    if not text:
        raise AutoEditRefused("no_prompt", "Choose a preset or tell Underlord what to do.")
    if len(text) > PROMPT_MAX:
        raise AutoEditRefused("too_long", f"The instructions are too long ({len(text)} characters; at most {PROMPT_MAX}).")
    kind = (media_type or (preset.media_type if preset else "") or MediaType.AUDIO).strip().lower()
    chosen = {"audio": MediaType.AUDIO, "video": MediaType.VIDEO}.get(kind)
    if chosen is None:
        raise AutoEditRefused("invalid", "Descript publishes audio or video: choose one of them.")
    res = (resolution if resolution is not None else (preset.resolution if preset else "")) or ""
    res = res.strip()
    if chosen == MediaType.AUDIO:
        res = ""
    elif res:
        if res.lower() not in RESOLUTIONS:
            raise AutoEditRefused("invalid", "Choose a resolution of 720p, 1080p or 4K (or Descript's default).")
        res = RESOLUTIONS[res.lower()]
    return text, str(chosen), res


def _content(user: Any, item_ref: str, option: str | None) -> Content:
    adapter = get_adapter()
    ref = (item_ref or "").strip()
    item = adapter.load_item(user, ref) if 0 < len(ref) <= MAX_REF_LENGTH else None
    if item is None:
        raise AutoEditRefused("not_found", "There is no such recording.")
    if option:
        content = adapter.content_for(item, option)
        if content is None:
            raise AutoEditRefused("not_found", f"This recording has no download option “{option[:16]}”.")
        if not content.importable:
            raise AutoEditRefused("not_importable", "Descript cannot import the files of this download option.")
        return content
    candidates = [c for c in (adapter.content_for(item, name) for name in adapter.option_names(item))
                  if c is not None and c.importable]
    if not candidates:
        raise AutoEditRefused("not_importable", "This recording has no files Descript can import.")
    return next((c for c in candidates if c.multitrack), candidates[0])


@dataclass(frozen=True)
class BatchItem:
    """One recording of a batch: whose it is, its id (the adapter's `ref`) and, optionally, which
    download option to send (None: the multitrack one if there is one, else the first importable)."""

    user: Any
    ref: str
    option: str | None = None


BatchItemLike = BatchItem | tuple[Any, str] | tuple[Any, str, str | None]


def batch_item(item: BatchItemLike) -> BatchItem:
    """A BatchItem from itself, a (user, ref) pair or a (user, ref, option) triple."""
    if isinstance(item, BatchItem):
        return item
    if len(item) == 2:
        return BatchItem(item[0], item[1])
    return BatchItem(item[0], item[1], item[2] or None)


def _project_name(title: str, auto_edit_id: Any) -> str:
    # Unique per auto-edit: a lost import is found again by this name (GET /jobs by project).
    return f"{(title or 'Recording')[:250]} · auto-edit {str(auto_edit_id)[:8]}"


def start_auto_edit(*, user: Any, item_ref: str, option: str | None = None, prompt: str | None = None,
                    preset: PromptPreset | None = None, media_type: str | None = None,
                    resolution: str | None = None, via: str, requested_by: str = "",
                    batch: AutoEditBatch | None = None) -> AutoEdit:
    """Check, record (queued) and nudge a worker once the caller's transaction commits."""
    _configured()
    text, kind, res = _what_to_do(prompt, preset, media_type, resolution)
    content = _content(user, item_ref, option)
    ae = AutoEdit(user=user, item_ref=content.ref[:64], item_title=content.title[:300], option=content.option[:16],
                  source_id=content.source_id[:64], prompt=text, preset=preset, media_type=kind, resolution=res,
                  via=via, requested_by=requested_by[:200], batch=batch, next_action_at=timezone.now())
    ae.project_name = _project_name(content.title, ae.pk)
    try:
        with transaction.atomic():
            ae.save(force_insert=True)
    except IntegrityError:
        if AutoEdit.objects.active().filter(user=user, item_ref=ae.item_ref).exists():
            raise AutoEditRefused("already_running", "An automatic edit of this recording is already running.") from None
        raise
    from .tasks import enqueue_advance

    transaction.on_commit(lambda: enqueue_advance(ae.pk))
    log.info("auto-edit %s of item %s started (%s)", ae.pk, ae.item_ref, via)
    return ae


def start_batch(*, items: Iterable[BatchItemLike], prompt: str | None = None, preset: PromptPreset | None = None,
                media_type: str | None = None, resolution: str | None = None, via: str, requested_by: str = "",
                name: str = "", max_in_flight: int | None = None,
                ) -> tuple[AutoEditBatch, list[tuple[str, AutoEdit | AutoEditRefused]]]:
    """A batch and one auto-edit per item; a refused item does not stop the others.

    An item is a BatchItem, a (user, ref) pair or a (user, ref, option) triple; the outcomes are
    (ref, auto-edit or refusal), in the items' order.

    What the whole batch shares (a prompt, the set-up) is refused for the batch, before anything
    is written.
    """
    _configured()
    text, kind, res = _what_to_do(prompt, preset, media_type, resolution)
    limit = int(eid_settings.EID_JOBS_MAX_IN_FLIGHT)
    wanted = int(max_in_flight or eid_settings.EID_JOBS_BATCH_IN_FLIGHT)
    batch = AutoEditBatch.objects.create(name=name[:200], via=via, requested_by=requested_by[:200], prompt=text,
                                         preset=preset, media_type=kind, resolution=res,
                                         max_in_flight=max(1, min(wanted, limit)))
    outcomes: list[tuple[str, AutoEdit | AutoEditRefused]] = []
    for item in map(batch_item, items):
        try:
            outcome: AutoEdit | AutoEditRefused = start_auto_edit(
                user=item.user, item_ref=item.ref, option=item.option, prompt=text, preset=preset, media_type=kind,
                resolution=res, via=via, requested_by=requested_by, batch=batch)
        except AutoEditRefused as refusal:
            outcome = refusal
        outcomes.append((item.ref, outcome))
    if not any(isinstance(o, AutoEdit) for _, o in outcomes):
        AutoEditBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())
    return batch, outcomes
