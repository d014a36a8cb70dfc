"""What an auto-edit and a batch look like from outside: JSON-able, for the live page, the API and the CLI.

Nothing secret goes out: no token, no callback token, no presigned or signed link (Descript's
download_url stays in the ReturnedExport's hidden media links). A project link only opens for
the drive's members; a share link is what Descript made to be shared.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from .models import AutoEdit, AutoEditBatch, JobStep


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def can_cancel(ae: AutoEdit) -> bool:
    # Copying home is not cancelled: the edit is made and paid for, and the copy ends on its own.
    return not ae.is_final and ae.state != AutoEdit.State.COPYING


def describe_step(step: JobStep) -> dict[str, Any]:
    return {
        "kind": step.kind,
        "kind_words": step.get_kind_display(),
        "state": step.state,
        "state_words": step.get_state_display(),
        "job_id": step.job_id or None,
        "progress_label": step.progress_label,
        "progress_percent": step.progress_percent,
        "error": step.error,
        "calls": step.calls,
        "polls": step.polls,
        "callbacks": step.callbacks,
        "started_at": _when(step.submitted_at or step.submit_started_at or step.created_at),
        "finished_at": _when(step.finished_at),
    }


def describe(auto_edit: AutoEdit) -> dict[str, Any]:
    ae = auto_edit
    return {
        "id": str(ae.pk),
        "state": ae.state,
        "state_words": ae.get_state_display(),
        "final": ae.is_final,
        "item_ref": ae.item_ref,
        "item_title": ae.item_title,
        "option": ae.option,
        "prompt": ae.prompt,
        "preset": ae.preset.name if ae.preset_id and ae.preset else None,
        "media_type": ae.media_type,
        "resolution": ae.resolution or None,
        "via": ae.via,
        "steps": [describe_step(step) for step in ae.steps.order_by("created_at", "id")],
        "agent_summary": ae.agent_summary,
        "project_url": ae.project_url or None,
        "share_url": ae.share_url or None,
        "failed_files": dict(ae.failed_files or {}),
        "version_number": ae.version_number,
        "result_ref": ae.result_ref or None,
        "reason": ae.reason,
        "failure_kind": ae.failure_kind or None,
        "can_cancel": can_cancel(ae),
        "can_choose": ae.state == AutoEdit.State.NEEDS_CHOICE,
        "batch": str(ae.batch_id) if ae.batch_id else None,
        "created_at": _when(ae.created_at),
        "started_at": _when(ae.started_at),
        "updated_at": _when(ae.updated_at),
        "finished_at": _when(ae.finished_at),
    }


def batch_counts(batch: AutoEditBatch) -> dict[str, int]:
    """Auto-edits of the batch by state (every state named, zeros included), and `total`."""
    counts = {state: 0 for state in AutoEdit.State.values}
    for row in AutoEdit.objects.filter(batch=batch).values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = row["n"]
    counts["total"] = sum(counts[state] for state in AutoEdit.State.values)
    return counts
