"""One worker's claim on one auto-edit, and the one way an auto-edit ends.

As on the way back (eid.ingest.Lease): a run takes a lease on the row, writes only while it holds
it (each write refreshes the heartbeat), and gives it back when it stops. A worker that dies
leaves a stale heartbeat; the sweep (eid.tasks.sweep_stale) nudges the row again and the next
run resumes from what the rows say.

Every write here is its own autocommitted UPDATE: a JobStep marked `submitting` must be on disk
before its POST leaves (see `assert_committed`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..conf import eid_settings
from .models import AutoEdit, JobStep
from .signals import auto_edit_finished

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another run took the auto-edit over (ours went stale): stop without writing."""


def assert_committed() -> None:
    """Refuse to call Descript inside a transaction: what we wrote before the call must be durable."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("eid.jobs calls Descript only outside transactions (the step row must commit first)")


@dataclass
class Lease:
    auto_edit: AutoEdit
    token: uuid.UUID

    @classmethod
    def take(cls, auto_edit_id: Any) -> Lease | None:
        """The lease, or None when the auto-edit is final, gone, or another live run holds it."""
        now = timezone.now()
        stale = now - timedelta(seconds=float(eid_settings.EID_JOBS_STALE_SECONDS))
        with transaction.atomic():
            ae = AutoEdit.objects.select_for_update().filter(pk=auto_edit_id).first()
            if ae is None or ae.is_final:
                return None
            if ae.lease_token and ae.heartbeat_at and ae.heartbeat_at > stale:
                return None
            token = uuid.uuid4()
            AutoEdit.objects.filter(pk=ae.pk).update(lease_token=token, heartbeat_at=now, attempts=ae.attempts + 1,
                                                     updated_at=now)
            ae.lease_token, ae.heartbeat_at, ae.attempts = token, now, ae.attempts + 1
        return cls(ae, token)

    def update(self, **fields: Any) -> None:
        """Write fields (and the heartbeat) while the lease holds; LeaseLost when it does not."""
        now = timezone.now()
        fields.setdefault("heartbeat_at", now)
        fields["updated_at"] = now
        if not AutoEdit.objects.filter(pk=self.auto_edit.pk, lease_token=self.token).update(**fields):
            raise LeaseLost(str(self.auto_edit.pk))
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):  # an expression's value is the database's to say
                setattr(self.auto_edit, name, value)

    def beat(self) -> None:
        self.update()

    def release(self, **fields: Any) -> None:
        try:
            self.update(lease_token=None, **fields)
        except LeaseLost:
            log.info("auto-edit %s: lease was taken over before release", self.auto_edit.pk)

    def refresh(self) -> AutoEdit:
        """The row as it is now (a user may have asked to cancel meanwhile)."""
        self.auto_edit.refresh_from_db()
        if self.auto_edit.lease_token != self.token:
            raise LeaseLost(str(self.auto_edit.pk))
        return self.auto_edit


def finish(auto_edit: AutoEdit, state: str, *, reason: str = "", failure_kind: str = "", lease: Lease | None = None,
           from_states: tuple[str, ...] | None = None, **fields: Any) -> bool:
    """Make an auto-edit final (done, failed or cancelled), once: the signal goes after the commit.

    With `lease`, only while it holds; without (a user's stop on a row no run holds), only from a
    state that is not final. True when this call made it final.
    """
    now = timezone.now()
    rows = AutoEdit.objects.filter(pk=auto_edit.pk).exclude(state__in=AutoEdit.FINAL_STATES)
    if lease is not None:
        rows = rows.filter(lease_token=lease.token)
    if from_states is not None:
        rows = rows.filter(state__in=from_states)
    values: dict[str, Any] = dict(state=state, finished_at=now, updated_at=now, lease_token=None, heartbeat_at=now,
                                  next_action_at=None, **fields)
    if reason:
        values["reason"] = reason[:500]
    if failure_kind:
        values["failure_kind"] = failure_kind[:30]
    with transaction.atomic():
        if not rows.update(**values):
            return False
        # Steps still open at Descript's end are over as far as this auto-edit is concerned.
        open_steps = JobStep.objects.filter(auto_edit_id=auto_edit.pk).exclude(state__in=JobStep.FINAL_STATES)
        step_state = JobStep.State.CANCELLED if state == AutoEdit.State.CANCELLED else JobStep.State.FAILED
        if state != AutoEdit.State.DONE:
            open_steps.update(state=step_state, finished_at=now, updated_at=now, next_poll_at=None)
        for name, value in values.items():
            setattr(auto_edit, name, value)
        ae_id = auto_edit.pk
        transaction.on_commit(lambda: _announce(ae_id))
    if state == AutoEdit.State.FAILED:
        log.warning("auto-edit %s failed: %s", auto_edit.pk, reason)
    else:
        log.info("auto-edit %s %s", auto_edit.pk, state)
    return True


def _announce(auto_edit_id: Any) -> None:
    from .tasks import nudge_queued

    ae = AutoEdit.objects.filter(pk=auto_edit_id).first()
    if ae is None:
        return
    _close_batch(ae)
    # A listener's bug must not undo or repeat the ending, nor keep the others from hearing it.
    for listener, outcome in auto_edit_finished.send_robust(AutoEdit, auto_edit=ae):
        if isinstance(outcome, Exception):
            log.error("auto-edit %s: %r failed on auto_edit_finished: %r", ae.pk, listener, outcome)
    nudge_queued(ae)


def _close_batch(ae: AutoEdit) -> None:
    if ae.batch_id is None:
        return
    from .models import AutoEditBatch

    if not AutoEdit.objects.filter(batch_id=ae.batch_id).active().exists():
        AutoEditBatch.objects.filter(pk=ae.batch_id, finished_at__isnull=True).update(finished_at=timezone.now())
