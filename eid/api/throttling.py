"""Per-token rate limits (DRF throttling): 429 `throttled` with `Retry-After`.

The scope is the view's `throttle_scope` when it names one, else `api_read` for GET, HEAD and
OPTIONS and `api_write` for the rest. Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
("N/second|minute|hour|day"); a scope without a rate is not limited. Counts live in Django's
default cache: a shared cache (Redis) makes the limit hold across processes.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken

READ_SCOPE = "api_read"
WRITE_SCOPE = "api_write"


class TokenRateThrottle(SimpleRateThrottle):
    scope_attr = "throttle_scope"

    def __init__(self) -> None:
        # The scope (so the rate) depends on the view and the method: known in allow_request.
        pass

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = getattr(view, self.scope_attr, None) or (
            READ_SCOPE if request.method in SAFE_METHODS else WRITE_SCOPE)
        # Read at each request (DRF's own THROTTLE_RATES is fixed at import): override_settings works.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.rate = str(rate) if rate else None
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None  # no token: authentication answers first
        return self.cache_format % {"scope": self.scope, "ident": f"token{request.auth.pk}"}
