"""One JSON shape for every API error, whatever raised it:

    {"code": "<stable code>", "detail": "<plain words>"}
    {"code": "invalid", "detail": "...", "errors": {"field": ["..."], ...}}   (validation)

`api_exception_handler` is REST_FRAMEWORK["EXCEPTION_HANDLER"]; it keeps DRF's status codes and
headers (WWW-Authenticate on 401, Retry-After on 429, rounded up). Raise `ApiError` for an
error of your own. `ERROR_CODES` lists the codes every endpoint may answer; `error_responses()`
documents a view's codes in the OpenAPI document, one example per code.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    detail: str  # what the example in the document says


def _codes(*items: ErrorCode) -> dict[str, ErrorCode]:
    return {item.code: item for item in items}


ERROR_CODES: dict[str, ErrorCode] = _codes(
    ErrorCode("invalid", 400, "Some fields are not valid: recording."),
    ErrorCode("parse_error", 400, "The body is not valid JSON."),
    ErrorCode("invalid_idempotency_key", 400, "Idempotency-Key must be 1 to 255 printable ASCII characters."),
    ErrorCode("not_authenticated", 401, "Send a service token: Authorization: Bearer <token>."),
    ErrorCode("invalid_token", 401, "This token is not valid."),
    ErrorCode("revoked_token", 401, "This token was revoked."),
    ErrorCode("inactive_owner", 401, "This token's owner is deactivated."),
    ErrorCode("read_only_token", 403, "This token is read-only: it may read, not write."),
    ErrorCode("permission_denied", 403, "This token may not do that."),
    ErrorCode("not_found", 404, "Not found."),
    ErrorCode("method_not_allowed", 405, 'Method "DELETE" not allowed.'),
    ErrorCode("not_acceptable", 406, "This address answers application/json only."),
    ErrorCode("idempotency_key_in_use", 409,
              "A request with this Idempotency-Key is still running. Retry when it has finished."),
    ErrorCode("unsupported_media_type", 415, 'Unsupported media type "text/plain" in request.'),
    ErrorCode("idempotency_key_reused", 422,
              "This Idempotency-Key was used with another request. Use a new key for a new request."),
    ErrorCode("throttled", 429, "Request was throttled. Expected available in 12 seconds."),
    ErrorCode("server_error", 500, "Something went wrong on our side. It has been logged."),
)

# Any authenticated endpoint may answer these.
COMMON_CODES = ("not_authenticated", "invalid_token", "revoked_token", "inactive_owner", "throttled")
WRITE_CODES = ("read_only_token", "parse_error", "unsupported_media_type")

_FIXED_DETAILS = {
    "not_authenticated": ERROR_CODES["not_authenticated"].detail,
    "server_error": ERROR_CODES["server_error"].detail,
}


class ApiError(exceptions.APIException):
    """An error with our own code: `raise ApiError(422, "missing", "The file ... is not in storage.")`."""

    def __init__(self, status_code: int, code: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.headers = headers or {}


class ErrorSerializer(serializers.Serializer):
    """The one error shape (for the OpenAPI document)."""

    code = serializers.CharField(help_text="Stable, machine-readable: see each response's examples.")
    detail = serializers.CharField(help_text="Plain words, for a person.")
    errors = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.errors
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Validation errors only: each field's messages (non_field_errors for the whole body).")


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _messages(value: Any) -> Any:
    """DRF's nested error details as plain strings, lists and dicts."""
    if isinstance(value, dict):
        return {str(k): _messages(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_messages(v) for v in value]
    return str(value)


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = _messages(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors if isinstance(errors, list) else [errors]}
        fields = ", ".join(errors)
        return {"code": "invalid", "detail": f"Some fields are not valid: {fields}.", "errors": errors}
    code = _code_of(exc)
    detail = exc.detail
    if isinstance(detail, (list, dict)):
        text = "; ".join(str(v) for v in (detail.values() if isinstance(detail, dict) else detail))
    else:
        text = str(detail)
    return {"code": code, "detail": _FIXED_DETAILS.get(code, text)}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error as {"code", "detail"[, "errors"]}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        # A bug: logged with its traceback, answered in the same shape (no HTML page, no trace).
        log.error("API request failed: %s", context.get("view").__class__.__name__, exc_info=exc)
        set_rollback()
        response = Response({"code": "server_error", "detail": _FIXED_DETAILS["server_error"]},
                            status=status.HTTP_500_INTERNAL_SERVER_ERROR)
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    headers: dict[str, str] = dict(getattr(exc, "headers", None) or {})
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    set_rollback()
    return Response(error_body(exc), status=exc.status_code, headers=headers)


def error_responses(*codes: str | ErrorCode) -> dict[int, OpenApiResponse]:
    """The OpenAPI responses for these error codes: one per status, an example per code."""
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for item in codes:
        error = ERROR_CODES[item] if isinstance(item, str) else item
        if error not in by_status[error.status]:
            by_status[error.status].append(error)
    responses = {}
    for status_code, errors in sorted(by_status.items()):
        examples = []
        for error in errors:
            value: dict[str, Any] = {"code": error.code, "detail": error.detail}
            if error.code == "invalid":
                value["errors"] = {"recording": ["This field is required."]}
            examples.append(OpenApiExample(error.code, value=value, response_only=True, status_codes=[status_code]))
        responses[status_code] = OpenApiResponse(
            ErrorSerializer, description="Codes: " + ", ".join(f"`{e.code}`" for e in errors), examples=examples)
    return responses


_RESPONSE_HEADERS = {
    401: OpenApiParameter("WWW-Authenticate", str, OpenApiParameter.HEADER, response=[401],
                          description='Bearer realm="api"'),
    429: OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429, 503],
                          description="Seconds to wait before trying again (429 always; 503 when Descript is "
                                      "rate limiting us)."),
}
CACHE_CONTROL_NO_STORE = OpenApiParameter(
    "Cache-Control", str, OpenApiParameter.HEADER, response=[201],
    description="no-store (with no-cache, max-age=0, private): the answer is never cached.")


def error_headers(*statuses: int) -> list[OpenApiParameter]:
    """The response headers documented with these error statuses (401: WWW-Authenticate; 429/503:
    Retry-After), for a view's `extend_schema(parameters=...)`."""
    wanted = {429 if s == 503 else s for s in statuses}
    return [header for status_code, header in _RESPONSE_HEADERS.items() if status_code in wanted]
