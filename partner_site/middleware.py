"""Middleware of the demo partner's own."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class OneThreadPerRequest:
    """Runs the whole middleware chain and the view in one thread under ASGI.

    Django builds its chain from the inside out and switches between sync and async at each
    middleware that cannot do both. WhiteNoise is sync-only and sits near the top, so without
    this the chain below it hopped between the event loop and threads at every middleware
    (about a third of the site's CPU in bench/click_load's profile). Being sync-only and last,
    this makes everything below the top a plain synchronous chain in the request's own thread:
    one hop per request. The views are synchronous anyway.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
