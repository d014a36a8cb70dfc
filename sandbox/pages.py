"""How the sandbox answers: the HTML page shell, JSON bodies and errors, and the index page.

Every endpoint module builds its responses with these, so HTML pages share one look and
JSON errors have Descript's `{"error": code, "message": text}` shape everywhere.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from .app import SandboxApp

_ERROR_CODES = {
    400: "invalid_input", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
    404: "not_found", 405: "method_not_allowed", 409: "conflict", 410: "gone",
    413: "payload_too_large", 429: "rate_limit_exceeded", 500: "internal",
    502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}

CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.4}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;"
    "text-align:left;font-size:.9rem}code{word-break:break-all}.failed{color:#a00}.ok{color:#070}"
)


def error_body(status: int, message: str | None = None) -> dict[str, str]:
    """Descript's error JSON for `status`: a code word and a message (the status phrase by default)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": _ERROR_CODES.get(status, "error"), "message": message or phrase}


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status=status, mimetype="application/json", headers=headers
    )


def json_error(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {**error_body(status, message), **extra})


def page(title: str, body: str, status: int = 200, head: str = "") -> Response:
    """A whole HTML document around `body` (already escaped HTML); `head` goes before the CSS."""
    doc = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n{head}<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return Response(doc, status=status, content_type="text/html; charset=utf-8")


def index(app: SandboxApp, request: Request) -> Response:
    """GET /"""
    return page(
        "Descript sandbox",
        "<h1>Descript sandbox</h1><p>An offline stand-in for Descript's API "
        "(<code>/v1</code>), import page and share pages. Nothing here is real.</p>",
    )
