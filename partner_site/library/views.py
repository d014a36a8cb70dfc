"""The partner's own pages: the library, a recording, downloads."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe

from eid import storage
from eid.models import ReturnedExport

from .models import MediaFile, Recording, RecordingVersion, VersionAsset
from .options import download_options

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    class SignedInRequest(HttpRequest):
        """What a @login_required view is given: the user is signed in."""

        user: User
else:
    SignedInRequest = HttpRequest


def _recordings_for(user):
    return Recording.objects.filter(owner=user).prefetch_related(
        "files", Prefetch("versions", queryset=RecordingVersion.objects.prefetch_related("assets"))
    )


# Pages that show a user's library: never kept by a shared cache, nor by the browser's disk
# cache after logout. Every page here answers GET and HEAD only (405 otherwise).
_private_page = cache_control(private=True, no_store=True)


@require_safe
@_private_page
@login_required
def library(request: SignedInRequest) -> HttpResponse:
    recordings = [(r, download_options(r)) for r in _recordings_for(request.user)]
    imports = ReturnedExport.objects.filter(user=request.user)[:10]
    return render(request, "library/library.html", {"recordings": recordings, "imports": imports})


@require_safe
@_private_page
@login_required
def recording_detail(request: HttpRequest, recording_id: int) -> HttpResponse:
    recording = get_object_or_404(_recordings_for(request.user), pk=recording_id)
    return render(
        request, "library/recording.html", {"recording": recording, "options": download_options(recording)}
    )


@require_safe
@never_cache
@login_required
def download_file(request: HttpRequest, file_id: int) -> HttpResponse:
    """Pages link here, never to a signed URL: the short-lived URL is made at the click."""
    media = get_object_or_404(MediaFile, pk=file_id, recording__owner=request.user)
    return _redirect_to_object(media.key)


@require_safe
@never_cache
@login_required
def download_asset(request: HttpRequest, asset_id: int) -> HttpResponse:
    asset = get_object_or_404(VersionAsset, pk=asset_id, version__recording__owner=request.user)
    return _redirect_to_object(asset.key)


def _redirect_to_object(key: str) -> HttpResponse:
    try:
        url = storage.presign_get(
            key, settings.LIBRARY_DOWNLOAD_TTL_SECONDS, download_name=posixpath.basename(key)
        )
    except storage.StorageError:
        raise Http404("File unavailable") from None
    return HttpResponseRedirect(url)


def _site_error(request: HttpRequest, status: int, headline: str, message: str) -> HttpResponse:
    return render(request, "site_error.html", {"status": status, "headline": headline, "message": message},
                  status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _site_error(request, 404, "Not found", "There is nothing here, or it is not yours to see.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _site_error(request, 500, "Something went wrong", "Please try again in a moment.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _site_error(request, 403, "Please try again",
                       "Your session expired or the form was sent from elsewhere. "
                       "Go back, reload the page and try again.")
