"""The import page: opening an import link fetches every partner file, like Descriptbot.

GET /import?nonce= works once and for 3 hours. It fetches the files in parallel (the
Descriptbot user agent, `Range: bytes=0-`, at most `fetch_timeout` seconds each), checks
how long presigned URLs stay valid, and shows one row per file plus the Publish form.
"""

from __future__ import annotations

import hashlib
import html
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import requests as _requests
from werkzeug.wrappers import Request, Response

from .pages import page
from .state import FileResult, Project

if TYPE_CHECKING:
    from .app import SandboxApp

IMPORT_LINK_TTL = 3 * 3600  # Descript: import links expire after 3 hours.
MIN_URL_VALIDITY_HOURS = 47.0  # Descript asks for ~48 h; allow an hour of slack.
KEEP_BYTES_CAP = 64 << 20  # keep imported media in memory up to this size per file
DESCRIPTBOT_UA = "Descriptbot/1.0"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")


def presigned_hours_left(url: str, now: float) -> float | None:
    """Hours until a presigned URL expires, read from the URL itself; None if it is not presigned.

    Understands AWS SigV4 (X-Amz-Date + X-Amz-Expires), the same scheme on GCS
    (X-Goog-Date + X-Goog-Expires) and legacy SigV2 (Expires=<epoch>).
    """
    params = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    for prefix in ("x-amz-", "x-goog-"):
        date, expires = params.get(prefix + "date"), params.get(prefix + "expires")
        if date and expires:
            try:
                signed = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
                return (signed.timestamp() + int(expires) - now) / 3600.0
            except ValueError:
                return None
    if "expires" in params and ("awsaccesskeyid" in params or "signature" in params):
        try:
            return (int(params["expires"]) - now) / 3600.0
        except ValueError:
            return None
    return None


def _looks_video(content_type: str, *names: str) -> bool:
    if content_type.lower().startswith("video/"):
        return True
    return any(n.lower().endswith(VIDEO_SUFFIXES) for n in names if n)


# --------------------------------------------------------------------------- endpoint


def import_page(app: SandboxApp, request: Request) -> Response:
    """GET /import?nonce=: use up the link, fetch every file, show the results."""
    nonce = request.args.get("nonce", "")
    now = app.clock()
    with app._lock:
        pending = app._imports.get(nonce)
        problem = None
        if pending is None:
            problem = (404, "unknown", "This import link is not valid.")
        elif pending.used_at is not None:
            problem = (410, "used", "This import link was already used. Ask for a new one.")
        elif now - pending.created_at > IMPORT_LINK_TTL:
            problem = (410, "expired", "This import link has expired. Ask for a new one.")
        else:
            pending.used_at = now  # a link works once: the first visit uses it
    if problem:
        status, reason, text = problem
        return page(
            "Descript sandbox — import",
            "<h1>Descript sandbox — import</h1>\n"
            f'<p id="import-error" data-reason="{reason}">{html.escape(text)}</p>',
            status=status,
        )
    assert pending is not None
    results = fetch_all(app, pending.files)
    project = Project(
        id=str(uuid.uuid4()),
        partner_drive_id=pending.partner_drive_id,
        source_id=pending.source_id,
        files=results,
        created_at=now,
    )
    with app._lock:
        app._projects[project.id] = project
    return render_import(app, project)


# --------------------------------------------------------------------------- fetching


def fetch_all(app: SandboxApp, files: list[dict[str, Any]]) -> list[FileResult]:
    """Fetch every file of a schema in parallel (up to 8 at once), results in schema order."""
    with ThreadPoolExecutor(max_workers=min(8, len(files)), thread_name_prefix="descriptbot") as pool:
        return list(pool.map(lambda spec: fetch_file(app, spec), files))


def fetch_file(app: SandboxApp, spec: dict[str, Any]) -> FileResult:
    """Fetch one partner file the way Descript does: Descriptbot UA, a Range request."""
    uri = spec["uri"]
    result = FileResult(
        name=spec.get("name") or "",
        uri=uri,
        start_offset=float((spec.get("start_offset") or {}).get("seconds", 0.0)),
        hours_left=presigned_hours_left(uri, app.clock()),
    )
    timeout = app.config.fetch_timeout
    deadline = time.monotonic() + timeout
    digest = hashlib.sha256()
    kept: list[bytes] | None = []
    try:
        with _requests.get(
            uri,
            headers={
                "User-Agent": DESCRIPTBOT_UA,
                "Range": "bytes=0-",
                "Accept-Encoding": "identity",  # hash the stored bytes, not a decoding
            },
            timeout=(timeout, timeout),
            stream=True,
            allow_redirects=True,
        ) as resp:
            result.http_status = resp.status_code
            result.content_type = resp.headers.get("Content-Type", "")
            good_status = resp.status_code in (200, 206)
            for piece in resp.raw.stream(64 * 1024, decode_content=False):
                digest.update(piece)
                result.bytes_received += len(piece)
                if kept is not None:
                    if result.bytes_received <= KEEP_BYTES_CAP:
                        kept.append(piece)
                    else:
                        kept = None  # too big to keep: digest and size only
                if not good_status and result.bytes_received > 64 * 1024:
                    break  # an error page; no need to read all of it
                if time.monotonic() > deadline:
                    raise _requests.Timeout(f"took longer than {timeout:g} s")
    except _requests.Timeout:
        result.reason = f"timed out after {timeout:g} s"
    except _requests.RequestException as exc:
        result.reason = f"could not fetch: {type(exc).__name__}"
    except Exception as exc:  # urllib3 errors surfacing from raw.stream
        result.reason = f"could not fetch: {type(exc).__name__}"
    result.sha256 = digest.hexdigest()
    path = urlsplit(uri).path
    result.looks_video = _looks_video(result.content_type, path, result.name)
    if result.reason:
        return result
    if result.http_status not in (200, 206):
        result.reason = f"answered HTTP {result.http_status}"
    elif result.bytes_received == 0:
        result.reason = "answered with an empty body"
    else:
        result.fetched = True
        result.data = b"".join(kept) if kept is not None else None
        if result.hours_left is not None and result.hours_left <= 0:
            result.reason = "the URL has expired"
        elif result.hours_left is not None and result.hours_left < MIN_URL_VALIDITY_HOURS:
            result.reason = (
                f"expires too soon: {result.hours_left:.1f} h left, "
                "Descript needs about 48 h for retries"
            )
        else:
            result.ok = True
    return result


# --------------------------------------------------------------------------- the page


def render_import(app: SandboxApp, project: Project) -> Response:
    """The import page: one row per file (data-* attributes for tests) and the Publish form."""
    rows = []
    for f in project.files:
        status = "ok" if f.ok else "failed"
        hours = "unknown" if f.hours_left is None else f"{f.hours_left:.1f}"
        rows.append(
            f'<tr class="file" data-name="{html.escape(f.name)}" data-status="{status}" '
            f'data-bytes="{f.bytes_received}" data-sha256="{f.sha256}" '
            f'data-http-status="{f.http_status or ""}" data-hours-left="{hours}" '
            f'data-content-type="{html.escape(f.content_type)}" data-reason="{html.escape(f.reason)}">'
            f"<td>{html.escape(f.name or '(no name)')}</td><td>{f.start_offset:g} s</td>"
            f"<td>{f.http_status or '-'}</td><td>{f.bytes_received}</td>"
            f"<td><code>{f.sha256}</code></td><td>{html.escape(f.content_type or '-')}</td>"
            f"<td>{hours}</td>"
            f'<td class="{status}">{"OK" if f.ok else "Failed: " + html.escape(f.reason)}</td></tr>'
        )
    all_ok = all(f.ok for f in project.files)
    n_ok = sum(f.ok for f in project.files)
    summary = (
        f"All {len(project.files)} files were imported."
        if all_ok
        else f"{n_ok} of {len(project.files)} files were imported; see the reasons above."
    )
    publishable = any(f.fetched for f in project.files)
    default_title = project.default_title()
    if publishable:
        form = (
            "<h2>Publish</h2>\n"
            f'<form id="publish" method="post" action="{app._base_url()}/projects/{project.id}/publish">\n'
            f'<label>Title <input name="title" value="{html.escape(default_title)}"></label>\n'
            '<button type="submit">Publish</button>\n</form>'
        )
    else:
        form = "<p>Nothing could be imported, so there is nothing to publish.</p>"
    body = (
        "<h1>Descript sandbox — import</h1>\n"
        f'<p id="project" data-project-id="{project.id}">Project <code>{project.id}</code>, '
        f"drive <code>{html.escape(project.partner_drive_id)}</code>"
        + (f", source <code>{html.escape(project.source_id)}</code>" if project.source_id else "")
        + ".</p>\n<table>\n<tr><th>Name</th><th>Start</th><th>HTTP</th><th>Bytes</th>"
        "<th>SHA-256</th><th>Type</th><th>Hours valid</th><th>Result</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
        f'<p id="import-result" data-ok="{"true" if all_ok else "false"}">{summary}</p>\n'
        + form
    )
    return page("Descript sandbox — import", body)
