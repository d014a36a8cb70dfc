"""Who is logging in from where: the client address django-axes counts failed logins against."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off  # type: ignore[import-untyped]
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost proxy saw.

    Each proxy appends the address it was connected from to X-Forwarded-For, so with N proxies
    the N-th entry from the right was written by the outermost one, ours; anything left of it came
    from the client and can be forged. With too few entries, the leftmost one is the best known.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None,
               credentials: dict | None = None) -> HttpResponse:
    """django-axes' answer to a locked-out login: a page in plain words, 429 Too Many Requests."""
    cool_off = get_cool_off(request)
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else None
    response = render(request, "registration/locked_out.html",
                      {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}, status=429)
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response
