"""Driving one Descript job of an auto-edit: submit once, reconcile a lost answer, poll on cadence.

A JobStep goes `submitting` -> (job id recorded) `queued`/`running` -> a final state. The rules:

- Before a POST the step row says `submitting` with `submit_started_at` and the callback
  token's digest, and that write has committed (`assert_committed`). A step found `submitting`
  with `submit_started_at` set but no job id may exist at Descript (a crash, or a timeout after
  sending): it is looked for with GET /jobs (`JobsClient.find_submitted`) before any new POST,
  and adopted when found. `submit_started_at` is cleared only when the POST surely created
  nothing (a 429, a connection never made).
- GET /jobs/{id} never twice within EID_JOBS_POLL_MIN_SECONDS for one job, whatever asked for it
  (`last_polled_at` is written before the GET leaves, so even a run that dies mid-GET counts).
- A 429 (or a spent shared budget) reschedules at Retry-After and is no failure; other transient
  failures are retried with a growing wait, at most MAX_RETRIES in a row; refusals (402, 403...)
  end the auto-edit with Descript's plain words.

The functions here return what the auto-edit should do next: CONTINUE (its state moved on: run
the next state now), a datetime (released; run again then) or None (released, nothing to run).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any, Callable

from django.db.models import F
from django.db.models.functions import Coalesce, Least
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from ..conf import eid_settings
from ..logging import redact
from .cadence import earliest_poll, next_poll_delay
from .client import Job, JobCreated, JobsClient, JobsError
from .lease import Lease, assert_committed, finish
from .models import AutoEdit, JobStep

log = logging.getLogger(__name__)

CONTINUE = "continue"
Next = datetime | str | None
MAX_RETRIES = 8
SPACING_MARGIN = timedelta(milliseconds=250)
# Retries of a transient failure wait POLL_MIN x 2^n seconds, at most this long.
MAX_BACKOFF_SECONDS = 300.0
_LINK = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)

Submit = Callable[[JobsClient], JobCreated]
OnStopped = Callable[[Lease, JobStep, Job], Next]


def words(text: str | None, limit: int = 300) -> str:
    """Descript's own message, safe to show: no links (they may be signed), no token, short."""
    return redact(_LINK.sub("[link]", text or "")).strip()[:limit]


def client() -> JobsClient:
    return JobsClient()


def callbacks_on() -> bool:
    return bool(eid_settings.EID_JOBS_CALLBACK_BASE)


def callbacks_expected(ae: AutoEdit) -> bool:
    """Poll only as the callbacks' fallback? Not while someone watches the page (control.being_watched)."""
    watched = ae.watched_until is not None and ae.watched_until > timezone.now()
    return callbacks_on() and not watched


def callback_url(token: str) -> str | None:
    base = str(eid_settings.EID_JOBS_CALLBACK_BASE or "").rstrip("/")
    if not base:
        return None
    try:
        return base + reverse("eid_jobs:callback", args=[token])
    except NoReverseMatch:
        log.warning("EID_JOBS_CALLBACK_BASE is set but eid.jobs.urls is not routed: polling only")
        return None


def later(lease: Lease, at: datetime, **fields: Any) -> datetime:
    """Release, to run again at `at`, or sooner when a nudge (a callback, a cancel) came meanwhile."""
    lease.release(next_action_at=Least(Coalesce(F("next_action_at"), at), at), **fields)
    current = AutoEdit.objects.filter(pk=lease.auto_edit.pk).values_list("next_action_at", flat=True).first()
    # A nudge that found our lease was dropped: its time is ours to enqueue.
    return min(at, current) if current else at


def live_step(ae: AutoEdit, kind: str) -> JobStep | None:
    return JobStep.objects.filter(auto_edit=ae, kind=kind).exclude(
        state__in=[JobStep.State.FAILED, JobStep.State.CANCELLED]).order_by("-created_at").first()


def open_step(ae: AutoEdit) -> JobStep | None:
    return JobStep.objects.filter(auto_edit=ae).exclude(state__in=JobStep.FINAL_STATES).order_by("-created_at").first()


def _update_step(step: JobStep, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    JobStep.objects.filter(pk=step.pk).update(**fields)
    step.refresh_from_db()


def _count(calls: int) -> dict[str, Any]:
    return {"calls": F("calls") + calls} if calls else {}


def fail(lease: Lease, step: JobStep | None, exc_words: str, *, kind: str) -> None:
    """End the auto-edit (and its step) failed, with words for the user and the operator."""
    if step is not None:
        _update_step(step, state=JobStep.State.FAILED, error=exc_words[:500], error_kind=kind[:30],
                     finished_at=timezone.now(), next_poll_at=None)
    finish(lease.auto_edit, AutoEdit.State.FAILED, lease=lease, reason=exc_words, failure_kind=kind)


def _backoff(retries: int) -> float:
    return min(MAX_BACKOFF_SECONDS, float(eid_settings.EID_JOBS_POLL_MIN_SECONDS) * 2 ** max(0, retries - 1))


def _transient(lease: Lease, step: JobStep, exc: JobsError, calls: int, what: str, **fields: Any) -> Next:
    """A failure worth trying again: a 429 waits Retry-After (no retry counted), others back off."""
    now = timezone.now()
    if exc.kind == "rate_limited":
        wait = float(exc.retry_after or eid_settings.EID_JOBS_POLL_MIN_SECONDS)
        _update_step(step, **_count(calls), **fields)
        log.info("auto-edit %s: %s rate limited, again in %.1fs", lease.auto_edit.pk, what, wait)
        return later(lease, now + timedelta(seconds=max(wait, 0.05)))
    retries = step.retries + 1
    if retries > MAX_RETRIES:
        _update_step(step, **_count(calls))
        fail(lease, step, f"Descript kept failing while we {what} ({exc.words}) Please try again later.",
             kind=str(exc.kind))
        return None
    _update_step(step, retries=retries, **_count(calls), **fields)
    log.info("auto-edit %s: %s failed (%s), retry %d", lease.auto_edit.pk, what, exc.kind, retries)
    return later(lease, now + timedelta(seconds=_backoff(retries)))


# --- submitting -------------------------------------------------------------------------------


def new_step(ae: AutoEdit, kind: str) -> JobStep:
    _token, token_digest = JobStep.new_callback_token()  # replaced with a fresh one at each submit
    return JobStep.objects.create(auto_edit=ae, kind=kind, state=JobStep.State.SUBMITTING,
                                  callback_digest=token_digest)


def submit(lease: Lease, step: JobStep, prepare: Callable[[str | None], Submit]) -> Next:
    """Write the step, commit, then POST once; record the job, or leave the step to reconcile.

    `prepare(callback_url)` does what needs no Descript (presigning, storage checks) and returns
    the POST; it raises to refuse before anything is sent.
    """
    token, token_digest = JobStep.new_callback_token()
    post = prepare(callback_url(token))
    now = timezone.now()
    _update_step(step, state=JobStep.State.SUBMITTING, callback_digest=token_digest, submit_started_at=now,
                 job_id=None)
    lease.beat()
    assert_committed()
    jobs = client()
    try:
        created = post(jobs)
    except JobsError as exc:
        return _submit_failed(lease, step, exc, jobs.calls)
    return adopt(lease, step, created.job_id, jobs.calls, created=created)


def _submit_failed(lease: Lease, step: JobStep, exc: JobsError, calls: int) -> Next:
    what = f"submitted the {step.get_kind_display().lower()} job"
    if exc.maybe_created:
        # It may exist: look for it (never POST again blindly) once Descript has had a moment.
        return _transient(lease, step, exc, calls, what)
    if exc.retryable:
        return _transient(lease, step, exc, calls, what, submit_started_at=None)  # surely not created
    _update_step(step, **_count(calls))
    fail(lease, step, exc.words, kind=str(exc.kind))
    return None


def adopt(lease: Lease, step: JobStep, job_id: str, calls: int, *, created: JobCreated | Job | None = None) -> Next:
    """The job exists at Descript: record it, and the first poll on Descript's cadence."""
    now = timezone.now()
    expected = callbacks_expected(lease.auto_edit)
    first = now + timedelta(seconds=next_poll_delay(polls_so_far=0, callbacks_expected=expected))
    _update_step(step, job_id=job_id, state=JobStep.State.QUEUED, submitted_at=now, next_poll_at=first,
                 retries=0, **_count(calls))
    fields: dict[str, Any] = {}
    if created is not None and created.project_id and not lease.auto_edit.project_id:
        fields["project_id"] = created.project_id
    if created is not None and created.project_url and not lease.auto_edit.project_url:
        fields["project_url"] = created.project_url[:500]
    if fields:
        lease.update(**fields)
    log.info("auto-edit %s: %s job %s at Descript", lease.auto_edit.pk, step.kind, job_id)
    return later(lease, first)


def reconcile(lease: Lease, step: JobStep, prepare: Callable[[str | None], Submit]) -> Next:
    """A submit that may have created a job: find it (GET /jobs) and adopt it, or submit again."""
    ae = lease.auto_edit
    assert step.submit_started_at is not None
    jobs = client()
    try:
        found = jobs.find_submitted(
            job_type=JobStep.JOB_TYPES[step.kind], since=step.submit_started_at,
            project_id=ae.project_id or None,
            project_name=None if ae.project_id else ae.project_name)
    except JobsError as exc:
        if exc.retryable:
            return _transient(lease, step, exc, jobs.calls, "looked for a job that may have been created")
        _update_step(step, **_count(jobs.calls))
        fail(lease, step, exc.words, kind=str(exc.kind))
        return None
    known = set(JobStep.objects.filter(auto_edit=ae).exclude(job_id=None).values_list("job_id", flat=True))
    if found is not None and found.job_id not in known:
        log.info("auto-edit %s: found the %s job a lost answer created", ae.pk, step.kind)
        return adopt(lease, step, found.job_id, jobs.calls, created=found)
    _update_step(step, **_count(jobs.calls))
    log.info("auto-edit %s: no %s job was created; submitting again", ae.pk, step.kind)
    return submit(lease, step, prepare)


# --- polling ----------------------------------------------------------------------------------


def poll(lease: Lease, step: JobStep, on_stopped: OnStopped) -> Next:
    """GET the job once (when the spacing allows), record its progress, and act when it stopped."""
    now = timezone.now()
    started = step.submitted_at or step.submit_started_at or step.created_at
    give_up = float(eid_settings.EID_JOBS_GIVE_UP_SECONDS)
    if (now - started).total_seconds() > give_up:
        cancel_quietly(step)
        fail(lease, step, f"Descript's {step.get_kind_display().lower()} job had not finished after "
                          f"{_hours(give_up)}. Please try again later.", kind="gave_up")
        return None
    # `last_polled_at` is written a moment before its GET leaves; the margin keeps two GETs'
    # arrivals at Descript, not only our decisions, at least the spacing apart.
    last = step.last_polled_at + SPACING_MARGIN if step.last_polled_at else None
    earliest = earliest_poll(last, now)
    if earliest > now:
        return later(lease, earliest)
    _update_step(step, last_polled_at=now)
    lease.beat()
    assert_committed()
    jobs = client()
    try:
        job = jobs.get_job(step.job_id or "")
    except JobsError as exc:
        if exc.retryable:
            return _transient(lease, step, exc, jobs.calls, "checked on the job", polls=F("polls") + 1)
        _update_step(step, polls=F("polls") + 1, **_count(jobs.calls))
        fail(lease, step, exc.words, kind=str(exc.kind))
        return None
    label = words((job.progress.label if job.progress else "") or "", 200)
    percent = _percent(job)
    state = {"queued": JobStep.State.QUEUED}.get(job.job_state, JobStep.State.RUNNING)
    unchanged = (job.job_state != "stopped" and state == step.state and label == step.progress_label
                 and percent == step.progress_percent)
    _update_step(step, polls=F("polls") + 1, polls_unchanged=F("polls_unchanged") + int(unchanged),
                 progress_label=label, progress_percent=percent, retries=0, state=state, **_count(jobs.calls))
    if job.stopped:
        return on_stopped(lease, step, job)
    delay = next_poll_delay(polls_so_far=step.polls, callbacks_expected=callbacks_expected(lease.auto_edit))
    at = now + timedelta(seconds=delay)
    _update_step(step, next_poll_at=at)
    return later(lease, at)


def _percent(job: Job) -> int | None:
    if job.job_state == "stopped":
        return 100
    if job.progress is None or job.progress.percent is None:
        return None
    value = job.progress.percent
    if 0 < value <= 1:
        value *= 100  # a fraction
    return max(0, min(100, int(round(value))))


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:g} minutes"
    return f"{seconds / 3600:g} hours"


def stopped_step(step: JobStep, state: str, result: dict[str, Any], error: str = "") -> None:
    """Record a stopped job's outcome on its step (called in the transaction that moves the auto-edit)."""
    now = timezone.now()
    _update_step(step, state=state, result=result, error=error[:500], finished_at=now, next_poll_at=None,
                 progress_percent=100 if state == JobStep.State.SUCCEEDED else step.progress_percent)


def cancel_quietly(step: JobStep) -> bool:
    """DELETE the step's job; True when Descript cancelled it or it had already stopped."""
    if not step.job_id:
        return True
    jobs = client()
    try:
        jobs.cancel_job(step.job_id)
    except JobsError as exc:
        _update_step(step, **_count(jobs.calls))
        if exc.kind in ("conflict", "not_found"):
            return True  # it stopped on its own, or Descript no longer has it
        log.warning("auto-edit %s: could not cancel job (%s)", step.auto_edit_id, exc.kind)
        return False
    _update_step(step, **_count(jobs.calls))
    return True


__all__ = ["CONTINUE", "Next", "adopt", "callback_url", "cancel_quietly", "fail", "later", "live_step",
           "new_step", "open_step", "poll", "reconcile", "stopped_step", "submit", "words"]
