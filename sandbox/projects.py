"""Descript's projects API (`/v1/projects`, `/v1/status`), the project page, and direct uploads.

Projects come from the jobs API (imports and agent runs that name a new project) and from
Edit in Descript imports; both are listed.
"""

from __future__ import annotations

import hmac
import html
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .api import authorized
from .jobchecks import make_cursor, parse_limit, parse_time, read_cursor
from .jobs import UNAUTHORIZED, project_url
from .pages import json_error, json_response, page
from .shares import iso_z
from .state import Project

if TYPE_CHECKING:
    from .app import SandboxApp

SORTS = ("name", "created_at", "updated_at", "last_viewed_at")


def _updated(project: Project) -> float:
    return project.updated_at if project.updated_at is not None else project.created_at


def _media_files(project: Project) -> dict[str, dict[str, Any]]:
    if project.media:
        out = {}
        for name, entry in project.media.items():
            if entry.status != "success":
                continue  # what failed to import is not in the project
            item: dict[str, Any] = {"type": entry.media_type()}
            if item["type"] != "image" and entry.duration is not None:
                item["duration"] = round(entry.duration, 3)
            out[name] = item
        return out
    return {
        (f.name or f"File {i + 1}"): {"type": "video" if f.looks_video else "audio"}
        for i, f in enumerate(project.files) if f.fetched
    }


def _compositions(project: Project) -> list[dict[str, Any]]:
    out = []
    for comp in project.compositions:
        entries = [project.media.get(c) for c in comp.clips]
        ok = [e for e in entries if e is not None and e.status == "success"]
        video = any(e.media_type() == "video" for e in ok)
        out.append({
            "id": comp.id,
            "name": comp.name,
            "duration": round(sum(e.duration or 0.0 for e in ok), 3),
            "media_type": "video" if video else "audio",
        })
    return out


def list_projects(app: SandboxApp, request: Request) -> Response:
    """GET /v1/projects: filters name, folder_path, created_*/updated_*, sort, direction, cursor, limit."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    args = request.args
    bounds: dict[str, float] = {}
    for bound in ("created_after", "created_before", "updated_after", "updated_before"):
        if args.get(bound) is not None:
            parsed = parse_time(args[bound])
            if parsed is None:
                return json_error(400, f"{bound} must be an ISO 8601 timestamp")
            bounds[bound] = parsed
    sort = args.get("sort", "created_at")
    if sort not in SORTS:
        return json_error(400, f'"sort" must be one of [{", ".join(SORTS)}]')
    direction = args.get("direction", "desc")
    if direction not in ("asc", "desc"):
        return json_error(400, '"direction" must be one of [asc, desc]')
    limit = parse_limit(args.get("limit"))
    if limit is None:
        return json_error(400, "limit must be an integer from 1 to 100")
    offset = 0
    if args.get("cursor") is not None:
        found = read_cursor("projects", args["cursor"])
        if found is None:
            return json_error(400, "Invalid cursor")
        offset = found
    name = (args.get("name") or "").lower()
    folder = args.get("folder_path")
    with app._lock:
        projects = list(app._projects.values())
    chosen = [
        p for p in projects
        if name in p.display_name().lower()
        and (folder is None or p.folder_path == folder.strip("/"))
        and p.created_at >= bounds.get("created_after", float("-inf"))
        and p.created_at <= bounds.get("created_before", float("inf"))
        and _updated(p) >= bounds.get("updated_after", float("-inf"))
        and _updated(p) <= bounds.get("updated_before", float("inf"))
    ]

    def key(p: Project) -> tuple[Any, str]:
        if sort == "name":
            return (p.display_name().lower(), p.id)
        return (_updated(p) if sort in ("updated_at", "last_viewed_at") else p.created_at, p.id)

    chosen.sort(key=key, reverse=direction == "desc")
    page_items = chosen[offset : offset + limit]
    data = [
        {"id": p.id, "name": p.display_name(), "created_at": iso_z(p.created_at), "updated_at": iso_z(_updated(p))}
        for p in page_items
    ]
    more = offset + limit < len(chosen)
    pagination = {"next_cursor": make_cursor("projects", offset + limit)} if more else {}
    return json_response(200, {"data": data, "pagination": pagination})


def get_project(app: SandboxApp, request: Request, project_id: str) -> Response:
    """GET /v1/projects/<project_id>: the project with its media files and compositions."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    with app._lock:
        project = app._projects.get(project_id)
        if project is None:
            return json_error(404, "Project not found")
        payload = {
            "id": project.id,
            "name": project.display_name(),
            "drive_id": app.config.drive_id,
            "created_at": iso_z(project.created_at),
            "updated_at": iso_z(_updated(project)),
            "media_files": _media_files(project),
            "compositions": _compositions(project),
        }
    return json_response(200, payload)


def api_status(app: SandboxApp, request: Request) -> Response:
    """GET /v1/status: {"status": "ok"} for a valid token."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    return json_response(200, {"status": "ok"})


def project_page(app: SandboxApp, request: Request, project_id: str) -> Response:
    """GET /projects/<project_id>: what `project_url` opens (a plain summary)."""
    with app._lock:
        project = app._projects.get(project_id)
        if project is None:
            return page("Descript sandbox", "<h1>Not found</h1><p>There is no such project.</p>", 404)
        media = _media_files(project)
        comps = _compositions(project)
        edits = list(project.edits)
        title = project.display_name()
    e = html.escape
    rows = "".join(f'<li class="media" data-name="{e(n)}">{e(n)} ({e(m["type"])})</li>' for n, m in media.items())
    comp_rows = "".join(f'<li class="composition" data-id="{e(c["id"])}">{e(c["name"])}</li>' for c in comps)
    edit_rows = "".join(f'<li class="edit">{e(x)}</li>' for x in edits)
    body = (
        f"<h1>{e(title)}</h1>\n<h2>Media</h2><ul>{rows}</ul>\n"
        f"<h2>Compositions</h2><ul>{comp_rows}</ul>\n<h2>Agent edits</h2><ul>{edit_rows}</ul>"
    )
    return page(f"{title} — Descript sandbox", body)


def receive_upload(app: SandboxApp, request: Request, upload_id: str) -> Response:
    """PUT /uploads/<upload_id>?Signature=: a direct upload's bytes (the signed URL from upload_urls)."""
    signature = request.args.get("Signature", "")
    with app._lock:
        upload = app._uploads.get(upload_id)
    if upload is None:
        return Response("Not found\n", status=404, mimetype="text/plain")
    if not hmac.compare_digest(signature.encode(), upload.signature.encode()):
        return Response("Signature does not match\n", status=403, mimetype="text/plain")
    if app.clock() > upload.expires_at:
        return Response("Request has expired\n", status=403, mimetype="text/plain")
    data = request.get_data()
    with app._lock:
        upload.data = data
        upload.received_content_type = request.content_type or ""
    return Response(status=200)


__all__ = ["api_status", "get_project", "list_projects", "project_page", "project_url", "receive_upload"]
