"""The sandbox WSGI app: an offline stand-in for Descript's API, import page and share pages.

Plain werkzeug on purpose: the Django site must never import this package, and the
sandbox must run anywhere the virtualenv does. All state lives in memory behind one
lock; network I/O (fetching partner files, sleeping for faults, streaming media) always
happens outside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import secrets
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests as _requests
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .media import cues_from_lines, make_vtt, synthetic_chunks, synthetic_sha256, wav_duration

log = logging.getLogger("sandbox")

IMPORT_LINK_TTL = 3 * 3600  # Descript: import links expire after 3 hours.
MIN_URL_VALIDITY_HOURS = 47.0  # Descript asks for ~48 h; allow an hour of slack.
KEEP_BYTES_CAP = 64 << 20  # keep imported media in memory up to this size per file
DESCRIPTBOT_UA = "Descriptbot/1.0"
MAX_RECORDED = 10_000  # bounded so long benchmark runs do not grow memory forever
MEDIA_FILES = ("audio.m4a", "video.mp4", "subtitles.vtt", "transcript.json")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")
_SHARE_ALPHABET = string.ascii_letters + string.digits

_FAULT_KEYS = {
    "path", "method", "times", "latency_ms", "status", "body", "content_type",
    "headers", "hang_seconds", "body_size", "throttle_bps", "redirect_to", "body_b64",
}

_ERROR_CODES = {
    400: "invalid_input", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
    404: "not_found", 405: "method_not_allowed", 409: "conflict", 410: "gone",
    413: "payload_too_large", 429: "rate_limit_exceeded", 500: "internal",
    502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}


@dataclass
class SandboxConfig:
    api_token: str
    drive_id: str
    partner_import_url: str
    render_seconds: float = 5.0
    public_url: str = ""
    # How long the import page waits for one partner file (per read and in total).
    fetch_timeout: float = 30.0


class _Request(Request):
    # API bodies are small JSON; anything bigger is a client bug, not a reason to buffer.
    max_content_length = 10 << 20


@dataclass
class _PendingImport:
    nonce: str
    partner_drive_id: str
    source_id: str | None
    files: list[dict[str, Any]]
    created_at: float
    used_at: float | None = None


@dataclass
class _FileResult:
    name: str
    uri: str
    start_offset: float
    http_status: int | None = None
    bytes_received: int = 0
    sha256: str = ""
    content_type: str = ""
    hours_left: float | None = None
    fetched: bool = False  # answered 200/206 with a body
    ok: bool = False  # fetched, and the URL stays valid long enough
    reason: str = ""
    looks_video: bool = False
    data: bytes | None = field(default=None, repr=False)


@dataclass
class _Project:
    id: str
    partner_drive_id: str
    source_id: str | None
    files: list[_FileResult]
    created_at: float


@dataclass
class _Share:
    id: str
    title: str
    partner: str | None
    source: str | None
    project_id: str
    published_at: float
    render_seconds: float
    is_video: bool
    size: int
    duration: float
    media: bytes | None = field(default=None, repr=False)  # real bytes, or ...
    seed: str | None = None  # ... a synthetic stream of `size` bytes

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of the published media, streamed in 1 MiB pieces."""
        if self.media is not None:
            view = memoryview(self.media)
            for pos in range(start, end, 1 << 20):
                yield bytes(view[pos : min(end, pos + (1 << 20))])
        else:
            yield from synthetic_chunks(self.seed or "", end, start=start)


# --------------------------------------------------------------------------- helpers


def _iso_z(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


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


def validate_schema_body(body: Any) -> str | None:
    """What is wrong with an Edit in Descript POST body, or None if it is valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if "partner_drive_id" not in body:
        return "partner_drive_id is required"
    if not _is_uuid(body["partner_drive_id"]):
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
        if not _is_http_url(f["uri"]):
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


def _normalize_fault(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - _FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {"path": rule.get("path", "/")}
    if not isinstance(out["path"], str) or not out["path"].startswith("/"):
        raise ValueError("path must be a string starting with /")

    def number(key: str, minimum: float, integer: bool = False) -> None:
        if rule.get(key) is None:
            return
        v = rule[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise ValueError(f"{key} must be {'an integer' if integer else 'a number'}")
        if v < minimum:
            raise ValueError(f"{key} must be >= {minimum}")
        out[key] = v

    if rule.get("method") is not None:
        if not isinstance(rule["method"], str):
            raise ValueError("method must be a string")
        out["method"] = rule["method"].upper()
    number("times", 1, integer=True)
    number("latency_ms", 0)
    number("status", 100, integer=True)
    if "status" in out and out["status"] > 599:
        raise ValueError("status must be <= 599")
    number("hang_seconds", 0)
    number("body_size", 0, integer=True)
    number("throttle_bps", 1, integer=True)
    for key in ("body", "content_type", "redirect_to"):
        if rule.get(key) is not None:
            if not isinstance(rule[key], str):
                raise ValueError(f"{key} must be a string")
            out[key] = rule[key]
    if rule.get("body_b64") is not None:
        # Raw bytes (e.g. invalid UTF-8) that a JSON control request cannot carry as text.
        try:
            out["body"] = base64.b64decode(rule["body_b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError("body_b64 must be base64") from None
    if rule.get("headers") is not None:
        hdrs = rule["headers"]
        if not isinstance(hdrs, dict) or not all(isinstance(k, str) for k in hdrs):
            raise ValueError("headers must be an object of strings")
        out["headers"] = {k: str(v) for k, v in hdrs.items()}
    return out


def _error_body(status: int, message: str | None = None) -> dict[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": _ERROR_CODES.get(status, "error"), "message": message or phrase}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status=status, mimetype="application/json", headers=headers
    )


def _json_error(status: int, message: str, **extra: Any) -> Response:
    return _json(status, {**_error_body(status, message), **extra})


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.4}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;"
    "text-align:left;font-size:.9rem}code{word-break:break-all}.failed{color:#a00}.ok{color:#070}"
)


def _page(title: str, body: str, status: int = 200, head: str = "") -> Response:
    doc = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n{head}<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return Response(doc, status=status, content_type="text/html; charset=utf-8")


def _throttled(chunks: Iterable[bytes], bps: int, stop: threading.Event) -> Iterator[bytes]:
    """Re-emit `chunks` in small pieces at no more than `bps` bytes per second."""
    piece = max(256, min(16384, bps // 20))  # ~20 writes a second: smooth, not chatty
    started = time.monotonic()
    sent = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for i in range(0, len(view), piece):
                delay = started + sent / bps - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return  # server is stopping
                part = bytes(view[i : i + piece])
                yield part
                sent += len(part)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()


def _filler(size: int) -> Iterator[bytes]:
    block = (b"<!-- sandbox filler -->\n" * 2731)[: 64 * 1024]
    left = size
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n


def _default_title(project: _Project) -> str:
    """What the Publish form suggests: "Edited: Host + Guest 1" (a multitrack set names every track)."""
    names = [f.name for f in project.files if f.name] or ["Untitled"]
    shown = " + ".join(names[:3]) + (f" + {len(names) - 3} more" if len(names) > 3 else "")
    return f"Edited: {shown}"


# --------------------------------------------------------------------------- the app


class SandboxApp:
    """WSGI app standing in for Descript. Thread-safe; every piece of state is behind `_lock`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        # Injectable so tests can fast-forward (link expiry, rendering, URL validity).
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # wakes sleeping faults when the server stops
        self._faults: list[dict[str, Any]] = []
        self._fault_seq = 0
        self._recorded: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)
        self._imports: dict[str, _PendingImport] = {}
        self._projects: dict[str, _Project] = {}
        self._shares: dict[str, _Share] = {}
        self._url_map = Map(
            [
                Rule("/", endpoint="index", methods=["GET"]),
                Rule("/v1/edit_in_descript/schema", endpoint="schema", methods=["POST"]),
                Rule("/v1/published_projects/<slug>", endpoint="published", methods=["GET"]),
                Rule("/import", endpoint="import_page", methods=["GET"]),
                Rule("/projects/<project_id>/publish", endpoint="publish", methods=["POST"]),
                Rule("/view/<share_id>", endpoint="view", methods=["GET"]),
                Rule("/media/<share_id>/<filename>", endpoint="media", methods=["GET"]),
                Rule("/_sandbox/health", endpoint="c_health", methods=["GET"]),
                Rule("/_sandbox/faults", endpoint="c_faults", methods=["GET", "POST", "DELETE"]),
                Rule("/_sandbox/reset", endpoint="c_reset", methods=["POST"]),
                Rule("/_sandbox/requests", endpoint="c_requests", methods=["GET", "DELETE"]),
                Rule("/_sandbox/shares", endpoint="c_shares", methods=["POST"]),
            ],
            strict_slashes=False,
        )

    # ------------------------------------------------------------------ public Python API

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (see module docs / README); returns it with its `id`."""
        normalized = _normalize_fault(rule)
        with self._lock:
            self._fault_seq += 1
            normalized["id"] = self._fault_seq
            self._faults.append(normalized)
            return dict(normalized)

    def clear_faults(self) -> int:
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            return n

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._faults]

    def reset(self) -> None:
        """Forget faults, recorded requests, imports, projects and shares."""
        with self._lock:
            self._faults.clear()
            self._recorded.clear()
            self._imports.clear()
            self._projects.clear()
            self._shares.clear()

    def requests(self, path_prefix: str = "") -> list[dict[str, Any]]:
        """Recorded requests whose path starts with `path_prefix`, oldest first."""
        with self._lock:
            return [dict(r) for r in self._recorded if r["path"].startswith(path_prefix)]

    def clear_requests(self) -> None:
        with self._lock:
            self._recorded.clear()

    def create_share(
        self,
        title: str = "Sandbox share",
        partner: str | None = None,
        source: str | None = None,
        media_bytes: int = 1 << 20,
        seed: str = "sandbox",
        video: bool = False,
        render_seconds: float = 0.0,
        duration_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Publish a synthetic share directly (no import): media is synthetic_chunks(seed, media_bytes)."""
        if media_bytes < 0:
            raise ValueError("media_bytes must be >= 0")
        digest = synthetic_sha256(seed, media_bytes)  # outside the lock: ~0.1 s per 200 MB
        share = _Share(
            id=self._new_share_id(),
            title=title,
            partner=partner,
            source=source,
            project_id=str(uuid.uuid4()),
            published_at=self.clock(),
            render_seconds=float(render_seconds),
            is_video=bool(video),
            size=media_bytes,
            duration=float(duration_seconds)
            if duration_seconds is not None
            else self._estimate_duration(media_bytes, bool(video)),
            seed=seed,
        )
        with self._lock:
            self._shares[share.id] = share
        return {
            "share_id": share.id,
            "share_url": self._share_url(share.id),
            "media_sha256": digest,
            "media_bytes": media_bytes,
        }

    def stop(self) -> None:
        """Wake any request sleeping in a fault so the server can shut down promptly."""
        self._stopping.set()

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _Request(environ)
        try:
            response = self._handle(request)
        except Exception:
            # Never leak a stack trace to the client; log it for the developer.
            log.exception("sandbox error on %s %s", request.method, request.path)
            response = _json(500, {"error": "internal", "message": "sandbox error"})
        return response(environ, start_response)

    def _handle(self, request: _Request) -> Response:
        path = request.path
        if path.startswith("/_sandbox/"):
            return self._route(request)  # control plane: no faults, not recorded
        self._record(request)
        fault = self._take_fault(request.method, path)
        if fault is None:
            return self._route(request)

        if fault.get("latency_ms"):
            self._sleep(fault["latency_ms"] / 1000.0)
        if fault.get("hang_seconds") is not None:
            return self._hang(request, fault["hang_seconds"])
        if fault.get("redirect_to") is not None:
            status = fault.get("status", 302)
            response = Response(status=status if 300 <= status < 400 else 302)
            response.headers["Location"] = fault["redirect_to"]
        elif fault.get("body_size") is not None:
            size = fault["body_size"]
            response = Response(
                _filler(size),
                status=fault.get("status", 200),
                content_type=fault.get("content_type", "text/html; charset=utf-8"),
                direct_passthrough=True,
            )
            response.headers["Content-Length"] = str(size)
        elif fault.get("status") is not None:
            status = fault["status"]
            if fault.get("body") is not None:
                response = Response(
                    fault["body"], status=status,
                    content_type=fault.get("content_type", "text/plain; charset=utf-8"),
                )
            else:
                response = _json(status, _error_body(status))
                if fault.get("content_type"):
                    response.headers["Content-Type"] = fault["content_type"]
            if status == 429:
                response.headers["X-RateLimit-Remaining"] = "0"
                response.headers["X-RateLimit-Consumed"] = "1000"
        else:
            response = self._route(request)  # latency/throttle only: handle normally

        for key, value in fault.get("headers", {}).items():
            response.headers[key] = value
        if fault.get("throttle_bps"):
            response.response = _throttled(
                response.iter_encoded(), fault["throttle_bps"], self._stopping
            )
            response.direct_passthrough = True
        return response

    def _route(self, request: _Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            return self._http_error(request, exc)
        try:
            return getattr(self, "_ep_" + endpoint)(request, **args)
        except HTTPException as exc:  # e.g. 413 from reading an oversized body
            return self._http_error(request, exc)

    def _http_error(self, request: _Request, exc: HTTPException) -> Response:
        status = exc.code or 500
        if 300 <= status < 400:  # routing redirects (e.g. trailing slashes)
            return exc.get_response(request.environ)  # type: ignore[return-value]
        if request.path.startswith(("/v1/", "/_sandbox/", "/media/")):
            response = _json_error(status, HTTPStatus(status).phrase)
            if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return _page(
            "Descript sandbox",
            f"<h1>{status} {html.escape(HTTPStatus(status).phrase)}</h1>"
            "<p>There is nothing here.</p>",
            status=status,
        )

    # ------------------------------------------------------------------ state helpers

    def _record(self, request: _Request) -> None:
        body_json = None
        if request.method in ("POST", "PUT", "PATCH") and (request.content_length or 0) <= (1 << 20):
            try:
                raw = request.get_data(cache=True)
            except HTTPException:  # too large: the handler will answer 413
                raw = b""
            if raw:
                try:
                    body_json = json.loads(raw)
                except ValueError:
                    body_json = None
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "user_agent": request.headers.get("User-Agent"),
            "range": request.headers.get("Range"),
            # Only whether it was sent: the token itself must never be stored or logged.
            "authorization_present": "Authorization" in request.headers,
            "json": body_json,
            "at": self.clock(),
        }
        with self._lock:
            self._recorded.append(entry)

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        """Merge every matching rule (later rules win) and use up their `times`."""
        merged: dict[str, Any] = {}
        with self._lock:
            matched = False
            for rule in list(self._faults):
                if not path.startswith(rule["path"]):
                    continue
                if rule.get("method") and rule["method"] != method:
                    continue
                matched = True
                headers = {**merged.get("headers", {}), **rule.get("headers", {})}
                merged.update({k: v for k, v in rule.items() if k not in ("id", "times", "path", "method")})
                if headers:
                    merged["headers"] = headers
                if rule.get("times") is not None:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self._faults.remove(rule)
        return merged if matched else None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _hang(self, request: _Request, seconds: float) -> Response:
        """Say nothing for `seconds`, then drop the connection without an answer."""
        self._sleep(seconds)
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                import socket

                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # If the socket is gone the server's write fails quietly (a dropped connection).
        return Response(b"", status=504, headers={"Connection": "close"})

    def _new_share_id(self) -> str:
        with self._lock:
            while True:
                sid = "".join(secrets.choice(_SHARE_ALPHABET) for _ in range(11))
                if sid not in self._shares:
                    return sid

    def _base_url(self) -> str:
        return self.config.public_url.rstrip("/")

    def _share_url(self, share_id: str) -> str:
        return f"{self._base_url()}/view/{share_id}"

    def _media_url(self, share_id: str, filename: str) -> str:
        return f"{self._base_url()}/media/{share_id}/{filename}"

    @staticmethod
    def _estimate_duration(size: int, video: bool) -> float:
        # Assume 128 kbit/s audio or 2 Mbit/s video when the media cannot be parsed.
        return round(size / (250_000 if video else 16_000), 3)

    def _rendering(self, share: _Share) -> bool:
        return self.clock() < share.published_at + share.render_seconds

    def _authorized(self, request: _Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {self.config.api_token}"
        return hmac.compare_digest(header.encode("utf-8"), expected.encode("utf-8"))

    # ------------------------------------------------------------------ API endpoints

    def _ep_schema(self, request: _Request) -> Response:
        if not self._authorized(request):
            return _json_error(401, "Missing or invalid authentication token")
        try:
            body = json.loads(request.get_data(cache=True) or b"")
        except ValueError:
            return _json_error(400, "request body is not valid JSON")
        problem = validate_schema_body(body)
        if problem:
            return _json_error(400, problem)
        if body["partner_drive_id"].lower() != self.config.drive_id.lower():
            return _json_error(403, "Associated drive does not have Edit in Descript permissions")
        schema = body["project_schema"]
        nonce = str(uuid.uuid4())
        pending = _PendingImport(
            nonce=nonce,
            partner_drive_id=body["partner_drive_id"],
            source_id=schema.get("source_id"),
            files=[dict(f) for f in schema["files"]],
            created_at=self.clock(),
        )
        with self._lock:
            self._imports[nonce] = pending
        return _json(201, {"url": f"{self._base_url()}/import?nonce={nonce}"})

    def _ep_published(self, request: _Request, slug: str) -> Response:
        if not self._authorized(request):
            return _json_error(401, "Missing or invalid authentication token")
        with self._lock:
            share = self._shares.get(slug)
        if share is None:
            return _json_error(404, "Published project not found")
        if self._rendering(share):
            return _json_error(409, "Published in invalid state", state="processing")
        primary = "video.mp4" if share.is_video else "audio.m4a"
        return _json(
            200,
            {
                "project_id": share.project_id,
                "publish_type": "video" if share.is_video else "audio",
                "privacy": "unlisted",
                "metadata": {
                    "title": share.title,
                    "duration_seconds": round(share.duration, 3),
                    "duration_formatted": _hms(share.duration),
                    "published_at": _iso_z(share.published_at),
                    "published_by": {"first_name": "Sandbox", "last_name": "User"},
                },
                "subtitles": self._vtt(share),
                "download_url": self._media_url(share.id, primary),
                "download_url_expires_at": _iso_z(self.clock() + 3600),
            },
        )

    # ------------------------------------------------------------------ import page

    def _ep_import_page(self, request: _Request) -> Response:
        nonce = request.args.get("nonce", "")
        now = self.clock()
        with self._lock:
            pending = self._imports.get(nonce)
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
            return _page(
                "Descript sandbox — import",
                "<h1>Descript sandbox — import</h1>\n"
                f'<p id="import-error" data-reason="{reason}">{html.escape(text)}</p>',
                status=status,
            )
        assert pending is not None
        results = self._fetch_all(pending.files)
        project = _Project(
            id=str(uuid.uuid4()),
            partner_drive_id=pending.partner_drive_id,
            source_id=pending.source_id,
            files=results,
            created_at=now,
        )
        with self._lock:
            self._projects[project.id] = project
        return self._render_import(project)

    def _fetch_all(self, files: list[dict[str, Any]]) -> list[_FileResult]:
        with ThreadPoolExecutor(max_workers=min(8, len(files)), thread_name_prefix="descriptbot") as pool:
            return list(pool.map(self._fetch_file, files))

    def _fetch_file(self, spec: dict[str, Any]) -> _FileResult:
        """Fetch one partner file the way Descript does: Descriptbot UA, a Range request."""
        uri = spec["uri"]
        result = _FileResult(
            name=spec.get("name") or "",
            uri=uri,
            start_offset=float((spec.get("start_offset") or {}).get("seconds", 0.0)),
            hours_left=presigned_hours_left(uri, self.clock()),
        )
        timeout = self.config.fetch_timeout
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

    def _render_import(self, project: _Project) -> Response:
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
        default_title = _default_title(project)
        if publishable:
            form = (
                "<h2>Publish</h2>\n"
                f'<form id="publish" method="post" action="{self._base_url()}/projects/{project.id}/publish">\n'
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
        return _page("Descript sandbox — import", body)

    # ------------------------------------------------------------------ publish and share

    def _ep_publish(self, request: _Request, project_id: str) -> Response:
        with self._lock:
            project = self._projects.get(project_id)
        if project is None:
            return _page("Descript sandbox", "<h1>Not found</h1><p>There is no such project.</p>", 404)
        title = ""
        if request.is_json:
            payload = request.get_json(silent=True)
            if isinstance(payload, dict) and isinstance(payload.get("title"), str):
                title = payload["title"]
        else:
            title = request.form.get("title", "")
        title = title.strip() or _default_title(project)
        source = next((f for f in project.files if f.fetched), None)
        if source is None:
            return _page(
                "Descript sandbox",
                "<h1>Cannot publish</h1><p>No file of this project could be imported.</p>",
                409,
            )
        is_video = any(f.looks_video for f in project.files)
        if source.data is not None:
            media, seed = source.data, None
            duration = wav_duration(source.data) or self._estimate_duration(len(source.data), is_video)
        else:
            # Too big to have kept: stand in with a synthetic stream of the same size.
            media, seed = None, f"project:{project.id}"
            duration = self._estimate_duration(source.bytes_received, is_video)
        share = _Share(
            id=self._new_share_id(),
            title=title,
            partner=project.partner_drive_id,
            source=project.source_id,
            project_id=project.id,
            published_at=self.clock(),
            render_seconds=self.config.render_seconds,
            is_video=is_video,
            size=source.bytes_received,
            duration=duration,
            media=media,
            seed=seed,
        )
        with self._lock:
            self._shares[share.id] = share
        response = Response(status=303)
        response.headers["Location"] = self._share_url(share.id)
        return response

    def _ep_view(self, request: _Request, share_id: str) -> Response:
        with self._lock:
            share = self._shares.get(share_id)
        if share is None:
            return _page(
                "Descript sandbox — share",
                "<h1>Not found</h1><p>This share page does not exist.</p>",
                404,
            )
        e = html.escape
        share_url = self._share_url(share.id)
        metas = [("og:title", share.title), ("og:url", share_url)]
        if share.partner:
            metas.append(("descript:partner", share.partner))
        if share.source:
            metas.append(("descript:source", share.source))
        metas.append(("descript:audio", self._media_url(share.id, "audio.m4a")))
        if share.is_video:
            metas.append(("descript:video", self._media_url(share.id, "video.mp4")))
        metas.append(("descript:subtitles", self._media_url(share.id, "subtitles.vtt")))
        metas.append(("descript:transcript", self._media_url(share.id, "transcript.json")))
        head = "".join(f'<meta property="{p}" content="{e(v)}">\n' for p, v in metas)
        partner_url = self.config.partner_import_url
        send = partner_url + ("&" if "?" in partner_url else "?") + urlencode(
            {"title": share.title, "url": share_url}, quote_via=quote
        )
        state = "still rendering" if self._rendering(share) else "ready"
        primary = "video.mp4" if share.is_video else "audio.m4a"
        body = (
            f"<h1>{e(share.title)}</h1>\n"
            f'<p id="state" data-state="{"processing" if state != "ready" else "ready"}">'
            f"Published {e(_iso_z(share.published_at))}; the export is {state}.</p>\n"
            f'<p><a href="{e(self._media_url(share.id, primary))}">Download</a></p>\n'
            f'<p><a id="send-to-partner" href="{e(send)}">Send to partner</a></p>'
        )
        return _page(f"{share.title} — Descript sandbox", body, head=head)

    def _vtt(self, share: _Share) -> str:
        return make_vtt(self._cues(share))

    @staticmethod
    def _cues(share: _Share) -> list[tuple[float, float, str]]:
        end = max(2.0, min(share.duration, 4.0))
        return cues_from_lines(
            [(0.0, end / 2, share.title), (end / 2, end, "This is a sandbox transcript.")]
        )

    def _ep_media(self, request: _Request, share_id: str, filename: str) -> Response:
        with self._lock:
            share = self._shares.get(share_id)
        if share is None or filename not in MEDIA_FILES or (filename == "video.mp4" and not share.is_video):
            return Response("Not found\n", status=404, mimetype="text/plain")
        if self._rendering(share):
            return Response("Not found: the export is still rendering\n", status=404, mimetype="text/plain")
        if filename in ("audio.m4a", "video.mp4"):
            ctype = "video/mp4" if filename == "video.mp4" else "audio/mp4"
            return self._ranged(request, share.size, share.chunks, ctype)
        if filename == "subtitles.vtt":
            data = self._vtt(share).encode("utf-8")
            ctype = "text/vtt; charset=utf-8"
        else:
            data = json.dumps(
                {
                    "title": share.title,
                    "segments": [{"start": s, "end": t, "text": x} for s, t, x in self._cues(share)],
                }
            ).encode("utf-8")
            ctype = "application/json"
        return self._ranged(request, len(data), lambda a, b: iter([data[a:b]]), ctype)

    @staticmethod
    def _ranged(
        request: _Request,
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

    def _ep_index(self, request: _Request) -> Response:
        return _page(
            "Descript sandbox",
            "<h1>Descript sandbox</h1><p>An offline stand-in for Descript's API "
            "(<code>/v1</code>), import page and share pages. Nothing here is real.</p>",
        )

    # ------------------------------------------------------------------ control plane

    def _control_json(self, request: _Request) -> dict[str, Any] | Response:
        try:
            payload = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            return _json_error(400, "request body is not valid JSON")
        if not isinstance(payload, dict):
            return _json_error(400, "request body must be a JSON object")
        return payload

    def _ep_c_health(self, request: _Request) -> Response:
        return _json(200, {"ok": True, "public_url": self._base_url()})

    def _ep_c_faults(self, request: _Request) -> Response:
        if request.method == "DELETE":
            return _json(200, {"cleared": self.clear_faults()})
        if request.method == "GET":
            return _json(200, self.faults())
        payload = self._control_json(request)
        if isinstance(payload, Response):
            return payload
        try:
            return _json(201, self.add_fault(**payload))
        except ValueError as exc:
            return _json_error(400, str(exc))

    def _ep_c_reset(self, request: _Request) -> Response:
        self.reset()
        return _json(200, {"ok": True})

    def _ep_c_requests(self, request: _Request) -> Response:
        if request.method == "DELETE":
            self.clear_requests()
            return _json(200, {"ok": True})
        return _json(200, self.requests(request.args.get("path", "")))

    def _ep_c_shares(self, request: _Request) -> Response:
        payload = self._control_json(request)
        if isinstance(payload, Response):
            return payload
        allowed = {"title", "partner", "source", "media_bytes", "seed", "video",
                   "render_seconds", "duration_seconds"}
        unknown = set(payload) - allowed
        if unknown:
            return _json_error(400, f"unknown keys: {', '.join(sorted(unknown))}")
        checks = {
            "title": str, "partner": (str, type(None)), "source": (str, type(None)),
            "media_bytes": int, "seed": str, "video": bool,
            "render_seconds": (int, float), "duration_seconds": (int, float, type(None)),
        }
        for key, kind in checks.items():
            if key in payload and (
                not isinstance(payload[key], kind)
                or (kind is not bool and isinstance(payload[key], bool))
            ):
                return _json_error(400, f"{key} has the wrong type")
        if payload.get("media_bytes", 0) < 0:
            return _json_error(400, "media_bytes must be >= 0")
        return _json(201, self.create_share(**payload))
