"""Descript's jobs API (`/v1/jobs...`): submitting imports, agent edits and publishes, and
reading, listing and cancelling the jobs.

A job's state is computed from the app clock whenever it is read (`status_of`): queued until
`started_at`, then running with a label and a rising percent, then stopped once its planned
time is up *and* its background work (fetching media, publishing) is done. The work, the
stop effects and the callbacks are `jobrunner.JobRunner`'s, on threads of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .api import authorized
from .jobchecks import (
    check_agent,
    check_import,
    check_publish,
    make_cursor,
    media_kind,
    parse_limit,
    parse_time,
    read_cursor,
)
from .jobknobs import JOB_TYPES
from .pages import json_error, json_response
from .shares import iso_z
from .state import Composition, Job, MediaEntry, Project, Upload

if TYPE_CHECKING:
    from .app import SandboxApp

DAY = 86400.0
RETENTION = 30 * DAY  # Descript keeps jobs 30 days
UPLOAD_TTL = 3 * 3600.0  # direct upload URLs last 3 hours

LABELS = {
    "import/project_media": ("Downloading media", "Transcribing", "Creating compositions"),
    "agent": ("Reading the project", "Applying edits", "Finishing up"),
    "publish": ("Rendering export", "Uploading export"),
}

UNAUTHORIZED = "Missing or invalid authentication token"


# --------------------------------------------------------------------------- state


def state_of(job: Job, now: float) -> str:
    if job.cancelled_at is not None:
        return "cancelled"
    if now < job.started_at:
        return "queued"
    if job.work_done_at is not None and now >= job.planned_stop:
        return "stopped"
    return "running"


def stopped_at(job: Job) -> float | None:
    if job.cancelled_at is not None:
        return job.cancelled_at
    if job.work_done_at is None:
        return None
    return max(job.planned_stop, job.work_done_at)


def progress_of(job: Job, now: float) -> dict[str, Any]:
    span = max(job.planned_stop - job.started_at, 1e-9)
    fraction = min(1.0, max(0.0, (now - job.started_at) / span))
    if job.work_done_at is None and job.job_type == "import/project_media":
        fraction = min(fraction, 0.3)  # still downloading: the first label, however long it takes
    labels = job.labels or ("Working",)
    label = labels[min(int(fraction * len(labels)), len(labels) - 1)]
    if job.job_type == "agent" and label == "Applying edits":
        label = f"Applying edits: {_short(str(job.body.get('prompt', '')), 60)}"
    progress: dict[str, Any] = {
        "label": label,
        "percent": min(99, int(fraction * 100)),
        "last_update_at": iso_z(now),
    }
    if job.job_type == "publish" and job.composition_id:
        progress["composition_id"] = job.composition_id
    return progress


def status_of(app: SandboxApp, job: Job, now: float) -> dict[str, Any]:
    """The JSON of GET /v1/jobs/<id> (and of the callback): openapi's JobStatus for the job's type."""
    state = state_of(job, now)
    out: dict[str, Any] = {
        "job_id": job.id,
        "job_type": job.job_type,
        "job_state": state,
        "created_at": iso_z(job.created_at),
        "drive_id": app.config.drive_id,
        "project_id": job.project_id,
        "project_url": project_url(app, job.project_id),
    }
    if state in ("stopped", "cancelled"):
        out["stopped_at"] = iso_z(stopped_at(job) or now)
    if state == "running":
        out["progress"] = progress_of(job, now)
        if job.share_id and job.job_type == "publish":
            out["progress"]["share_url"] = app._share_url(job.share_id)
    if state == "stopped" and job.result is not None:
        result = dict(job.result)
        if job.job_type == "publish" and result.get("status") == "success" and job.share_id:
            result.update(download_link(app, job.share_id, job.body.get("media_type", "Video"), now))
        out["result"] = result
    return out


def download_link(app: SandboxApp, share_id: str, media_type: str, now: float) -> dict[str, str]:
    """A "signed" download_url for a share's media and when it is said to expire.

    The media route ignores the query; the signature only makes the URL look like the real,
    secret one, so tests can check it never leaks into pages or logs.
    """
    expires = now + app._job_knobs.download_url_ttl
    filename = "video.mp4" if media_type == "Video" else "audio.m4a"
    signature = hashlib.sha256(f"{share_id}:{int(expires)}:{app.config.api_token}".encode()).hexdigest()[:32]
    return {
        "download_url": f"{app._media_url(share_id, filename)}?Expires={int(expires)}&Signature={signature}",
        "download_url_expires_at": iso_z(expires),
    }


def project_url(app: SandboxApp, project_id: str) -> str:
    return f"{app._base_url()}/projects/{project_id}"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- helpers


def _body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        return _BAD_JSON


_BAD_JSON = object()


def _new_job(app: SandboxApp, job_type: str, project_id: str, body: dict[str, Any], **extra: Any) -> Job:
    """A job whose timeline is drawn from the knobs now (call with the lock held)."""
    knobs = app._job_knobs
    now = app.clock()
    seconds = knobs.seconds_for(job_type) + random.uniform(0.0, knobs.jitter_seconds)
    started = now + knobs.queued_seconds / knobs.time_scale
    app._job_seq += 1
    job = Job(
        id=str(uuid.uuid4()),
        seq=app._job_seq,
        job_type=job_type,
        project_id=project_id,
        created_at=now,
        started_at=started,
        planned_stop=started + seconds / knobs.time_scale,
        body=body,
        callback_url=body.get("callback_url"),
        labels=LABELS[job_type],
        **extra,
    )
    app._jobs[job.id] = job
    return job


def _created(app: SandboxApp, request: Request, job: Job, extra: dict[str, Any] | None = None) -> Response:
    entry = request.environ.get("sandbox.record")
    if entry is not None:
        with app._lock:  # named at once: a held or dropped answer still shows which job it made
            entry["job_id"] = job.id
    app._job_runner.wake()
    payload = {
        "job_id": job.id,
        "drive_id": app.config.drive_id,
        "project_id": job.project_id,
        "project_url": project_url(app, job.project_id),
        **(extra or {}),
    }
    return json_response(201, payload)


def _new_project(app: SandboxApp, body: dict[str, Any], now: float) -> Project:
    return Project(
        id=str(uuid.uuid4()),
        partner_drive_id="",
        source_id=None,
        files=[],
        created_at=now,
        name=(body.get("project_name") or "").strip() or "Untitled project",
        folder_path=(body.get("folder_name") or "").strip("/"),
        team_access=body.get("team_access", "none"),
        updated_at=now,
    )


def find_composition(project: Project, ref: str) -> Composition | None:
    """A composition by full id, 5-character short id, or a project URL ending in one."""
    ref = ref.strip().rstrip("/")
    if "/" in ref:
        ref = ref.rsplit("/", 1)[1]
    for comp in project.compositions:
        if comp.id == ref.lower() or (len(ref) >= 5 and comp.id.startswith(ref.lower())):
            return comp
    return None


# --------------------------------------------------------------------------- submitting


def _submitted(app: SandboxApp, request: Request) -> dict[str, Any] | Response:
    """A job submit's JSON body, or the 401/400 Descript answers before looking at it."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    body = _body(request)
    if body is _BAD_JSON:
        return json_error(400, "Invalid request body")
    return body


def submit_import(app: SandboxApp, request: Request) -> Response:
    """POST /v1/jobs/import/project_media: 201 {job_id, drive_id, project_id, project_url, upload_urls?}"""
    body = _submitted(app, request)
    if isinstance(body, Response):
        return body
    problem = check_import(body)
    existing: set[str] = set()
    if problem is None and "project_id" in body:
        with app._lock:
            project = app._projects.get(body["project_id"])
            existing = set(project.media) if project else set()
        if project is None:
            return json_error(404, "Project not found")
        problem = check_import(body, existing)
    if problem:
        return json_error(400, problem)
    knobs = app._job_knobs
    if "import/project_media" in knobs.forbidden:
        return json_error(403, "User does not have access to this drive or project")
    add_media: dict[str, dict[str, Any]] = body.get("add_media", {})
    if knobs.media_minutes_exhausted:
        needed = max(1, sum(math.ceil(i.get("file_size", 16_000_000) / 960_000) for i in add_media.values()
                            if media_kind(i) != "sequence"))
        return json_error(402, f"Insufficient media minutes to start the job ({needed} minutes required, 0 available)")
    now = app.clock()
    upload_urls: dict[str, dict[str, str]] = {}
    with app._lock:
        if "project_id" in body:
            project = app._projects.get(body["project_id"])
            if project is None:  # deleted by a reset meanwhile
                return json_error(404, "Project not found")
        else:
            project = _new_project(app, body, now)
            app._projects[project.id] = project
        for name, item in add_media.items():
            kind = media_kind(item)
            entry = MediaEntry(
                name=name, kind=kind, url=item.get("url", ""), language=item.get("language"),
                content_type=item.get("content_type", ""), file_size=item.get("file_size", 0),
                tracks=[{"media": t["media"], "offset": float(t.get("offset", 0))} for t in item.get("tracks", [])],
            )
            if kind == "upload":
                upload = Upload(
                    id=str(uuid.uuid4()), signature=uuid.uuid4().hex, project_id=project.id, media=name,
                    content_type=entry.content_type, file_size=entry.file_size, expires_at=now + UPLOAD_TTL,
                )
                entry.upload_id = upload.id
                app._uploads[upload.id] = upload
                upload_urls[name] = {
                    "upload_url": f"{app._base_url()}/uploads/{upload.id}?Expires={int(upload.expires_at)}"
                                  f"&Signature={upload.signature}",
                    "asset_id": str(uuid.uuid4()),
                    "artifact_id": str(uuid.uuid4()),
                }
            project.media[name] = entry
        job = _new_job(app, "import/project_media", project.id, body)
    return _created(app, request, job, {"upload_urls": upload_urls} if upload_urls else None)


def submit_agent(app: SandboxApp, request: Request) -> Response:
    """POST /v1/jobs/agent: 201 {job_id, drive_id, project_id, project_url}"""
    body = _submitted(app, request)
    if isinstance(body, Response):
        return body
    problem = check_agent(body)
    if problem:
        return json_error(400, problem)
    knobs = app._job_knobs
    if "agent" in knobs.forbidden:
        return json_error(403, "User does not have access to this drive or project")
    if knobs.ai_credits_exhausted:
        return json_error(402, "Insufficient AI credits to start the job (100 credits required, 0 available)")
    now = app.clock()
    with app._lock:
        if "project_id" in body:
            project = app._projects.get(body["project_id"])
            if project is None:
                return json_error(404, "Project not found")
            comp = None
            if "composition_id" in body:
                comp = find_composition(project, body["composition_id"])
                if comp is None:
                    return json_error(404, "Composition not found")
        else:
            project = _new_project(app, body, now)
            app._projects[project.id] = project
            comp = None
        target = comp.name if comp else (project.compositions[0].name if project.compositions else project.display_name())
        job = _new_job(
            app, "agent", project.id, body,
            composition_id=comp.id if comp else None,
            error=knobs.agent_error,
            work_done_at=now,  # nothing to fetch: the agent's "work" is its running time
        )
        prompt = " ".join(body["prompt"].split())
        if knobs.agent_error is not None:
            job.result = {"status": "error", "error_message": knobs.agent_error, "error_code": "agent_execution_failed"}
        else:
            job.result = {
                "status": "success",
                "agent_response": f'Done! I worked on "{_short(prompt, 200)}" in {target}: '
                                  "the edits are applied and ready to review.",
                "project_changed": True,
                "media_seconds_used": 0,
                "ai_credits_used": 10 + len(prompt) // 10,
            }
    return _created(app, request, job)


def submit_publish(app: SandboxApp, request: Request) -> Response:
    """POST /v1/jobs/publish: 201 {job_id, drive_id, project_id, project_url}"""
    body = _submitted(app, request)
    if isinstance(body, Response):
        return body
    problem = check_publish(body)
    if problem:
        return json_error(400, problem)
    knobs = app._job_knobs
    if "publish" in knobs.forbidden:
        return json_error(403, "Forbidden")
    with app._lock:
        project = app._projects.get(body["project_id"])
        if project is None:
            return json_error(404, "Project not found")
        if "composition_id" in body:
            comp = find_composition(project, body["composition_id"])
            if comp is None:
                return json_error(404, "Composition not found")
        else:
            comp = project.compositions[0] if project.compositions else None
        job = _new_job(
            app, "publish", project.id, body,
            composition_id=comp.id if comp else None,
            error=knobs.publish_error,
        )
    return _created(app, request, job)


# --------------------------------------------------------------------------- reading, cancelling


def _visible(job: Job | None, now: float) -> bool:
    return job is not None and now - job.created_at <= RETENTION


def get_job(app: SandboxApp, request: Request, job_id: str) -> Response:
    """GET /v1/jobs/<job_id>: the job's status; DELETE: cancel it (204)."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    now = app.clock()
    with app._lock:
        job = app._jobs.get(job_id)
        if not _visible(job, now):
            return json_error(404, "Job not found")
        assert job is not None
        if request.method == "DELETE":
            state = state_of(job, now)
            if state in ("stopped", "cancelled"):
                return json_error(409, f"Job is already {state}", job_state=state)
            job.cancelled_at = now
        else:
            payload = status_of(app, job, now)
    if request.method == "DELETE":
        app._job_runner.wake()
        return Response(status=204)
    return json_response(200, payload)


def list_jobs(app: SandboxApp, request: Request) -> Response:
    """GET /v1/jobs: newest first, filtered, `limit` per page, `pagination.next_cursor` until the end."""
    if not authorized(app, request):
        return json_error(401, UNAUTHORIZED)
    args = request.args
    now = app.clock()
    project_id = args.get("project_id")
    if project_id is not None and not _uuid_like(project_id):
        return json_error(400, "Invalid project_id format")
    job_type = args.get("type")
    if job_type is not None and job_type not in JOB_TYPES:
        return json_error(400, f'"type" must be one of [{", ".join(JOB_TYPES)}]')
    after = now - 7 * DAY
    if args.get("created_after") is not None:
        parsed = parse_time(args["created_after"])
        if parsed is None:
            return json_error(400, "created_after must be an ISO 8601 timestamp")
        if parsed < now - RETENTION - 60:
            return json_error(400, "created_after cannot be more than 30 days ago")
        after = parsed
    before = now
    if args.get("created_before") is not None:
        parsed = parse_time(args["created_before"])
        if parsed is None:
            return json_error(400, "created_before must be an ISO 8601 timestamp")
        before = parsed
    limit = parse_limit(args.get("limit"))
    if limit is None:
        return json_error(400, "limit must be an integer from 1 to 100")
    below = None
    if args.get("cursor") is not None:
        below = read_cursor("jobs", args["cursor"])
        if below is None:
            return json_error(400, "Invalid cursor")
    with app._lock:
        matching = sorted(
            (
                j for j in app._jobs.values()
                if (below is None or j.seq < below)
                and (project_id is None or j.project_id == project_id.lower())
                and (job_type is None or j.job_type == job_type)
                and after <= j.created_at <= before
                and _visible(j, now)
            ),
            key=lambda j: j.seq,
            reverse=True,
        )
        page = [status_of(app, j, now) for j in matching[:limit]]
        last_seq = matching[limit - 1].seq if len(matching) > limit else None
    pagination = {} if last_seq is None else {"next_cursor": make_cursor("jobs", last_seq)}
    return json_response(200, {"data": page, "pagination": pagination})


def _uuid_like(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
