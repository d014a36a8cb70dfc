"""The control plane (`/_sandbox/...`): what tests and benchmarks drive over HTTP.

Each endpoint is a thin JSON wrapper around one of SandboxApp's public methods. The app
never faults or records these paths.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .pages import json_error, json_response

if TYPE_CHECKING:
    from .app import SandboxApp


def _control_json(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object (an empty body is {}), or a 400 response saying why not."""
    try:
        payload = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        return json_error(400, "request body is not valid JSON")
    if not isinstance(payload, dict):
        return json_error(400, "request body must be a JSON object")
    return payload


def health(app: SandboxApp, request: Request) -> Response:
    """GET /_sandbox/health"""
    return json_response(200, {"ok": True, "public_url": app._base_url()})


def fault_rules(app: SandboxApp, request: Request) -> Response:
    """POST (add), GET (list) or DELETE (clear) /_sandbox/faults"""
    if request.method == "DELETE":
        return json_response(200, {"cleared": app.clear_faults()})
    if request.method == "GET":
        return json_response(200, app.faults())
    payload = _control_json(request)
    if isinstance(payload, Response):
        return payload
    try:
        return json_response(201, app.add_fault(**payload))
    except ValueError as exc:
        return json_error(400, str(exc))


def reset(app: SandboxApp, request: Request) -> Response:
    """POST /_sandbox/reset"""
    app.reset()
    return json_response(200, {"ok": True})


def recorded_requests(app: SandboxApp, request: Request) -> Response:
    """GET (list, `?path=` prefix) or DELETE (clear) /_sandbox/requests"""
    if request.method == "DELETE":
        app.clear_requests()
        return json_response(200, {"ok": True})
    return json_response(200, app.requests(request.args.get("path", "")))


def synthetic_share(app: SandboxApp, request: Request) -> Response:
    """POST /_sandbox/shares: `create_share` with the JSON body's keys, type-checked."""
    payload = _control_json(request)
    if isinstance(payload, Response):
        return payload
    allowed = {"title", "partner", "source", "media_bytes", "seed", "video",
               "render_seconds", "duration_seconds"}
    unknown = set(payload) - allowed
    if unknown:
        return json_error(400, f"unknown keys: {', '.join(sorted(unknown))}")
    checks: dict[str, type | tuple[type, ...]] = {
        "title": str, "partner": (str, type(None)), "source": (str, type(None)),
        "media_bytes": int, "seed": str, "video": bool,
        "render_seconds": (int, float), "duration_seconds": (int, float, type(None)),
    }
    for key, kind in checks.items():
        if key in payload and (
            not isinstance(payload[key], kind)
            or (kind is not bool and isinstance(payload[key], bool))
        ):
            return json_error(400, f"{key} has the wrong type")
    if payload.get("media_bytes", 0) < 0:
        return json_error(400, "media_bytes must be >= 0")
    return json_response(201, app.create_share(**payload))


def all_jobs(app: SandboxApp, request: Request) -> Response:
    """GET /_sandbox/jobs: every job (type, state, timeline, callback attempts), oldest first."""
    return json_response(200, app.jobs())


def job_settings(app: SandboxApp, request: Request) -> Response:
    """GET (read), POST (change some) or DELETE (back to the config's) /_sandbox/jobs/config"""
    if request.method == "GET":
        return json_response(200, app.job_settings())
    if request.method == "DELETE":
        return json_response(200, app.reset_job_settings())
    payload = _control_json(request)
    if isinstance(payload, Response):
        return payload
    try:
        return json_response(200, app.configure_jobs(**payload))
    except ValueError as exc:
        return json_error(400, str(exc))
