"""The pages of auto-edits: start one from a recording, watch it live, choose, cancel; a batch's page.

Thin: each view asks `eid.jobs.machine` and turns an AutoEditRefused into a page in plain words.
The live parts are JSON endpoints the static eid_jobs/auto_edit.js polls (no inline script: the
site's CSP allows none). An auto-edit is its owner's: anyone else gets the 404 a missing one gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from ..content import MAX_REF_LENGTH, get_adapter
from ..views import answers, error_page, throttled
from . import machine
from .forms import AutoEditForm
from .models import AutoEdit, AutoEditBatch

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    class SignedInRequest(HttpRequest):
        user: User
else:
    SignedInRequest = HttpRequest

THROTTLE_SCOPE = "auto_edit"
_HEADLINES = {
    "not_found": "No such recording",
    "not_importable": "Descript cannot import this recording",
    "no_prompt": "Tell Underlord what to do",
    "too_long": "These instructions are too long",
    "not_configured": "Automatic edits are not set up",
    "already_running": "An automatic edit is already running",
}


def _imported_count(ae: AutoEdit) -> int | None:
    """How many files a partial import brought in (for "Go on with the N files that imported")."""
    content = get_adapter().get_content(ae.user, ae.item_ref, ae.option)
    if content is None:
        return None
    return max(0, len(content.files) - len(ae.failed_files or {}))


def status_payload(ae: AutoEdit) -> dict[str, Any]:
    """What the status page shows, as JSON: the machine's description, plus where things are."""
    payload = dict(machine.describe(ae))
    ref = ae.result_ref or ae.item_ref
    payload["item_url"] = (get_adapter().item_url(ref) or None) if ref else None
    payload["imported_count"] = _imported_count(ae) if payload.get("can_choose") else None
    return payload


def _refused(request: HttpRequest, refusal: machine.AutoEditRefused) -> HttpResponse:
    return error_page(request, refusal.http_status, _HEADLINES.get(str(refusal.kind), "This edit cannot start"),
                      refusal.reason)


def _own(request: SignedInRequest, auto_edit_id: Any) -> AutoEdit:
    return get_object_or_404(AutoEdit.objects.select_related("batch"), pk=auto_edit_id, user=request.user)


@never_cache
@login_required
@answers("POST")
def start(request: SignedInRequest, ref: str) -> HttpResponse:
    """The recording page's form: one auto-edit of the signed-in user's own recording."""
    if "\x00" in ref or len(ref) > MAX_REF_LENGTH:
        raise Http404("No such recording")
    if (slow_down := throttled(request, THROTTLE_SCOPE, what="started a lot of automatic edits")) is not None:
        return slow_down
    form = AutoEditForm(request.POST)
    if not form.is_valid():
        return error_page(request, 400, "This edit cannot start", form.errors_in_words())
    try:
        ae = machine.start_auto_edit(user=request.user, item_ref=ref, via=AutoEditBatch.Via.PAGE,
                                     requested_by=request.user.get_username(), **form.start_arguments())
    except machine.AutoEditRefused as refusal:
        return _refused(request, refusal)
    return redirect("eid_jobs:auto_edit", ae.pk)


@never_cache
@login_required
@answers("GET")
def auto_edit_page(request: SignedInRequest, auto_edit_id: Any) -> HttpResponse:
    ae = _own(request, auto_edit_id)
    batch = ae.batch
    can_see_batch = batch is not None and (request.user.is_staff or batch.requested_by == request.user.get_username())
    return render(request, "eid_jobs/status.html",
                  {"ae": ae, "status": status_payload(ae), "can_see_batch": can_see_batch})


@never_cache
@login_required
@answers("GET")
def auto_edit_status(request: SignedInRequest, auto_edit_id: Any) -> HttpResponse:
    ae = _own(request, auto_edit_id)
    machine.being_watched(ae)  # the page is open: Descript's progress is polled while it is
    return JsonResponse(status_payload(ae))


def _act(request: SignedInRequest, auto_edit_id: Any, action: Any, refused_words: str) -> HttpResponse:
    """A button on the status page: do it, or say why it could not be done (it finished meanwhile)."""
    ae = _own(request, auto_edit_id)
    if not action(ae):
        ae.refresh_from_db()
        return error_page(request, 409, "Too late for that", f"{refused_words} It is now: {ae.get_state_display()}.",
                          retry_url=reverse("eid_jobs:auto_edit", args=[ae.pk]))
    if request.headers.get("Accept", "").startswith("application/json"):
        ae.refresh_from_db()
        return JsonResponse(status_payload(ae))
    return redirect("eid_jobs:auto_edit", ae.pk)


@never_cache
@login_required
@answers("POST")
def cancel(request: SignedInRequest, auto_edit_id: Any) -> HttpResponse:
    return _act(request, auto_edit_id, lambda ae: machine.cancel(ae, by=request.user.get_username()),
                "This automatic edit can no longer be cancelled.")


@never_cache
@login_required
@answers("POST")
def go_on(request: SignedInRequest, auto_edit_id: Any) -> HttpResponse:
    return _act(request, auto_edit_id, machine.go_on, "This automatic edit is not waiting for a choice.")


@never_cache
@login_required
@answers("POST")
def stop(request: SignedInRequest, auto_edit_id: Any) -> HttpResponse:
    return _act(request, auto_edit_id, machine.stop, "This automatic edit is not waiting for a choice.")


# --- Batches ------------------------------------------------------------------------------------


def _batch_for(request: SignedInRequest, batch_id: Any) -> AutoEditBatch:
    """Staff see every batch; a person the batches they asked for. Anyone else: 404."""
    batch = get_object_or_404(AutoEditBatch, pk=batch_id)
    if not (request.user.is_staff or (batch.requested_by and batch.requested_by == request.user.get_username())):
        raise Http404("No such batch")
    return batch


def batch_payload(request: HttpRequest, batch: AutoEditBatch) -> dict[str, Any]:
    counts = machine.batch_counts(batch)
    words = dict(AutoEdit.State.choices)
    staff = bool(getattr(request.user, "is_staff", False))
    items = []
    for ae in batch.auto_edits.order_by("created_at", "id"):
        if ae.user_id == getattr(request.user, "pk", None):
            url = reverse("eid_jobs:auto_edit", args=[ae.pk])
        elif staff:
            url = reverse("admin:eid_jobs_autoedit_change", args=[ae.pk])
        else:
            url = ""
        items.append({"id": str(ae.pk), "item_ref": ae.item_ref, "item_title": ae.item_title or ae.item_ref,
                      "state": ae.state, "state_words": ae.get_state_display(), "reason": ae.reason,
                      "version_number": ae.version_number, "url": url})
    by_state = [{"state": state, "words": words[state], "n": counts.get(state, 0)}
                for state in AutoEdit.State.values if counts.get(state)]
    active = sum(counts.get(state, 0) for state in AutoEdit.State.values if state not in AutoEdit.FINAL_STATES)
    return {"id": str(batch.pk), "name": str(batch), "counts": counts, "by_state": by_state,
            "total": len(items), "final": active == 0, "items": items}


@never_cache
@login_required
@answers("GET")
def batch_page(request: SignedInRequest, batch_id: Any) -> HttpResponse:
    batch = _batch_for(request, batch_id)
    return render(request, "eid_jobs/batch.html", {"batch": batch, "status": batch_payload(request, batch)})


@never_cache
@login_required
@answers("GET")
def batch_status(request: SignedInRequest, batch_id: Any) -> HttpResponse:
    return JsonResponse(batch_payload(request, _batch_for(request, batch_id)))
