"""The auto-edit state machine: the rows are the truth, a task (eid.jobs.tasks) only nudges `advance`.

    queued --(a free slot)--> importing --> editing --> publishing --> copying --> done
                                 \\--> needs_choice (partial import) --go_on--> editing
    any state before copying --> failed | cancelled

A run takes the auto-edit's lease (eid.jobs.lease), acts on its state until it has to wait, and
says when to run again. Each Descript job is a JobStep driven by eid.jobs.steps (submitted once,
reconciled after a lost answer, polled on Descript's cadence). Copying home is the way back's
own import (eid.jobs.homecoming).

Concurrency: at most EID_JOBS_MAX_IN_FLIGHT auto-edits are at Descript (importing, editing or
publishing) at once, and at most its `max_in_flight` of one batch; the others wait queued and the
oldest are nudged when one leaves Descript.

The public service functions (what the pages, the API, the admin and the CLI call) are
re-exported here: start_auto_edit, start_batch, cancel, go_on, stop, describe, batch_counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from django.db import transaction
from django.utils import timezone

from .. import storage
from ..conf import eid_settings
from ..content import get_adapter
from .client import Job, JobCreated, JobsClient, JobsError, composition, import_body, multitrack, url_media
from .control import being_watched, cancel, go_on, stop
from .homecoming import ReturnRefused, bring_home, check_copy
from .lease import Lease, LeaseLost, finish
from .models import AutoEdit, DescriptBudget, JobStep, digest
from .starting import AutoEditRefused, BatchItem, start_auto_edit, start_batch
from .status import batch_counts, describe
from .steps import (CONTINUE, Next, cancel_quietly, fail, later, live_step, new_step, open_step, poll, reconcile,
                    stopped_step, submit, words)

log = logging.getLogger(__name__)

State = AutoEdit.State
AT_DESCRIPT = (State.IMPORTING, State.EDITING, State.PUBLISHING)
# A queued auto-edit with no free slot looks again this often (a slot coming free nudges sooner).
QUEUE_RECHECK_SECONDS = 60.0
# A run that nudges itself forward at most this many times before going back to the queue.
MAX_MOVES_PER_RUN = 8
EARLY = timedelta(milliseconds=50)

__all__ = ["AT_DESCRIPT", "AutoEditRefused", "BatchItem", "advance", "batch_counts", "being_watched", "cancel",
           "describe", "go_on", "start_auto_edit", "start_batch", "stop"]


def advance(auto_edit_id: Any) -> datetime | None:
    """Move one auto-edit on as far as it goes now; when to run again (None: nothing to schedule)."""
    lease = Lease.take(auto_edit_id)
    if lease is None:
        return None
    ae = lease.auto_edit
    now = timezone.now()
    if ae.next_action_at and ae.next_action_at > now + EARLY and not ae.cancel_requested_at:
        lease.release()  # an early or repeated nudge: the task for that time is already queued
        return None
    try:
        lease.update(next_action_at=None)  # being worked on: a nudge meanwhile sets it again
        return _run(lease)
    except LeaseLost:
        return None
    except Exception:  # noqa: BLE001 - a bug must still leave a row an operator can read
        log.exception("auto-edit %s: unexpected error", auto_edit_id)
        step = open_step(lease.auto_edit)
        if step is not None:
            cancel_quietly(step)
        fail(lease, step, "Something went wrong on our side while running the automatic edit. Please try again.",
             kind="internal")
        return None


def _run(lease: Lease) -> datetime | None:
    handlers: dict[str, Callable[[Lease], Next]] = {
        State.QUEUED: _admit, State.IMPORTING: _importing, State.EDITING: _editing,
        State.PUBLISHING: _publishing, State.COPYING: check_copy, State.NEEDS_CHOICE: _waiting_for_choice,
    }
    for _ in range(MAX_MOVES_PER_RUN):
        ae = lease.refresh()
        if ae.cancel_requested_at and ae.state != State.COPYING:
            outcome = _carry_out_cancel(lease)
        else:
            outcome = handlers[ae.state](lease)
        if outcome != CONTINUE:
            return outcome if isinstance(outcome, datetime) else None
    return later(lease, timezone.now())


# --- queued: wait for a slot ------------------------------------------------------------------


def _admission_lock() -> None:
    """Serialise admissions (PostgreSQL: lock the token's budget row; SQLite's writes are serial anyway)."""
    key = digest(str(eid_settings.DESCRIPT_API_TOKEN or "-"))
    DescriptBudget.objects.get_or_create(token_digest=key)
    DescriptBudget.objects.select_for_update().filter(token_digest=key).first()


def _admit(lease: Lease) -> Next:
    ae = lease.auto_edit
    now = timezone.now()
    with transaction.atomic():
        _admission_lock()
        busy = AutoEdit.objects.filter(state__in=AT_DESCRIPT)
        full = busy.count() >= int(eid_settings.EID_JOBS_MAX_IN_FLIGHT)
        if not full and ae.batch_id is not None:
            limit = ae.batch.max_in_flight if ae.batch else int(eid_settings.EID_JOBS_BATCH_IN_FLIGHT)
            full = busy.filter(batch_id=ae.batch_id).count() >= max(1, limit)
        if not full:
            lease.update(state=State.IMPORTING, started_at=now)
    if full:
        return later(lease, now + timedelta(seconds=QUEUE_RECHECK_SECONDS))
    log.info("auto-edit %s: left the queue for Descript", ae.pk)
    return CONTINUE


def _waiting_for_choice(lease: Lease) -> Next:
    lease.release()
    return None


# --- one Descript job per state -----------------------------------------------------------------


def _drive(lease: Lease, kind: str, prepare: Callable[[str | None], Callable[[JobsClient], JobCreated]],
           on_stopped: Callable[[Lease, JobStep, Job], Next]) -> Next:
    step = live_step(lease.auto_edit, kind) or new_step(lease.auto_edit, kind)
    if step.job_id:
        return poll(lease, step, on_stopped)
    if step.submit_started_at is not None:
        return reconcile(lease, step, prepare)
    return submit(lease, step, prepare)


def _importing(lease: Lease) -> Next:
    try:
        return _drive(lease, JobStep.Kind.IMPORT, lambda cb: _prepare_import(lease.auto_edit, cb), _import_stopped)
    except storage.StorageError as exc:
        if exc.kind == "unavailable":
            return later(lease, timezone.now() + timedelta(seconds=QUEUE_RECHECK_SECONDS))
        fail(lease, live_step(lease.auto_edit, JobStep.Kind.IMPORT), exc.reason, kind=f"storage_{exc.kind}")
        return None
    except _Gone as exc:
        fail(lease, live_step(lease.auto_edit, JobStep.Kind.IMPORT), str(exc), kind="not_found")
        return None


class _Gone(Exception):
    """The recording (or its download option) is no longer there for its owner."""


def _unique(name: str, taken: set[str]) -> str:
    name = (name or "file").strip().lstrip("/") or "file"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    taken.add(candidate)
    return candidate


def _media_names(files: Any) -> tuple[list[str], str | None]:
    """Each file's display name in the import (made unique), and the multitrack sequence's name when several."""
    taken: set[str] = set()
    names = [_unique(f.name, taken) for f in files]
    return names, (_unique("All tracks", taken) if len(names) > 1 else None)


def _our_sequence(ae: AutoEdit) -> str | None:
    """The name this auto-edit gave its multitrack sequence (it fails with any of its tracks)."""
    adapter = get_adapter()
    item = adapter.load_item(ae.user, ae.item_ref)
    content = adapter.content_for(item, ae.option) if item is not None else None
    return _media_names(content.files)[1] if content is not None else None


def _prepare_import(ae: AutoEdit, callback: str | None) -> Callable[[JobsClient], JobCreated]:
    """The import's body: each file presigned for 48 hours, a multitrack sequence for several, one composition."""
    adapter = get_adapter()
    item = adapter.load_item(ae.user, ae.item_ref)
    content = adapter.content_for(item, ae.option) if item is not None else None
    if content is None or not content.files:
        raise _Gone("The recording (or its files) is no longer there.")
    storage.check_for_descript(f.key for f in content.files)  # StorageError names the file
    ttl = int(eid_settings.EID_PRESIGN_TTL_SECONDS)
    language = str(eid_settings.EID_JOBS_LANGUAGE or "") or None
    names, sequence = _media_names(content.files)
    media: dict[str, dict[str, Any]] = {
        name: url_media(storage.presign_get(f.key, ttl), language=language) for name, f in zip(names, content.files)}
    clip = names[0]
    if sequence:
        media[sequence] = multitrack([(name, float(f.start_offset or 0.0)) for name, f in zip(names, content.files)])
        clip = sequence
    body = import_body(
        project_name=ae.project_name, media=media,
        compositions=[composition((ae.item_title or "Recording")[:200], [clip])],
        folder_name=str(eid_settings.EID_JOBS_FOLDER or "") or None,
        team_access=str(eid_settings.EID_JOBS_TEAM_ACCESS or "") or None,
        callback_url=callback)
    return lambda jobs: jobs.import_project_media(body)


def _safe_result(job: Job) -> dict[str, Any]:
    """The result people may see: no signed download link."""
    if job.result is None:
        return {}
    return job.result.model_dump(mode="json", exclude={"download_url"}, exclude_none=True)


def _failure_words(job: Job, what: str) -> str:
    detail = words(job.result.error_message if job.result else "")
    if job.job_state == "cancelled":
        return f"The {what} was cancelled in Descript."
    return f"Descript could not finish the {what}" + (f": {detail}" if detail else ".")


def _import_stopped(lease: Lease, step: JobStep, job: Job) -> Next:
    result = job.result
    status = result.status if result is not None and job.job_state == "stopped" else "error"
    fields: dict[str, Any] = {}
    if job.project_id and not lease.auto_edit.project_id:
        fields["project_id"] = job.project_id
    if job.project_url and not lease.auto_edit.project_url:
        fields["project_url"] = job.project_url[:500]
    if result is not None and result.created_compositions:
        fields["composition_id"] = result.created_compositions[0].id[:100]
    if status == "success":
        with transaction.atomic():
            stopped_step(step, JobStep.State.SUCCEEDED, _safe_result(job))
            lease.update(state=State.EDITING, **fields)
        return CONTINUE
    if status == "partial" and result is not None:
        sequence = _our_sequence(lease.auto_edit)  # not a file of the user's: its tracks are named
        failed = {words(name, 200): words(why, 300) for name, why in result.failed_media.items() if name != sequence}
        with transaction.atomic():
            stopped_step(step, JobStep.State.PARTIAL, _safe_result(job))
            lease.release(state=State.NEEDS_CHOICE, failed_files=failed, next_action_at=None, **fields)
            _after_leaving_descript(lease.auto_edit)
        log.info("auto-edit %s: partial import (%d file(s) failed), waiting for a choice", lease.auto_edit.pk,
                 len(failed))
        return None
    reason = _failure_words(job, "import")
    if result is not None and result.failed_media and not result.error_message:
        names = ", ".join(sorted(result.failed_media))
        reason = f"Descript could not import the files ({words(names, 200)})."
    with transaction.atomic():
        stopped_step(step, JobStep.State.FAILED, _safe_result(job), error=reason)
        finish(lease.auto_edit, State.FAILED, lease=lease, reason=reason, failure_kind="import", **fields)
    return None


def _editing(lease: Lease) -> Next:
    ae = lease.auto_edit

    def prepare(callback: str | None) -> Callable[[JobsClient], JobCreated]:
        return lambda jobs: jobs.agent(prompt=ae.prompt, project_id=ae.project_id,
                                       composition_id=ae.composition_id or None, callback_url=callback)

    return _drive(lease, JobStep.Kind.AGENT, prepare, _agent_stopped)


def _agent_stopped(lease: Lease, step: JobStep, job: Job) -> Next:
    result = job.result
    if job.job_state == "stopped" and result is not None and result.status in ("success", "partial"):
        summary = (result.agent_response or "").strip()[:4000]
        with transaction.atomic():
            stopped_step(step, JobStep.State.SUCCEEDED, _safe_result(job))
            lease.update(state=State.PUBLISHING, agent_summary=summary)
        return CONTINUE
    reason = _failure_words(job, "edit with Underlord")
    with transaction.atomic():
        stopped_step(step, JobStep.State.FAILED, _safe_result(job), error=reason)
        finish(lease.auto_edit, State.FAILED, lease=lease, reason=reason, failure_kind="agent")
    return None


def _publishing(lease: Lease) -> Next:
    ae = lease.auto_edit

    def prepare(callback: str | None) -> Callable[[JobsClient], JobCreated]:
        return lambda jobs: jobs.publish(project_id=ae.project_id, composition_id=ae.composition_id or None,
                                         media_type=ae.media_type, resolution=ae.resolution or None,
                                         callback_url=callback)

    return _drive(lease, JobStep.Kind.PUBLISH, prepare, _publish_stopped)


def _version_title(ae: AutoEdit) -> str:
    if ae.preset_id and ae.preset:
        return f"Auto-edit: {ae.preset.name}"
    first_line = ae.prompt.strip().splitlines()[0] if ae.prompt.strip() else ""
    return f"Auto-edit: {first_line[:80]}{'…' if len(first_line) > 80 else ''}" if first_line else "Auto-edit"


def _publish_stopped(lease: Lease, step: JobStep, job: Job) -> Next:
    result = job.result
    ok = job.job_state == "stopped" and result is not None and result.status == "success"
    if ok and result is not None and result.share_url and result.download_url:
        try:
            with transaction.atomic():
                stopped_step(step, JobStep.State.SUCCEEDED, _safe_result(job))
                bring_home(lease, share_url=result.share_url, download_url=result.download_url,
                           title=_version_title(lease.auto_edit))
                _after_leaving_descript(lease.auto_edit)
        except ReturnRefused as exc:
            reason = f"Descript published the edit, but its share link is not one we accept ({exc.reason})"
            with transaction.atomic():
                stopped_step(step, JobStep.State.FAILED, _safe_result(job), error=reason)
                finish(lease.auto_edit, State.FAILED, lease=lease, reason=reason, failure_kind="publish")
            return None
        return later(lease, lease.auto_edit.next_action_at or timezone.now())
    reason = _failure_words(job, "publish")
    if ok:
        reason = "Descript published the edit but gave no link to download it."
    with transaction.atomic():
        stopped_step(step, JobStep.State.FAILED, _safe_result(job), error=reason)
        finish(lease.auto_edit, State.FAILED, lease=lease, reason=reason, failure_kind="publish")
    return None


def _after_leaving_descript(ae: AutoEdit) -> None:
    from .tasks import nudge_queued

    transaction.on_commit(lambda: nudge_queued(ae))


# --- cancelling -------------------------------------------------------------------------------


def _carry_out_cancel(lease: Lease) -> Next:
    """Cancel the job in flight at Descript (DELETE, or find a maybe-created one first), then the auto-edit."""
    ae = lease.auto_edit
    step = open_step(ae)
    if step is not None and not step.job_id and step.submit_started_at is not None:
        jobs = JobsClient()
        try:
            found = jobs.find_submitted(job_type=JobStep.JOB_TYPES[step.kind], since=step.submit_started_at,
                                        project_id=ae.project_id or None,
                                        project_name=None if ae.project_id else ae.project_name)
        except JobsError as exc:
            if exc.retryable and step.retries < 5:
                JobStep.objects.filter(pk=step.pk).update(retries=step.retries + 1)
                return later(lease, timezone.now() + timedelta(seconds=float(exc.retry_after or 5)))
            found = None
        if found is not None:
            JobStep.objects.filter(pk=step.pk).update(job_id=found.job_id)
            step.job_id = found.job_id
    if step is not None and step.job_id and not cancel_quietly(step):
        if step.retries < 5:
            JobStep.objects.filter(pk=step.pk).update(retries=step.retries + 1)
            return later(lease, timezone.now() + timedelta(seconds=5))
        log.warning("auto-edit %s: Descript's job could not be cancelled; cancelled here anyway", ae.pk)
    finish(ae, State.CANCELLED, lease=lease, reason=ae.reason or "Cancelled.")  # nudges the queue too
    return None
