"""`Idempotency-Key` for unsafe API requests, as the IETF httpapi draft describes it
(draft-ietf-httpapi-idempotency-key-header):

- the first request with a key runs, and its answer (status, body, Location) is kept for a day;
- a retry with the same key and the same request (method, path, body) gets that answer again,
  marked `Idempotent-Replayed: true`, and the view does not run again;
- the same key with another request: 422 `idempotency_key_reused`;
- a retry while the first is still running: 409 `idempotency_key_in_use` (a request that has been
  running longer than EID_API_IDEMPOTENCY_RUNNING_SECONDS is taken to have died, and a retry
  runs in its place);
- keys belong to one token: two tokens may use the same key for different requests;
- a request without the header runs as usual; a malformed key is 400 `invalid_idempotency_key`.

Answers that say nothing final are not kept, so a retry with the same key runs again: errors
raised by the view, 5xx, 408 and 429, and any answer marked `Cache-Control: no-store` (such as
a one-time link, which must never be stored). Bodies are compared after JSON parsing (key order
and spacing do not matter).

Rows expire EID_API_IDEMPOTENCY_TTL_SECONDS (24 h) after the first request: an expired key is
as good as new. They are purged when the same token next uses a key (its own expired rows, one
indexed DELETE), and all of them by `purge_expired()`, which `manage.py purge_idempotency_keys`
runs (daily from cron or a scheduler, for tokens that went quiet).

Usage, on a method of a DRF view (it also adds the header to the OpenAPI document; list
`*IDEMPOTENCY_CODES` in the view's documented errors)::

    class Bulk(APIView):
        @idempotent
        def post(self, request): ...
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from django.db import IntegrityError, transaction
from django.http import HttpResponseBase, QueryDict
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from ..conf import eid_settings
from .errors import ApiError
from .models import ApiToken, IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("Location",)
IDEMPOTENCY_CODES = ("invalid_idempotency_key", "idempotency_key_in_use", "idempotency_key_reused")

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False,
    description=(
        "Optional. A unique value of yours for this request (a UUID). Retrying with the same key and "
        "the same body replays the first answer; the same key with another body is 422; a retry "
        "while the first is still running is 409. Kept for 24 hours, per token."
    ),
)

V = TypeVar("V", bound=Callable[..., Any])


def _key_from(raw: str) -> str:
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the draft's sf-string form: "abc"
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or any(not 0x20 <= ord(c) <= 0x7E for c in key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return key


def fingerprint(request: Request) -> str:
    """What makes two requests the same one: method, path with query, and the body."""
    digest = hashlib.sha256(f"{request.method}\n{request.get_full_path()}\n".encode())
    data = request.data
    if isinstance(data, (dict, list)) and not isinstance(data, QueryDict):
        digest.update(json.dumps(data, sort_keys=True, separators=(",", ":"), cls=JSONEncoder).encode())
    else:
        digest.update(repr(sorted(data.lists()) if isinstance(data, QueryDict) else data).encode())
    return digest.hexdigest()


def _expires(now: datetime) -> datetime:
    return now + timedelta(seconds=eid_settings.EID_API_IDEMPOTENCY_TTL_SECONDS)


def _claim(token: ApiToken, key: str, print_: str, request: Request) -> tuple[IdempotencyKey, bool]:
    """The key's row, and whether this request owns it (runs the view)."""
    now = timezone.now()
    IdempotencyKey.objects.filter(token=token, expires_at__lte=now).delete()
    for _ in range(3):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    token=token, key=key, fingerprint=print_, method=request.method or "",
                    path=request.get_full_path()[:500], created_at=now, expires_at=_expires(now))
            return row, True
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(token=token, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try again
        if existing.fingerprint != print_ or existing.state == IdempotencyKey.State.DONE:
            return existing, False
        abandoned = now - timedelta(seconds=eid_settings.EID_API_IDEMPOTENCY_RUNNING_SECONDS)
        if existing.created_at < abandoned and IdempotencyKey.objects.filter(
                pk=existing.pk, state=IdempotencyKey.State.RUNNING, created_at=existing.created_at,
        ).update(created_at=now, expires_at=_expires(now)):
            existing.created_at = now
            return existing, True
        return existing, False
    raise ApiError(409, "idempotency_key_in_use",
                   f"A request with this {HEADER} is still running. Retry when it has finished.")


def _answer_for(row: IdempotencyKey, print_: str) -> Response:
    if row.fingerprint != print_:
        raise ApiError(422, "idempotency_key_reused",
                       f"This {HEADER} was used with another request. Use a new key for a new request.")
    if row.state != IdempotencyKey.State.DONE:
        raise ApiError(409, "idempotency_key_in_use",
                       f"A request with this {HEADER} is still running. Retry when it has finished.")
    data = json.loads(row.response_body) if row.response_body else None
    response = Response(data, status=row.status_code or 200, headers=dict(row.response_headers))
    response[REPLAYED_HEADER] = "true"
    return response


def _keepable(response: HttpResponseBase) -> bool:
    if not isinstance(response, Response):
        return False
    if response.status_code >= 500 or response.status_code in (408, 429):
        return False
    return "no-store" not in response.get("Cache-Control", "")


def _release(row: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=row.pk, state=IdempotencyKey.State.RUNNING).delete()


def _complete(row: IdempotencyKey, response: Response) -> None:
    body = "" if response.data is None else json.dumps(response.data, cls=JSONEncoder)
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    IdempotencyKey.objects.filter(pk=row.pk).update(
        state=IdempotencyKey.State.DONE, status_code=response.status_code, response_body=body,
        response_headers=headers, completed_at=timezone.now())


def idempotent(view_method: V) -> V:
    """Honour `Idempotency-Key` on a DRF view method (or a function view taking the request)."""

    @wraps(view_method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = next((a for a in args[:2] if isinstance(a, Request)), None)
        if request is None:
            raise TypeError("@idempotent wraps a DRF view method: no rest_framework Request among its arguments")
        raw = request.headers.get(HEADER)
        if raw is None or not isinstance(request.auth, ApiToken):
            return view_method(*args, **kwargs)
        key = _key_from(raw)
        print_ = fingerprint(request)
        row, owned = _claim(request.auth, key, print_, request)
        if not owned:
            return _answer_for(row, print_)
        try:
            response = view_method(*args, **kwargs)
        except BaseException:
            _release(row)
            raise
        if _keepable(response):
            _complete(row, response)
        else:
            _release(row)
        return response

    return cast(V, extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper))


def purge_expired(now: datetime | None = None) -> int:
    """Delete every expired key; how many went."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
