"""The click (POST -> 302 to Descript) and the plain-words pages around it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from partner_site.library.models import Recording
from partner_site.library.options import find_option

from . import ingest, returns
from .handoff import HandoffFailed, record_refused_click, send_to_descript
from .models import ReturnedExport
from .tasks import enqueue_advance


def error_page(
    request: HttpRequest, status: int, headline: str, message: str, *, retry: bool = False, retry_url: str = ""
) -> HttpResponse:
    return render(
        request,
        "eid/error.html",
        {"headline": headline, "message": message, "retry": retry, "retry_url": retry_url, "status": status},
        status=status,
    )


@never_cache
@login_required
def edit_in_descript(request: HttpRequest, recording_id: int, option: str) -> HttpResponse:
    if request.method != "POST":
        return error_page(request, 405, "Use the button", "Open a recording in Descript with its “Edit in Descript” button.")
    recording = (
        Recording.objects.filter(pk=recording_id, owner=request.user).prefetch_related("files").first()
    )
    chosen = find_option(recording, option) if recording else None
    if chosen is None or not chosen.supported_by_descript:
        # Someone else's recording looks exactly like a missing one; operators still see the try.
        record_refused_click(request.user, recording_id, option)
        raise Http404("No such recording")
    try:
        url, _ = send_to_descript(request.user, recording, chosen)
    except HandoffFailed as failure:
        page = error_page(request, failure.http_status, failure.headline, failure.message, retry=failure.retryable)
        if failure.retry_after:
            page["Retry-After"] = str(failure.retry_after)
        return page
    # The link is single-use and personal: never let a cache keep the redirect.
    return HttpResponseRedirect(url)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_page(
        request,
        403,
        "Please try again",
        "Your session expired or the form was sent from elsewhere. Go back, reload the page and try again.",
    )


# --- The way back -----------------------------------------------------------------------------


@never_cache
@login_required
def landing(request: HttpRequest) -> HttpResponse:
    """GET: show what will happen (nothing written). POST: confirm, once per share page."""
    source = request.POST if request.method == "POST" and "url" in request.POST else request.GET
    raw_url, title_hint = source.get("url", ""), source.get("title", "")[:300]
    if request.method not in ("GET", "POST"):
        return error_page(request, 405, "Not allowed", "Use the link Descript gave you.")
    try:
        share_url, share_id = returns.clean_share_url(raw_url)
    except returns.ReturnRefused as refused:
        return error_page(request, refused.status, "This link cannot be imported", refused.reason)
    existing = ReturnedExport.objects.filter(user=request.user, share_id=share_id).first()
    if existing:
        return redirect("eid:import_status", existing.pk)
    try:
        preview = returns.preview(request.user, share_url, title_hint)
    except returns.ReturnRefused as refused:
        return error_page(request, refused.status, "This link cannot be imported", refused.reason,
                          retry=refused.status >= 500, retry_url=request.get_full_path())
    if request.method == "POST":
        export, _ = returns.confirm(request.user, preview)
        return redirect("eid:import_status", export.pk)
    return render(request, "eid/landing.html", {"preview": preview, "url": share_url, "title": preview.title})


def _status_payload(export: ReturnedExport) -> dict:
    payload = {
        "state": export.state,
        "state_label": export.get_state_display(),
        "checks": export.checks,
        "next_check_at": export.next_check_at.isoformat() if export.next_check_at else None,
        "bytes_copied": export.bytes_copied,
        "bytes_total": export.bytes_total,
        "reason": export.reason,
        "retryable": export.state == ReturnedExport.State.FAILED and export.retryable,
        "recording_url": reverse("recording", args=[export.recording_id]) if export.recording_id else None,
        "version": export.version.number if export.version_id else None,
    }
    return payload


@never_cache
@login_required
def import_status(request: HttpRequest, export_id) -> HttpResponse:
    export = get_object_or_404(ReturnedExport.objects.select_related("recording", "version"),
                               pk=export_id, user=request.user)
    if request.GET.get("format") == "json":
        return JsonResponse(_status_payload(export))
    return render(request, "eid/status.html", {"export": export, "status": _status_payload(export)})


@never_cache
@login_required
def import_retry(request: HttpRequest, export_id) -> HttpResponse:
    export = get_object_or_404(ReturnedExport, pk=export_id, user=request.user)
    if request.method != "POST":
        return redirect("eid:import_status", export.pk)
    if ingest.retry(export):
        enqueue_advance(export.pk)
    return redirect("eid:import_status", export.pk)
