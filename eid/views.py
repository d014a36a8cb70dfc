"""The click (POST -> 302 to Descript) and the plain-words pages around it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from . import returns, throttle
from .content import get_adapter
from .handoff import HandoffFailed, record_refused_click, send_to_descript
from .models import ReturnedExport
from .tasks import retry_import

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    class SignedInRequest(HttpRequest):
        """What a @login_required view is given: the user is signed in."""

        user: User
else:
    SignedInRequest = HttpRequest

ViewFunc = Callable[..., HttpResponse]


def error_page(
    request: HttpRequest, status: int, headline: str, message: str, *, retry: bool = False, retry_url: str = ""
) -> HttpResponse:
    return render(
        request,
        "eid/error.html",
        {"headline": headline, "message": message, "retry": retry, "retry_url": retry_url, "status": status},
        status=status,
    )


def answers(*methods: str) -> Callable[[ViewFunc], ViewFunc]:
    """Only these methods; anything else is a plain-words 405 with an Allow header."""
    allowed = sorted(set(methods) | ({"HEAD"} if "GET" in methods else set()))

    def decorate(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                page = error_page(request, 405, "Not allowed here",
                                  "This address does not answer that kind of request. "
                                  "Use the buttons and links on the site.")
                page["Allow"] = ", ".join(allowed)
                return page
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def throttled(request: HttpRequest, scope: str, *, what: str = "sent a lot of requests to Descript"
              ) -> HttpResponse | None:
    """A plain-words 429 when this user has used up the scope's rate, else None (`what` they did)."""
    verdict = throttle.check(scope, request.user.pk)
    if verdict.allowed:
        return None
    page = error_page(request, 429, "Please slow down",
                      f"You have {what} in a short time. Please try again in {verdict.retry_after} seconds.")
    page["Retry-After"] = str(verdict.retry_after)
    return page


def _unreadable(*values: str) -> bool:
    """Text PostgreSQL cannot store (NUL) never reaches a query or a row."""
    return any("\x00" in v for v in values)


@never_cache
@login_required
@answers("POST")
def edit_in_descript(request: SignedInRequest, ref: str, option: str) -> HttpResponse:
    if _unreadable(ref, option):
        return error_page(request, 400, "This link cannot be used", "The address has characters we cannot read.")
    if (refusal := throttled(request, "click")) is not None:
        return refusal
    content = get_adapter().get_content(request.user, ref, option)
    if content is None or not content.importable:
        # Someone else's item looks exactly like a missing one; operators still see the try.
        record_refused_click(request.user, ref, option)
        raise Http404("No such recording")
    try:
        url, _ = send_to_descript(request.user, content)
    except HandoffFailed as failure:
        page = error_page(request, failure.http_status, failure.headline, failure.message, retry=failure.retryable)
        if failure.retry_after:
            page["Retry-After"] = str(failure.retry_after)
        page._has_been_logged = True  # type: ignore[attr-defined]  # handoff logged it, with the row's id
        return page
    # The link is single-use and personal: never let a cache keep the redirect.
    return HttpResponseRedirect(url)


# --- The way back -----------------------------------------------------------------------------


@never_cache
@login_required
@answers("GET", "POST")
def landing(request: SignedInRequest) -> HttpResponse:
    """GET: show what will happen (nothing written). POST: confirm, once per share page."""
    source = request.POST if request.method == "POST" and "url" in request.POST else request.GET
    raw_url, title_hint = source.get("url", ""), source.get("title", "")[:300]
    if _unreadable(raw_url, title_hint):
        return error_page(request, 400, "This link cannot be imported", "The link has characters we cannot read.")
    if (refusal := throttled(request, "landing")) is not None:
        return refusal
    try:
        link = returns.clean_share_url(raw_url)
    except returns.ReturnRefused as refused:
        return error_page(request, refused.status, "This link cannot be imported", refused.reason)
    existing = ReturnedExport.objects.filter(user=request.user, share_id=link.share_id).first()
    if existing:
        return redirect("eid:import_status", existing.pk)
    try:
        preview = returns.preview(request.user, link, title_hint)
    except returns.ReturnRefused as refused:
        return error_page(request, refused.status, "This link cannot be imported", refused.reason,
                          retry=refused.status >= 500, retry_url=request.get_full_path())
    if request.method == "POST":
        export, _ = returns.confirm(request.user, preview)
        return redirect("eid:import_status", export.pk)
    target_url = get_adapter().item_url(preview.target.ref) if preview.target else ""
    return render(request, "eid/landing.html",
                  {"preview": preview, "url": link.url, "title": preview.title, "target_url": target_url})


def _status_payload(export: ReturnedExport) -> dict[str, Any]:
    item_ref = export.result_ref or export.target_ref
    return {
        "state": export.state,
        "state_label": export.get_state_display(),
        "checks": export.checks,
        "next_check_at": export.next_check_at.isoformat() if export.next_check_at else None,
        "bytes_copied": export.bytes_copied,
        "bytes_total": export.bytes_total,
        "reason": export.reason,
        "retryable": export.state == ReturnedExport.State.FAILED and export.retryable,
        "item_url": (get_adapter().item_url(item_ref) or None) if item_ref else None,
        "item_title": export.result_title or export.target_title or None,
        "version": export.version_number,
    }


@never_cache
@login_required
@answers("GET")
def import_status(request: HttpRequest, export_id: Any) -> HttpResponse:
    export = get_object_or_404(ReturnedExport, pk=export_id, user=request.user)
    if request.GET.get("format") == "json":
        return JsonResponse(_status_payload(export))
    return render(request, "eid/status.html", {"export": export, "status": _status_payload(export)})


@never_cache
@login_required
@answers("POST")
def import_retry(request: HttpRequest, export_id: Any) -> HttpResponse:
    export = get_object_or_404(ReturnedExport, pk=export_id, user=request.user)
    retry_import(export)
    return redirect("eid:import_status", export.pk)
