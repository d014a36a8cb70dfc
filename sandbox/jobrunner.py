"""The jobs' background side: starting their work, applying their effects, POSTing callbacks.

One daemon thread (started with the first job, ended by `SandboxApp.stop`) looks at the jobs
every few tens of milliseconds while any is unsettled. It never does I/O itself: it marks
what is due under the lock and hands it to thread pools, where

- an import fetches its URL media like Descriptbot (`importing.fetch_file`), waits for its
  direct uploads, and writes the per-file result;
- a publish creates (or, for the same composition and media type, overwrites) a share
  through `shares.build_share`, rendering until the job's planned stop;
- a stopped or cancelled job POSTs the same JSON as GET /v1/jobs/<id> to its callback_url
  (unless callbacks are switched off), once plus `callback_retries` retries, each attempt
  recorded with the receiver's answer.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import requests as _requests

from .importing import fetch_all
from .jobs import state_of, status_of, stopped_at
from .media import wav_duration
from .shares import build_share, estimate_duration
from .state import CallbackAttempt, Composition, FileResult, Job, MediaEntry

if TYPE_CHECKING:
    from .app import SandboxApp

log = logging.getLogger("sandbox.jobs")

TICK = 0.03  # seconds between looks while jobs are unsettled
UNREACHABLE = "URL is not accessible or does not support Range requests"
CALLBACK_UA = "Descript-Webhooks/1.0"


class JobRunner:
    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self._wake = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._work: ThreadPoolExecutor | None = None
        self._calls: ThreadPoolExecutor | None = None

    def wake(self) -> None:
        """Look at the jobs now (a job was created or cancelled); starts the thread the first time."""
        with self._guard:
            if self._thread is None and not self.app._stopping.is_set():
                self._work = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-job")
                self._calls = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sandbox-callback")
                self._thread = threading.Thread(target=self._loop, name="sandbox-jobs", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._wake.set()
        with self._guard:
            thread, work, calls = self._thread, self._work, self._calls
        if thread is not None:
            thread.join(timeout=5)
        for pool in (work, calls):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self.app._stopping.is_set():
            try:
                busy = self._tick()
            except Exception:  # one bad job must not stop every other job's callbacks
                log.exception("sandbox job runner")
                busy = True
            self._wake.wait(TICK if busy else None)
            self._wake.clear()

    def _tick(self) -> bool:
        app = self.app
        now = app.clock()
        to_start: list[Job] = []
        to_finish: list[Job] = []
        busy = False
        with app._lock:
            for job in app._jobs.values():
                if (not job.work_started and job.cancelled_at is None and now >= job.started_at
                        and job.job_type in ("import/project_media", "publish")):
                    job.work_started = True
                    to_start.append(job)
                if not job.stop_handled and state_of(job, now) in ("stopped", "cancelled"):
                    job.stop_handled = True
                    to_finish.append(job)
                busy = busy or not job.stop_handled
        assert self._work is not None and self._calls is not None
        for job in to_start:
            work = run_import if job.job_type == "import/project_media" else run_publish
            self._submit(self._work, work, job)
        for job in to_finish:
            self._submit(self._calls, finish, job)
        return busy

    def _submit(self, pool: ThreadPoolExecutor, fn: Any, job: Job) -> None:
        def run() -> None:
            try:
                fn(self.app, job)
            except Exception:
                log.exception("sandbox job %s", job.id)
                with self.app._lock:  # a crash in the sandbox ends the job, never hangs it
                    if job.work_done_at is None:
                        job.result = {"status": "error", "error_message": "Internal error in the sandbox"}
                        job.work_done_at = self.app.clock()
            self.wake()

        try:
            pool.submit(run)
        except RuntimeError:  # shutting down
            pass


# --------------------------------------------------------------------------- import


def _media_result(entry: MediaEntry) -> dict[str, Any]:
    if entry.status == "success":
        return {"status": "success", "duration_seconds": round(entry.duration or 0.0, 3)}
    return {"status": "failed", "error_message": entry.error or UNREACHABLE}


def _settle_file(entry: MediaEntry, result: FileResult) -> None:
    """Descript's verdict on one fetched (or uploaded) file."""
    entry.file = result
    if result.fetched and not (result.hours_left is not None and result.hours_left <= 0):
        entry.status = "success"
        data = result.data
        entry.duration = (wav_duration(data) if data else None) or estimate_duration(
            result.bytes_received, result.looks_video
        )
    elif result.fetched:
        entry.status, entry.error = "failed", "The media URL has expired"
    elif result.http_status is not None:
        entry.status, entry.error = "failed", f"{UNREACHABLE} (HTTP {result.http_status})"
    else:
        entry.status, entry.error = "failed", f"Failed to download media file from URL: {result.reason}"


def _await_upload(app: SandboxApp, job: Job, entry: MediaEntry) -> FileResult:
    """Wait for a direct upload's bytes (until its URL expires, the job is cancelled, or the server stops)."""
    result = FileResult(name=entry.name, uri="", start_offset=0.0)
    deadline = time.monotonic() + 600  # also bounded in real time: a frozen test clock never expires
    while not app._stopping.is_set() and time.monotonic() < deadline:
        with app._lock:
            upload = app._uploads.get(entry.upload_id)
            cancelled = job.cancelled_at is not None
        if upload is None or cancelled or app.clock() > upload.expires_at:
            break
        if upload.data is not None:
            result.http_status, result.bytes_received = 200, len(upload.data)
            result.content_type = upload.received_content_type or upload.content_type
            result.looks_video = upload.content_type.startswith("video/")
            if len(upload.data) != upload.file_size:
                result.reason = f"the upload has {len(upload.data)} bytes, not the {upload.file_size} announced"
                result.http_status = None
            else:
                result.fetched, result.ok, result.data = True, True, upload.data
            return result
        app._stopping.wait(0.05)
    result.reason = "the file was never uploaded"
    return result


def run_import(app: SandboxApp, job: Job) -> None:
    with app._lock:
        project = app._projects.get(job.project_id)
        if project is None:
            return
        names = list(job.body.get("add_media", {}))
        entries = [project.media[n] for n in names if n in project.media]
    knobs = app._job_knobs
    forced = [e for e in entries if e.name in knobs.fail_media]
    url_entries = [e for e in entries if e.kind == "url" and e not in forced]
    fetched = fetch_all(app, [{"uri": e.url, "name": e.name} for e in url_entries]) if url_entries else []
    uploads = [(e, _await_upload(app, job, e)) for e in entries if e.kind == "upload" and e not in forced]
    with app._lock:
        for entry in forced:
            entry.status, entry.error = "failed", UNREACHABLE
        for entry, result in [*zip(url_entries, fetched), *uploads]:
            _settle_file(entry, result)
            if entry.status == "success":
                project.files.append(result)
        for entry in entries:
            if entry.kind == "sequence" and entry not in forced:
                _settle_sequence(entry, project.media)
        files = [e for e in entries if e.kind != "sequence"]
        ok = [e for e in entries if e.status == "success"]
        media_status = {e.name: _media_result(e) for e in entries}
        now = app.clock()
        if entries and not ok:
            reasons = "; ".join(f"{e.name}: {e.error}" for e in entries)
            job.result = {"status": "error", "error_message": f"Failed to import media files ({reasons})",
                          "error_code": "import_failed"}
        else:
            created = []
            for spec in job.body.get("add_compositions", []):
                comp = Composition(
                    id=str(uuid.uuid4()), name=spec.get("name") or f"Composition {len(project.compositions) + 1}",
                    width=spec.get("width", 1920), height=spec.get("height", 1080),
                    clips=[c["media"] for c in spec["clips"]],
                )
                project.compositions.append(comp)
                created.append({"id": comp.id, "name": comp.name})
            job.result = {
                "status": "success" if len(ok) == len(entries) else "partial",
                "media_status": media_status,
                "media_seconds_used": math.ceil(sum(e.duration or 0.0 for e in files if e.status == "success")),
                "created_compositions": created,
            }
        project.updated_at = now
        job.work_done_at = now


def _settle_sequence(entry: MediaEntry, media: dict[str, MediaEntry]) -> None:
    tracks = [(media.get(t["media"]), float(t["offset"])) for t in entry.tracks]
    failed = [t["media"] for t, (m, _) in zip(entry.tracks, tracks) if m is None or m.status != "success"]
    if failed:
        entry.status, entry.error = "failed", f"tracks failed to import: {', '.join(failed)}"
        return
    entry.status = "success"
    entry.duration = max(offset + (m.duration or 0.0) for m, offset in tracks if m is not None)


# --------------------------------------------------------------------------- publish


def _source_of(project_media: dict[str, MediaEntry], comp: Composition | None) -> FileResult | None:
    """The file a publish serves: the first imported clip (a sequence's first imported track)."""
    names = comp.clips if comp else list(project_media)
    for name in names:
        entry = project_media.get(name)
        if entry is None or entry.status != "success":
            continue
        if entry.kind == "sequence":
            for track in entry.tracks:
                sub = project_media.get(track["media"])
                if sub and sub.status == "success" and sub.file and sub.file.fetched:
                    return sub.file
        elif entry.file and entry.file.fetched:
            return entry.file
    return None


def run_publish(app: SandboxApp, job: Job) -> None:
    media_type = job.body.get("media_type", "Video")
    with app._lock:
        project = app._projects.get(job.project_id)
        if project is None:
            return
        comp = next((c for c in project.compositions if c.id == job.composition_id), None)
        source = _source_of(project.media, comp) or next((f for f in project.files if f.fetched), None)
        key = (job.composition_id or "", media_type)
        share_id = project.publishes.get(key)
    if job.error is not None or source is None:
        message = job.error if job.error is not None else "Export failed: the composition has no imported media"
        with app._lock:
            job.result = {"status": "error", "error_message": message}
            job.work_done_at = app.clock()
        return
    title = comp.name if comp else project.display_name()
    render = max(0.0, job.planned_stop - app.clock())
    share = build_share(app, project, source, title, media_type == "Video", render, share_id=share_id)
    with app._lock:
        app._shares[share.id] = share
        project.publishes[key] = share.id
        job.share_id = share.id
        job.result = {"status": "success", "composition_id": job.composition_id or "",
                      "share_url": app._share_url(share.id)}
        job.work_done_at = app.clock()


# --------------------------------------------------------------------------- stopping


def finish(app: SandboxApp, job: Job) -> None:
    """A job stopped or was cancelled: apply the agent's edit, then call back."""
    with app._lock:
        project = app._projects.get(job.project_id)
        state = state_of(job, app.clock())
        if project is not None and state == "stopped":
            project.updated_at = stopped_at(job)
            if job.job_type == "agent" and (job.result or {}).get("status") == "success":
                project.edits.append(str(job.body.get("prompt", "")))
        wanted = bool(job.callback_url) and app._job_knobs.callbacks
        retries = app._job_knobs.callback_retries
        timeout = app._job_knobs.callback_timeout
        payload = status_of(app, job, app.clock())
    if not wanted:
        return
    assert job.callback_url is not None
    for attempt in range(1 + retries):
        if attempt:
            if app._stopping.wait(1.0):
                return
        status, error = None, ""
        try:
            resp = _requests.post(
                job.callback_url, json=payload, timeout=timeout,
                headers={"User-Agent": CALLBACK_UA}, allow_redirects=False,
            )
            status = resp.status_code
            resp.close()
        except _requests.RequestException as exc:
            error = type(exc).__name__
        with app._lock:
            job.callback_attempts.append(CallbackAttempt(at=time.time(), status=status, error=error))
        if status is not None and 200 <= status < 300:
            return
