"""Service tokens: `Authorization: Bearer <key>`, the only authentication the API accepts.

No session or cookie: a browser signed in to the site is nobody to the API (and so no CSRF).
`request.auth` is the `ApiToken` row; `request.user` is the token's owner, or for a token that
acts for every user a `ServiceUser` (authenticated, but no user row: filter by the token's
scope with `eid.api.permissions.token_may_act_for`, never by `request.user`).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .models import ApiToken, hash_key

KEYWORD = "Bearer"
MAX_KEY_LENGTH = 200


class ServiceUser:
    """`request.user` for an unscoped token: the pipeline itself, acting for every user."""

    pk = None
    id = None
    username = ""
    is_active = True
    is_staff = False
    is_superuser = False
    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"token {self.token.name}"

    def get_username(self) -> str:
        return ""

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def token_of(request: Request) -> ApiToken:
    """The request's service token, typed (DRF types `request.auth` loosely); 401 if there is none."""
    if not isinstance(request.auth, ApiToken):
        raise exceptions.NotAuthenticated()
    return request.auth


class ServiceTokenAuthentication(BaseAuthentication):
    """Bearer service tokens. Missing: 401 `not_authenticated`; unknown or malformed: 401
    `invalid_token`; revoked: 401 `revoked_token`; owner deactivated: 401 `inactive_owner`."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # no credentials of ours: the permission check answers 401 not_authenticated
        if len(parts) != 2 or len(parts[1]) > MAX_KEY_LENGTH:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>', one token without spaces.", code="invalid_token")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("This token is not valid.", code="invalid_token") from None
        token = ApiToken.objects.select_related("owner").filter(digest=hash_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("This token is not valid.", code="invalid_token")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.", code="revoked_token")
        if token.owner is not None and not token.owner.is_active:
            raise exceptions.AuthenticationFailed("This token's owner is deactivated.", code="inactive_owner")
        token.touch()
        return (token.owner if token.owner is not None else ServiceUser(token)), token

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'
