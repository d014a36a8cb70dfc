"""Published shares: publishing an imported project, the share page and its media.

POST /projects/<id>/publish turns a project into a share; GET /view/<share_id> is the
share page (og:/descript: meta tags, the "Send to partner" link); GET /media/<share_id>/...
serves the media, subtitles and transcript with byte ranges, 404 while "rendering".
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Request, Response

from .media import cues_from_lines, make_vtt, wav_duration
from .pages import page
from .state import FileResult, Project, Share

if TYPE_CHECKING:
    from .app import SandboxApp

MEDIA_FILES = ("audio.m4a", "video.mp4", "subtitles.vtt", "transcript.json")


def iso_z(ts: float) -> str:
    """`ts` as Descript writes times: 2024-05-01T12:00:00.000Z."""
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def estimate_duration(size: int, video: bool) -> float:
    # Assume 128 kbit/s audio or 2 Mbit/s video when the media cannot be parsed.
    return round(size / (250_000 if video else 16_000), 3)


def rendering(app: SandboxApp, share: Share) -> bool:
    """Whether the share's export is still rendering (its media not served yet)."""
    return app.clock() < share.published_at + share.render_seconds


def share_cues(share: Share) -> list[tuple[float, float, str]]:
    end = max(2.0, min(share.duration, 4.0))
    return cues_from_lines(
        [(0.0, end / 2, share.title), (end / 2, end, "This is a sandbox transcript.")]
    )


def share_vtt(share: Share) -> str:
    return make_vtt(share_cues(share))


# --------------------------------------------------------------------------- endpoints


def publish(app: SandboxApp, request: Request, project_id: str) -> Response:
    """POST /projects/<project_id>/publish: 303 to the new share page."""
    with app._lock:
        project = app._projects.get(project_id)
    if project is None:
        return page("Descript sandbox", "<h1>Not found</h1><p>There is no such project.</p>", 404)
    title = ""
    if request.is_json:
        payload = request.get_json(silent=True)
        if isinstance(payload, dict) and isinstance(payload.get("title"), str):
            title = payload["title"]
    else:
        title = request.form.get("title", "")
    title = title.strip() or project.default_title()
    source = next((f for f in project.files if f.fetched), None)
    if source is None:
        return page(
            "Descript sandbox",
            "<h1>Cannot publish</h1><p>No file of this project could be imported.</p>",
            409,
        )
    is_video = any(f.looks_video for f in project.files)
    share = build_share(app, project, source, title, is_video, app.config.render_seconds)
    with app._lock:
        app._shares[share.id] = share
    response = Response(status=303)
    response.headers["Location"] = app._share_url(share.id)
    return response


def build_share(
    app: SandboxApp,
    project: Project,
    source: FileResult,
    title: str,
    is_video: bool,
    render_seconds: float,
    share_id: str | None = None,
) -> Share:
    """A share of `project` serving `source`'s bytes (a new id, or `share_id` when republishing)."""
    if source.data is not None:
        media, seed = source.data, None
        duration = wav_duration(source.data) or estimate_duration(len(source.data), is_video)
    else:
        # Too big to have kept: stand in with a synthetic stream of the same size.
        media, seed = None, f"project:{project.id}"
        duration = estimate_duration(source.bytes_received, is_video)
    return Share(
        id=share_id or app._new_share_id(),
        title=title,
        partner=project.partner_drive_id or None,
        source=project.source_id,
        project_id=project.id,
        published_at=app.clock(),
        render_seconds=render_seconds,
        is_video=is_video,
        size=source.bytes_received,
        duration=duration,
        media=media,
        seed=seed,
    )


def view_page(app: SandboxApp, request: Request, share_id: str) -> Response:
    """GET /view/<share_id>: the share page the partner reads its meta tags from."""
    with app._lock:
        share = app._shares.get(share_id)
    if share is None:
        return page(
            "Descript sandbox — share",
            "<h1>Not found</h1><p>This share page does not exist.</p>",
            404,
        )
    e = html.escape
    share_url = app._share_url(share.id)
    metas = [("og:title", share.title), ("og:url", share_url)]
    if share.partner:
        metas.append(("descript:partner", share.partner))
    if share.source:
        metas.append(("descript:source", share.source))
    metas.append(("descript:audio", app._media_url(share.id, "audio.m4a")))
    if share.is_video:
        metas.append(("descript:video", app._media_url(share.id, "video.mp4")))
    metas.append(("descript:subtitles", app._media_url(share.id, "subtitles.vtt")))
    metas.append(("descript:transcript", app._media_url(share.id, "transcript.json")))
    head = "".join(f'<meta property="{p}" content="{e(v)}">\n' for p, v in metas)
    partner_url = app.config.partner_import_url
    send = partner_url + ("&" if "?" in partner_url else "?") + urlencode(
        {"title": share.title, "url": share_url}, quote_via=quote
    )
    state = "still rendering" if rendering(app, share) else "ready"
    primary = "video.mp4" if share.is_video else "audio.m4a"
    body = (
        f"<h1>{e(share.title)}</h1>\n"
        f'<p id="state" data-state="{"processing" if state != "ready" else "ready"}">'
        f"Published {e(iso_z(share.published_at))}; the export is {state}.</p>\n"
        f'<p><a href="{e(app._media_url(share.id, primary))}">Download</a></p>\n'
        f'<p><a id="send-to-partner" href="{e(send)}">Send to partner</a></p>'
    )
    return page(f"{share.title} — Descript sandbox", body, head=head)


def media_file(app: SandboxApp, request: Request, share_id: str, filename: str) -> Response:
    """GET /media/<share_id>/<filename>: one of MEDIA_FILES, Range-capable, 404 while rendering."""
    with app._lock:
        share = app._shares.get(share_id)
    if share is None or filename not in MEDIA_FILES or (filename == "video.mp4" and not share.is_video):
        return Response("Not found\n", status=404, mimetype="text/plain")
    if rendering(app, share):
        return Response("Not found: the export is still rendering\n", status=404, mimetype="text/plain")
    if filename in ("audio.m4a", "video.mp4"):
        ctype = "video/mp4" if filename == "video.mp4" else "audio/mp4"
        return ranged(request, share.size, share.chunks, ctype)
    if filename == "subtitles.vtt":
        data = share_vtt(share).encode("utf-8")
        ctype = "text/vtt; charset=utf-8"
    else:
        data = json.dumps(
            {
                "title": share.title,
                "segments": [{"start": s, "end": t, "text": x} for s, t, x in share_cues(share)],
            }
        ).encode("utf-8")
        ctype = "application/json"
    return ranged(request, len(data), lambda a, b: iter([data[a:b]]), ctype)


def ranged(
    request: Request,
    length: int,
    chunks: Callable[[int, int], Iterator[bytes]],
    content_type: str,
) -> Response:
    """Answer with the whole body (200) or one byte range (206), streamed."""
    rng = request.range
    start, end, status = 0, length, 200
    headers = {"Accept-Ranges": "bytes"}
    if rng is not None and rng.units == "bytes" and len(rng.ranges) == 1:
        span = rng.range_for_length(length)
        if span is None:
            headers["Content-Range"] = f"bytes */{length}"
            return Response(b"", status=416, headers=headers)
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{length}"
    # Multiple ranges are legal but nobody we imitate needs them: send the whole body.
    headers["Content-Length"] = str(end - start)
    return Response(
        chunks(start, end), status=status, content_type=content_type,
        headers=headers, direct_passthrough=True,
    )
