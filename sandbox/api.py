"""Descript's API (`/v1`): the Edit in Descript schema POST and published_projects.

Both need `Authorization: Bearer <token>` and answer with Descript's status codes and
JSON error shapes.
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .jobchecks import is_http_url, is_uuid
from .pages import json_error, json_response
from .shares import iso_z, rendering, share_vtt
from .state import PendingImport

if TYPE_CHECKING:
    from .app import SandboxApp


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def validate_schema_body(body: Any) -> str | None:
    """What is wrong with an Edit in Descript POST body, or None if it is valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if "partner_drive_id" not in body:
        return "partner_drive_id is required"
    if not is_uuid(body["partner_drive_id"]):
        return "partner_drive_id must be a UUID string"
    schema = body.get("project_schema")
    if schema is None:
        return "project_schema is required"
    if not isinstance(schema, dict):
        return "project_schema must be an object"
    if "schema_version" not in schema:
        return "project_schema.schema_version is required"
    if schema["schema_version"] != "1.0.0":
        return 'project_schema.schema_version must be "1.0.0"'
    if "source_id" in schema and not isinstance(schema["source_id"], str):
        return "project_schema.source_id must be a string"
    files = schema.get("files")
    if files is None:
        return "project_schema.files is required"
    if not isinstance(files, list) or not files:
        return "project_schema.files must be a non-empty list"
    for i, f in enumerate(files):
        where = f"project_schema.files[{i}]"
        if not isinstance(f, dict):
            return f"{where} must be an object"
        if "uri" not in f:
            return f"{where}.uri is required"
        if not is_http_url(f["uri"]):
            return f"{where}.uri must be an http or https URL"
        if "name" in f and not isinstance(f["name"], str):
            return f"{where}.name must be a string"
        if "start_offset" in f:
            so = f["start_offset"]
            if not isinstance(so, dict):
                return f"{where}.start_offset must be an object"
            sec = so.get("seconds")
            if isinstance(sec, bool) or not isinstance(sec, (int, float)):
                return f"{where}.start_offset.seconds must be a number"
            if sec < 0:
                return f"{where}.start_offset.seconds must be >= 0"
    return None


def authorized(app: SandboxApp, request: Request) -> bool:
    """Whether the request carries the configured bearer token (compared in constant time)."""
    header = request.headers.get("Authorization", "")
    expected = f"Bearer {app.config.api_token}"
    return hmac.compare_digest(header.encode("utf-8"), expected.encode("utf-8"))


# --------------------------------------------------------------------------- endpoints


def create_import_link(app: SandboxApp, request: Request) -> Response:
    """POST /v1/edit_in_descript/schema: 201 with a one-time import link."""
    if not authorized(app, request):
        return json_error(401, "Missing or invalid authentication token")
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        return json_error(400, "request body is not valid JSON")
    problem = validate_schema_body(body)
    if problem:
        return json_error(400, problem)
    if body["partner_drive_id"].lower() != app.config.drive_id.lower():
        return json_error(403, "Associated drive does not have Edit in Descript permissions")
    schema = body["project_schema"]
    nonce = str(uuid.uuid4())
    pending = PendingImport(
        nonce=nonce,
        partner_drive_id=body["partner_drive_id"],
        source_id=schema.get("source_id"),
        files=[dict(f) for f in schema["files"]],
        created_at=app.clock(),
    )
    with app._lock:
        app._imports[nonce] = pending
    return json_response(201, {"url": f"{app._base_url()}/import?nonce={nonce}"})


def published_project(app: SandboxApp, request: Request, slug: str) -> Response:
    """GET /v1/published_projects/<slug>: 409 `processing` while rendering, then metadata."""
    if not authorized(app, request):
        return json_error(401, "Missing or invalid authentication token")
    with app._lock:
        share = app._shares.get(slug)
    if share is None:
        return json_error(404, "Published project not found")
    if rendering(app, share):
        return json_error(409, "Published in invalid state", state="processing")
    primary = "video.mp4" if share.is_video else "audio.m4a"
    return json_response(
        200,
        {
            "project_id": share.project_id,
            "publish_type": "video" if share.is_video else "audio",
            "privacy": "unlisted",
            "metadata": {
                "title": share.title,
                "duration_seconds": round(share.duration, 3),
                "duration_formatted": _hms(share.duration),
                "published_at": iso_z(share.published_at),
                "published_by": {"first_name": "Sandbox", "last_name": "User"},
            },
            "subtitles": share_vtt(share),
            "download_url": app._media_url(share.id, primary),
            "download_url_expires_at": iso_z(app.clock() + 3600),
        },
    )
