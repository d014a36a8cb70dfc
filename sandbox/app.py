"""The sandbox WSGI app: an offline stand-in for Descript's API, import page and share pages.

Plain werkzeug on purpose: the Django site must never import this package, and the
sandbox must run anywhere the virtualenv does. All state lives in memory behind one
lock; network I/O (fetching partner files, sleeping for faults, streaming media) always
happens outside it.

This module is the core: configuration, state, routing, request recording, faults
dispatch and the public Python API. The endpoints live in the module that owns their
part of Descript, as functions taking the app:

    api.py        /v1/edit_in_descript/schema, /v1/published_projects/<slug>
    jobs.py       /v1/jobs... (import, agent, publish; get, list, cancel); job state from the clock
    jobrunner.py  the jobs' background thread: their work, stop effects and callbacks
    projects.py   /v1/projects, /v1/status, /projects/<id>, PUT /uploads/<id>
    jobchecks.py  checking jobs-API bodies and queries; jobknobs.py  the jobs' live settings
    importing.py  /import (fetching partner files like Descriptbot)
    shares.py     /projects/<id>/publish, /view/<share_id>, /media/<share_id>/<file>
    control.py    /_sandbox/...
    pages.py      / and the HTML/JSON answer helpers
    faults.py     fault rules: checking, matching, answering with them
    state.py      the dataclasses kept in the app's dicts

Those modules are part of the app: they read and change its underscored state
(`_lock`, `_imports`, `_projects`, `_shares`, `_faults`, `_stopping`, `_jobs`, `_uploads`,
`_job_knobs`) under the same
rule as its methods (hold `_lock` only around dict access, never during I/O).
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import api, control, importing, jobs, pages, projects, shares
from .api import validate_schema_body
from .faults import answer_with_fault, normalize_fault, take_fault
from .importing import presigned_hours_left
from .jobknobs import JobKnobs, updated
from .jobrunner import JobRunner
from .jobs import state_of
from .media import synthetic_sha256
from .pages import json_error, json_response, page
from .shares import estimate_duration
from .state import Job, PendingImport, Project, Share, Upload

__all__ = ["SandboxApp", "SandboxConfig", "presigned_hours_left", "validate_schema_body"]

log = logging.getLogger("sandbox")

MAX_RECORDED = 10_000  # bounded so long benchmark runs do not grow memory forever
_SHARE_ALPHABET = string.ascii_letters + string.digits
_JOB_PATH = re.compile(r"^/v1/jobs/([^/]+)$")


@dataclass
class SandboxConfig:
    api_token: str
    drive_id: str
    partner_import_url: str
    render_seconds: float = 5.0
    public_url: str = ""
    # How long the import page waits for one partner file (per read and in total).
    fetch_timeout: float = 30.0
    # The jobs API's starting settings (durations, time_scale, callbacks, faults): see jobknobs.py.
    # reset() returns to these; POST /_sandbox/jobs/config changes the live copy.
    jobs: JobKnobs = field(default_factory=JobKnobs)


class _Request(Request):
    # API bodies are small JSON; anything bigger is a client bug, not a reason to buffer.
    max_content_length = 10 << 20


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
        self._imports: dict[str, PendingImport] = {}
        self._projects: dict[str, Project] = {}
        self._shares: dict[str, Share] = {}
        self._jobs: dict[str, Job] = {}
        self._uploads: dict[str, Upload] = {}
        self._job_seq = 0
        self._job_knobs: JobKnobs = replace(config.jobs)
        self._job_runner = JobRunner(self)
        self._url_map = Map(
            [
                Rule("/", endpoint="index", methods=["GET"]),
                Rule("/v1/edit_in_descript/schema", endpoint="schema", methods=["POST"]),
                Rule("/v1/published_projects/<slug>", endpoint="published", methods=["GET"]),
                Rule("/v1/jobs/import/project_media", endpoint="job_import", methods=["POST"]),
                Rule("/v1/jobs/agent", endpoint="job_agent", methods=["POST"]),
                Rule("/v1/jobs/publish", endpoint="job_publish", methods=["POST"]),
                Rule("/v1/jobs", endpoint="jobs_list", methods=["GET"]),
                Rule("/v1/jobs/<job_id>", endpoint="job", methods=["GET", "DELETE"]),
                Rule("/v1/projects", endpoint="projects_list", methods=["GET"]),
                Rule("/v1/projects/<project_id>", endpoint="project", methods=["GET"]),
                Rule("/v1/status", endpoint="status", methods=["GET"]),
                Rule("/projects/<project_id>", endpoint="project_page", methods=["GET"]),
                Rule("/uploads/<upload_id>", endpoint="upload", methods=["PUT"]),
                Rule("/import", endpoint="import_page", methods=["GET"]),
                Rule("/projects/<project_id>/publish", endpoint="publish", methods=["POST"]),
                Rule("/view/<share_id>", endpoint="view", methods=["GET"]),
                Rule("/media/<share_id>/<filename>", endpoint="media", methods=["GET"]),
                Rule("/_sandbox/health", endpoint="c_health", methods=["GET"]),
                Rule("/_sandbox/faults", endpoint="c_faults", methods=["GET", "POST", "DELETE"]),
                Rule("/_sandbox/reset", endpoint="c_reset", methods=["POST"]),
                Rule("/_sandbox/requests", endpoint="c_requests", methods=["GET", "DELETE"]),
                Rule("/_sandbox/shares", endpoint="c_shares", methods=["POST"]),
                Rule("/_sandbox/jobs", endpoint="c_jobs", methods=["GET"]),
                Rule("/_sandbox/jobs/config", endpoint="c_jobs_config", methods=["GET", "POST", "DELETE"]),
            ],
            strict_slashes=False,
        )

    # Endpoint "x" is served by self._ep_x(request, **url_args). The functions live in
    # their modules and take the app first, so binding them here makes them methods.
    _ep_index = pages.index
    _ep_schema = api.create_import_link
    _ep_published = api.published_project
    _ep_import_page = importing.import_page
    _ep_publish = shares.publish
    _ep_view = shares.view_page
    _ep_media = shares.media_file
    _ep_job_import = jobs.submit_import
    _ep_job_agent = jobs.submit_agent
    _ep_job_publish = jobs.submit_publish
    _ep_jobs_list = jobs.list_jobs
    _ep_job = jobs.get_job
    _ep_projects_list = projects.list_projects
    _ep_project = projects.get_project
    _ep_status = projects.api_status
    _ep_project_page = projects.project_page
    _ep_upload = projects.receive_upload
    _ep_c_health = control.health
    _ep_c_faults = control.fault_rules
    _ep_c_reset = control.reset
    _ep_c_requests = control.recorded_requests
    _ep_c_shares = control.synthetic_share
    _ep_c_jobs = control.all_jobs
    _ep_c_jobs_config = control.job_settings

    # ------------------------------------------------------------------ public Python API

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (see module docs / README); returns it with its `id`."""
        normalized = normalize_fault(rule)
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
        """Forget faults, recorded requests, imports, projects, shares and jobs; job settings back to the config's."""
        with self._lock:
            self._faults.clear()
            self._recorded.clear()
            self._imports.clear()
            self._projects.clear()
            self._shares.clear()
            self._jobs.clear()
            self._uploads.clear()
            self._job_knobs = replace(self.config.jobs)

    def configure_jobs(self, **changes: Any) -> dict[str, Any]:
        """Change the jobs' live settings (see jobknobs.JobKnobs); returns them all. ValueError says what is wrong."""
        with self._lock:
            self._job_knobs = updated(self._job_knobs, changes)
            return self._job_knobs.as_dict()

    def job_settings(self) -> dict[str, Any]:
        with self._lock:
            return self._job_knobs.as_dict()

    def reset_job_settings(self) -> dict[str, Any]:
        with self._lock:
            self._job_knobs = replace(self.config.jobs)
            return self._job_knobs.as_dict()

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, oldest first: type, state, project, timeline and callback attempts (for tests)."""
        now = self.clock()
        with self._lock:
            return [
                {
                    "job_id": j.id,
                    "job_type": j.job_type,
                    "job_state": state_of(j, now),
                    "project_id": j.project_id,
                    "created_at": j.created_at,
                    "started_at": j.started_at,
                    "planned_stop": j.planned_stop,
                    "work_done_at": j.work_done_at,
                    "cancelled_at": j.cancelled_at,
                    "result_status": (j.result or {}).get("status"),
                    "callback_url": j.callback_url,
                    "callback_attempts": [
                        {"at": a.at, "status": a.status, "error": a.error} for a in j.callback_attempts
                    ],
                }
                for j in sorted(self._jobs.values(), key=lambda j: j.seq)
            ]

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
        share = Share(
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
            else estimate_duration(media_bytes, bool(video)),
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
        """Wake any request sleeping in a fault, and end the jobs' thread, so the server can shut down promptly."""
        self._stopping.set()
        self._job_runner.stop()

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _Request(environ)
        try:
            response = self._handle(request)
        except Exception:
            # Never leak a stack trace to the client; log it for the developer.
            log.exception("sandbox error on %s %s", request.method, request.path)
            response = json_response(500, {"error": "internal", "message": "sandbox error"})
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_sandbox/"):
            return self._route(request)  # control plane: no faults, not recorded
        entry = self._record(request)
        request.environ["sandbox.record"] = entry  # for endpoints that add to it (a created job's id)
        fault = take_fault(self, request.method, path)
        if fault is None:
            response = self._route(request)
        else:
            response = answer_with_fault(self, request, fault)
        with self._lock:
            entry["status"] = response.status_code
        return response

    def _route(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            return self._http_error(request, exc)
        try:
            return getattr(self, "_ep_" + endpoint)(request, **args)
        except HTTPException as exc:  # e.g. 413 from reading an oversized body
            return self._http_error(request, exc)

    def _http_error(self, request: Request, exc: HTTPException) -> Response:
        status = exc.code or 500
        if 300 <= status < 400:  # routing redirects (e.g. trailing slashes)
            return exc.get_response(request.environ)
        if request.path.startswith(("/v1/", "/_sandbox/", "/media/")):
            response = json_error(status, HTTPStatus(status).phrase)
            if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response
        return page(
            "Descript sandbox",
            f"<h1>{status} {html.escape(HTTPStatus(status).phrase)}</h1>"
            "<p>There is nothing here.</p>",
            status=status,
        )

    # ------------------------------------------------------------------ state helpers

    def _record(self, request: Request) -> dict[str, Any]:
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
        job_path = _JOB_PATH.match(request.path)
        job_id = job_path.group(1) if job_path and request.method in ("GET", "DELETE") else None
        entry = {
            "method": request.method,
            "path": request.path,
            # GET/DELETE /v1/jobs/<id>: that id; a POST that created a job: the new job's id.
            "job_id": job_id,
            "query": request.query_string.decode("latin-1"),
            "user_agent": request.headers.get("User-Agent"),
            "range": request.headers.get("Range"),
            # Only whether it was sent: the token itself must never be stored or logged.
            "authorization_present": "Authorization" in request.headers,
            "json": body_json,
            "at": self.clock(),
            "wall": time.time(),  # real time even when a test moves `clock`: for cadence checks
            "status": None,  # the answer's status, filled in once answered
        }
        with self._lock:
            self._recorded.append(entry)
        return entry

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
