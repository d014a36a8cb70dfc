"""Who may do what with a service token."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import ApiToken


def token_may_act_for(token: ApiToken | None, user: Any) -> bool:
    """May this token read or write `user`'s data? An unscoped token acts for every user; a token
    with an owner only for that owner. No token, or no user: no."""
    if token is None or user is None or getattr(user, "pk", None) is None:
        return False
    return token.owner_id is None or token.owner_id == user.pk


class HasServiceToken(BasePermission):
    """The request came with a valid service token (else 401 not_authenticated)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiToken)


class TokenMayWrite(BasePermission):
    """Reads for any token; writes (any method but GET, HEAD, OPTIONS) only for a token that is
    not read-only: else 403 `read_only_token`."""

    message = "This token is read-only: it may read, not write."
    code = "read_only_token"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiToken):
            return False
        return request.method in SAFE_METHODS or not request.auth.read_only
