"""The partner's own pages: the library, a recording, downloads."""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from eid import storage

from .models import MediaFile, Recording, RecordingVersion, VersionAsset
from .options import download_options


def _recordings_for(user):
    return Recording.objects.filter(owner=user).prefetch_related(
        "files", Prefetch("versions", queryset=RecordingVersion.objects.prefetch_related("assets"))
    )


@login_required
def library(request: HttpRequest) -> HttpResponse:
    recordings = [(r, download_options(r)) for r in _recordings_for(request.user)]
    imports = request.user.returned_exports.select_related("recording")[:10]
    return render(request, "library/library.html", {"recordings": recordings, "imports": imports})


@login_required
def recording_detail(request: HttpRequest, recording_id: int) -> HttpResponse:
    recording = get_object_or_404(_recordings_for(request.user), pk=recording_id)
    return render(
        request, "library/recording.html", {"recording": recording, "options": download_options(recording)}
    )


@never_cache
@login_required
def download_file(request: HttpRequest, file_id: int) -> HttpResponse:
    """Pages link here, never to a signed URL: the short-lived URL is made at the click."""
    media = get_object_or_404(MediaFile, pk=file_id, recording__owner=request.user)
    return _redirect_to_object(media.key)


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


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return render(
        request,
        "eid/error.html",
        {"status": 404, "headline": "Not found", "message": "There is nothing here, or it is not yours to see."},
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "eid/error.html",
        {"status": 500, "headline": "Something went wrong", "message": "Please try again in a moment.", "retry": True},
        status=500,
    )
