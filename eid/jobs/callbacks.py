"""Descript's job callbacks: POST <EID_JOBS_CALLBACK_BASE>/descript/jobs/callback/<token>.

Descript signs nothing on these calls (FACTS: "The jobs API"), so a callback is only a hint that
a job may have stopped. Each submit's callback URL carries a fresh random token of its own; only
its digest is stored. A call whose token names no step, or a step (or auto-edit) already final,
is answered 404 with no side effect: an unknown, forged or replayed call changes nothing. A
known one is counted and nudges the auto-edit to GET /jobs/{id} as soon as the poll spacing
allows; the body is not read (it is not trusted), Descript is not called in the request, and the
machine acts on what the confirming GET says, once.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .cadence import earliest_poll
from .models import AutoEdit, JobStep, digest
from .steps import SPACING_MARGIN

TOKEN_MAX = 100


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "not_found"}, status=404)


@csrf_exempt
@require_POST
def job_callback(request: HttpRequest, token: str) -> JsonResponse:
    if not token or len(token) > TOKEN_MAX:
        return _not_found()
    step = (JobStep.objects.select_related("auto_edit").filter(callback_digest=digest(token))
            .exclude(state__in=JobStep.FINAL_STATES).exclude(auto_edit__state__in=AutoEdit.FINAL_STATES).first())
    if step is None:
        return _not_found()
    now = timezone.now()
    JobStep.objects.filter(pk=step.pk).update(callbacks=F("callbacks") + 1, updated_at=now)
    at = earliest_poll(step.last_polled_at + SPACING_MARGIN if step.last_polled_at else None, now)
    auto_edit_id = step.auto_edit_id

    def confirm() -> None:
        from .tasks import nudge

        nudge(auto_edit_id, at)

    transaction.on_commit(confirm)
    return JsonResponse({"accepted": True}, status=202)
