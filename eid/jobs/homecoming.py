"""Bringing a published auto-edit home, through the same copy as the way back.

A publish job's result is a share page and a download link: exactly what a person brings back
with "Send to partner". So the auto-edit writes the way back's own row (eid.models.ReturnedExport,
matched to its recording as `own_source`) and the way back's worker waits for the render, copies
the media and publishes the version, exactly once, with its webhooks. The auto-edit stays
`copying` until that import ends; eid.ingest's `export_finished` signal nudges it then.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from ..conf import eid_settings
from ..ingest import export_finished
from ..models import ReturnedExport
from ..returns import ReturnRefused, clean_share_url
from .lease import Lease, finish
from .models import AutoEdit, MediaType

log = logging.getLogger(__name__)

State = AutoEdit.State


def copy_check_delay() -> float:
    """How soon a copying auto-edit looks at its import again, should the signal be missed."""
    return max(5.0, float(eid_settings.EID_EXPORT_POLL_SECONDS))


def bring_home(lease: Lease, *, share_url: str, download_url: str, title: str) -> None:
    """Write the import of the published edit and move the auto-edit to `copying`.

    ReturnRefused when Descript's share link is not one the way back accepts.
    """
    ae = lease.auto_edit
    link = clean_share_url(share_url)
    kind = "video" if ae.media_type == MediaType.VIDEO else "audio"
    now = timezone.now()
    defaults = dict(
        share_url=link.url, title=title[:300], match=ReturnedExport.Match.OWN_SOURCE,
        partner_tag=str(eid_settings.DESCRIPT_PARTNER_DRIVE_ID)[:200], source_tag=ae.source_id[:200],
        target_ref=ae.item_ref, target_title=ae.item_title[:300],
        # Descript's signed link: hidden on the row, read only by the worker (eid.ingest).
        media_links={kind: download_url}, next_check_at=now, waiting_since=now,
    )
    with transaction.atomic():
        export, created = ReturnedExport.objects.get_or_create(user_id=ae.user_id, share_id=link.share_id,
                                                               defaults=defaults)
        lease.update(state=State.COPYING, export=export, share_url=link.url,
                     next_action_at=now + timedelta(seconds=copy_check_delay()))
        if created:
            from ..tasks import enqueue_advance

            transaction.on_commit(lambda: enqueue_advance(export.pk))
    log.info("auto-edit %s: bringing the edit home (import %s)", ae.pk, export.pk)


def check_copy(lease: Lease) -> Any:
    """A copying auto-edit: done or failed with its import, else look again later (returns when)."""
    ae = lease.auto_edit
    export = ReturnedExport.objects.filter(pk=ae.export_id).first() if ae.export_id else None
    if export is None:
        finish(ae, State.FAILED, lease=lease, failure_kind="copy",
               reason="The import of the edit was removed before it finished. Please start the edit again.")
        return None
    if export.state == ReturnedExport.State.DONE:
        finish(ae, State.DONE, lease=lease, result_ref=export.result_ref, version_number=export.version_number)
        return None
    if export.state == ReturnedExport.State.FAILED:
        finish(ae, State.FAILED, lease=lease, failure_kind="copy",
               reason=f"Descript made the edit, but bringing it home failed: {export.reason}")
        return None
    again = timezone.now() + timedelta(seconds=copy_check_delay())
    lease.release(next_action_at=again)
    return again


@receiver(export_finished)
def _export_finished(sender: Any, export: ReturnedExport, **kwargs: Any) -> None:
    from .tasks import nudge

    for ae_id in AutoEdit.objects.filter(export_id=export.pk, state=State.COPYING).values_list("pk", flat=True):
        nudge(ae_id)


__all__ = ["ReturnRefused", "bring_home", "check_copy", "copy_check_delay"]
