"""Descript's jobs API (openapi.yml: jobs, projects, status): typed answers, typed failures.

Every answer is parsed into a lenient pydantic model; every failure is a JobsError whose `kind`
says what happened and whose `words` say it to people. The HTTP session, timeouts and Retry-After
parsing are eid.client's; the retry policy is this module's own, because a job submit costs money:

- GET and DELETE: one more try after a 5xx or a lost connection.
- POST (a submit): never sent twice when the first may have reached Descript. A read timeout, a
  connection lost after sending, or a 5xx raises with `maybe_created=True`, and the caller looks
  for the job with `find_submitted` before submitting again. A POST that never left (the
  connection was refused or timed out while connecting) is tried once more.
- 429: the token's shared RateBudget is held off for Retry-After, so every process waits; a
  worker's client (wait_for_budget=False) raises `rate_limited` with `retry_after` for its caller
  to reschedule, the CLI's (True) sleeps and tries again.

Before each request the client reserves a slot in the budget; when there is none, a worker's
client raises `rate_limited` without calling Descript at all.

No log line or error carries the token, a callback URL or a signed link (download_url,
upload_urls): bodies are never logged, and those fields are left out of the models' repr.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from urllib3.exceptions import NewConnectionError

from ..client import DescriptClient, DescriptError, _error_fields, parse_retry_after
from ..logging import redact
from ..waiting import hand_back_connections
from .budget import RateBudget

log = logging.getLogger(__name__)

# A 429 without Retry-After: wait this long (Descript's windows are a minute).
DEFAULT_HOLD_OFF_SECONDS = 30.0
# Reconciling a submit: how far before `since` to look, for the clocks of two machines.
CLOCK_SKEW = timedelta(minutes=2)
# GET /jobs looks back at most 30 days.
MAX_LOOKBACK = timedelta(days=30)

TEAM_ACCESS = ("edit", "comment", "view", "none")
MEDIA_TYPES = ("Video", "Audio")
RESOLUTIONS = ("480p", "720p", "1080p", "1440p", "4K")
ACCESS_LEVELS = ("public", "unlisted", "drive", "private")
# The `type` values GET /jobs documents as filters (publish jobs exist but are not a filter).
FILTERABLE_TYPES = ("import/project_media", "agent")


# --- Failures ---------------------------------------------------------------------------------


class JobsError(DescriptError):
    """A jobs API call that did not give us its answer; `words` say why to people."""

    class Kind(StrEnum):
        BAD_REQUEST = "bad_request"
        UNAUTHORIZED = "unauthorized"
        PAYMENT_REQUIRED = "payment_required"
        FORBIDDEN = "forbidden"
        NOT_FOUND = "not_found"
        CONFLICT = "conflict"
        RATE_LIMITED = "rate_limited"
        TIMEOUT = "timeout"
        UPSTREAM_ERROR = "upstream_error"
        BAD_ANSWER = "bad_answer"
        MISCONFIGURED = "misconfigured"

    WORDS = {
        "bad_request": "Descript did not accept the request as it was sent.",
        "unauthorized": "Descript did not accept the API token: it is wrong, revoked or expired. "
                        "An operator needs to set a valid Descript token.",
        "payment_required": "The Descript account has run out of media minutes or AI credits for this job. "
                            "Add minutes or credits in Descript, then try again.",
        "forbidden": "The Descript token's drive may not do this (the project may belong to another drive, "
                     "or the drive's settings do not allow it).",
        "not_found": "Descript does not know this job or project: it may have been deleted, "
                     "or it is older than the 30 days Descript keeps jobs.",
        "conflict": "Descript says this clashes with the job's or project's current state.",
        "rate_limited": "Descript is receiving too many requests from us right now; "
                        "this will be tried again shortly.",
        "timeout": "Descript did not answer in time.",
        "upstream_error": "Descript had a problem or could not be reached.",
        "bad_answer": "Descript's answer was not what its API documents.",
        "misconfigured": "The Descript API token is not configured.",
    }
    RETRYABLE = frozenset({"rate_limited", "timeout", "upstream_error"})

    def __init__(
        self,
        kind: str,
        words: str | None = None,
        *,
        detail: str = "",
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
        attempts: int = 0,
        maybe_created: bool = False,
        latency_ms: int | None = None,
    ) -> None:
        words = words or self.WORDS[str(self.Kind(kind))]
        super().__init__(kind, words, status=status, code=code, retry_after=retry_after, attempts=attempts,
                         latency_ms=latency_ms)
        self.words = words
        self.detail = _clean(detail)
        self.maybe_created = maybe_created

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE

    def __repr__(self) -> str:
        return f"JobsError({self.kind!s}, status={self.status}, maybe_created={self.maybe_created})"


_STATUS_KINDS = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
                 404: "not_found", 409: "conflict", 422: "bad_request", 429: "rate_limited"}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)


def _clean(text: str) -> str:
    """Descript's own message, safe to keep: no links (they may be signed), no token, short."""
    return redact(_URL.sub("[link]", text or "")).strip()[:300]


# --- Answers ------------------------------------------------------------------------------------


class _Lenient(BaseModel):
    # Descript may add fields at any time; only the ones we read are typed.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(_Lenient):
    label: str | None = None
    percent: float | None = None
    last_update_at: datetime | None = None
    composition_id: str | None = None
    share_url: str | None = None


class MediaStatus(_Lenient):
    status: str
    duration_seconds: float | None = None
    error_message: str | None = None


class CreatedComposition(_Lenient):
    id: str
    name: str | None = None


class JobResult(_Lenient):
    """A stopped job's result; which fields are present depends on the job's type."""

    status: str  # success | partial | error
    # import
    media_status: dict[str, MediaStatus] = {}
    created_compositions: list[CreatedComposition] = []
    media_seconds_used: float | None = None
    # agent
    agent_response: str | None = None
    project_changed: bool | None = None
    ai_credits_used: float | None = None
    # publish (download_url is signed: never in a repr, a log line or a page)
    composition_id: str | None = None
    share_url: str | None = None
    download_url: str | None = Field(default=None, repr=False)
    download_url_expires_at: datetime | None = None
    # error
    error_message: str | None = None
    error_code: str | None = None

    @property
    def failed_media(self) -> dict[str, str]:
        """Display name -> why, for each file an import could not bring in."""
        return {name: (m.error_message or "The file could not be imported.")
                for name, m in self.media_status.items() if m.status != "success"}


class Job(_Lenient):
    job_id: str
    job_type: str
    job_state: str  # queued | running | stopped | cancelled
    project_id: str | None = None
    project_url: str | None = None
    drive_id: str | None = None
    created_at: datetime | None = None
    stopped_at: datetime | None = None
    progress: Progress | None = None
    result: JobResult | None = None

    @property
    def stopped(self) -> bool:
        return self.job_state in ("stopped", "cancelled")


class JobCreated(_Lenient):
    job_id: str
    drive_id: str | None = None
    project_id: str | None = None
    project_url: str | None = None
    upload_urls: dict[str, Any] | None = Field(default=None, repr=False)  # signed PUT links


class JobPage(_Lenient):
    jobs: list[Job]
    next_cursor: str | None = None


class ProjectSummary(_Lenient):
    id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProjectPage(_Lenient):
    projects: list[ProjectSummary]
    next_cursor: str | None = None


class ProjectMedia(_Lenient):
    type: str  # audio | video | image | sequence | other
    duration: float | None = None


class ProjectComposition(_Lenient):
    id: str
    name: str | None = None
    duration: float | None = None
    media_type: str | None = None


class Project(_Lenient):
    id: str
    name: str
    drive_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    media_files: dict[str, ProjectMedia] = {}
    compositions: list[ProjectComposition] = []


class ApiStatus(_Lenient):
    status: str


class _Pagination(_Lenient):
    next_cursor: str | None = None


class _JobList(_Lenient):
    data: list[Job]
    pagination: _Pagination = _Pagination()


class _ProjectList(_Lenient):
    data: list[ProjectSummary]
    pagination: _Pagination = _Pagination()


# --- Request bodies (pure) ----------------------------------------------------------------------


def _refuse(words: str) -> JobsError:
    return JobsError("bad_request", words)


def _web_url(url: object, what: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise _refuse(f"The {what} is missing.")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in " \t\r\n"):
        raise _refuse(f"The {what} is not a web address (http or https).")
    return url


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _refuse(f"The {what} is missing.")
    return value.strip()


def _one_of(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise _refuse(f"The {what} must be one of {', '.join(allowed)}.")
    return value


def url_media(url: str, *, language: str | None = None) -> dict[str, Any]:
    """One file Descript fetches itself (it must answer Range requests and stay valid 12-48 h)."""
    item: dict[str, Any] = {"url": _web_url(url, "media link")}
    if language:
        if not re.fullmatch(r"[A-Za-z]{2}", language):
            raise _refuse("The language must be a two-letter ISO 639-1 code, such as en or es.")
        item["language"] = language.lower()
    return item


def multitrack(tracks: list[tuple[str, float]]) -> dict[str, Any]:
    """A multitrack sequence of media already in the import, each at its offset in seconds."""
    if not tracks:
        raise _refuse("A multitrack sequence needs at least one track.")
    out = []
    for media, offset in tracks:
        name = _name(media, "track's media name")
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not math.isfinite(offset) or offset < 0:
            raise _refuse(f"The offset of track {name!r} must be a number of seconds, 0 or more.")
        out.append({"media": name, "offset": float(offset)})
    return {"tracks": out}


def composition(name: str | None, clips: list[str], *, width: int | None = None,
                height: int | None = None) -> dict[str, Any]:
    """A composition for import_body: its clips are media names of the same import, in order."""
    if not clips:
        raise _refuse("A composition needs at least one clip.")
    out: dict[str, Any] = {"clips": [{"media": _name(c, "clip's media name")} for c in clips]}
    if name:
        out["name"] = name.strip()
    for key, value in (("width", width), ("height", height)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _refuse(f"The composition's {key} must be a whole number of pixels.")
            out[key] = value
    return out


def import_body(
    *,
    project_name: str,
    media: Mapping[str, dict[str, Any]],
    compositions: list[dict[str, Any]] | None = None,
    folder_name: str | None = None,
    team_access: str | None = None,
    callback_url: str | None = None,
    project_id: str | None = None,
) -> dict[str, Any]:
    """The body of POST /jobs/import/project_media, checked the way Descript would."""
    body: dict[str, Any] = {}
    if project_id:
        body["project_id"] = _name(project_id, "project id")
    else:
        body["project_name"] = _name(project_name, "project name")
        if folder_name:
            body["folder_name"] = _name(folder_name, "folder name").strip("/")
        if access := _one_of(team_access, TEAM_ACCESS, "team access"):
            body["team_access"] = access
    if not media:
        raise _refuse("An import needs at least one file.")
    add_media: dict[str, dict[str, Any]] = {}
    for key, item in media.items():
        name = _name(key, "media name")
        if name.startswith("/") or name in add_media:
            raise _refuse(f"The media name {name!r} is not usable (it starts with / or is used twice).")
        if not isinstance(item, dict) or not ({"url", "tracks", "content_type"} & item.keys()):
            raise _refuse(f"The media {name!r} needs a link, tracks or an upload.")
        add_media[name] = dict(item)
    known = set(add_media)
    for name, item in add_media.items():
        for track in item.get("tracks", ()):
            if track.get("media") not in known and not project_id:
                raise _refuse(f"The sequence {name!r} names a track that is not in the import.")
    body["add_media"] = add_media
    if compositions:
        for comp in compositions:
            clips = comp.get("clips") if isinstance(comp, dict) else None
            if not clips:
                raise _refuse("A composition needs at least one clip.")
            for clip in clips:
                if clip.get("media") not in known and not project_id:
                    raise _refuse("A composition names a clip that is not in the import.")
        body["add_compositions"] = [dict(c) for c in compositions]
    if callback_url:
        body["callback_url"] = _web_url(callback_url, "callback address")
    return body


def agent_body(
    *,
    prompt: str,
    project_id: str | None = None,
    project_name: str | None = None,
    composition_id: str | None = None,
    model: str | None = None,
    team_access: str | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """The body of POST /jobs/agent: a prompt and exactly one of project_id / project_name."""
    body: dict[str, Any] = {"prompt": _name(prompt, "prompt")}
    if bool(project_id) == bool(project_name):
        raise _refuse("Underlord needs either the project to edit or the name of a new one, not both.")
    if project_id:
        body["project_id"] = _name(project_id, "project id")
        if team_access:
            raise _refuse("Team access applies only to a new project.")
    else:
        body["project_name"] = _name(project_name, "project name")
        if composition_id:
            raise _refuse("A composition can only be chosen in an existing project.")
        if access := _one_of(team_access, TEAM_ACCESS, "team access"):
            body["team_access"] = access
    if composition_id:
        body["composition_id"] = _name(composition_id, "composition id")
    if model:
        body["model"] = _name(model, "model")
    if callback_url:
        body["callback_url"] = _web_url(callback_url, "callback address")
    return body


def publish_body(
    *,
    project_id: str,
    composition_id: str | None = None,
    media_type: str | None = None,
    resolution: str | None = None,
    access_level: str | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """The body of POST /jobs/publish (a resolution only for video)."""
    body: dict[str, Any] = {"project_id": _name(project_id, "project id")}
    if composition_id:
        body["composition_id"] = _name(composition_id, "composition id")
    kind = _one_of(media_type, MEDIA_TYPES, "media type")
    if kind:
        body["media_type"] = kind
    if res := _one_of(resolution, RESOLUTIONS, "resolution"):
        if kind == "Audio":
            raise _refuse("A resolution applies only to video.")
        body["resolution"] = res
    if level := _one_of(access_level, ACCESS_LEVELS, "access level"):
        body["access_level"] = level
    if callback_url:
        body["callback_url"] = _web_url(callback_url, "callback address")
    return body


def _iso(value: datetime, what: str) -> str:
    if value.tzinfo is None:
        raise _refuse(f"The {what} time needs a time zone.")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _limit(limit: int | None) -> str | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise _refuse("A page holds 1 to 100 items.")
    return str(limit)


# --- The client ---------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the request cannot have reached Descript (no connection was ever made)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(reason, NewConnectionError)
    return False


class JobsClient:
    """Descript's jobs, projects and status endpoints with one token and its shared rate budget.

    `calls` counts HTTP requests this object actually sent (retries included); callers read
    its change around a call to know what a step cost.
    """

    def __init__(
        self,
        *,
        base: str | None = None,
        token: str | None = None,
        budget: RateBudget | None = None,
        wait_for_budget: bool = False,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        patience: float = 600.0,
    ) -> None:
        self._http = DescriptClient(base=base, token=token, connect_timeout=connect_timeout,
                                    read_timeout=read_timeout)
        self.token = self._http.token
        # None: the token's own budget, the one every process shares.
        self.budget = budget if budget is not None else (RateBudget(self.token) if self.token else None)
        self.wait_for_budget = wait_for_budget
        self.patience = patience  # how long a waiting client (the CLI) waits for the budget in all
        self.calls = 0

    def __repr__(self) -> str:  # never the token
        return f"<JobsClient {self._http.base}>"

    # --- jobs ---------------------------------------------------------------------------------

    def import_project_media(self, body: dict[str, Any]) -> JobCreated:
        """POST /jobs/import/project_media with a body from import_body()."""
        response = self._request("POST", "/jobs/import/project_media", body=body, what="project")
        return self._parse(response, JobCreated)

    def agent(
        self,
        *,
        prompt: str,
        project_id: str | None = None,
        project_name: str | None = None,
        composition_id: str | None = None,
        model: str | None = None,
        team_access: str | None = None,
        callback_url: str | None = None,
    ) -> JobCreated:
        """POST /jobs/agent: Underlord edits a project as the prompt says."""
        body = agent_body(prompt=prompt, project_id=project_id, project_name=project_name,
                          composition_id=composition_id, model=model, team_access=team_access,
                          callback_url=callback_url)
        return self._parse(self._request("POST", "/jobs/agent", body=body, what="project"), JobCreated)

    def publish(
        self,
        *,
        project_id: str,
        composition_id: str | None = None,
        media_type: str | None = None,
        resolution: str | None = None,
        access_level: str | None = None,
        callback_url: str | None = None,
    ) -> JobCreated:
        """POST /jobs/publish: render a composition; the stopped job carries share and download links."""
        body = publish_body(project_id=project_id, composition_id=composition_id, media_type=media_type,
                            resolution=resolution, access_level=access_level, callback_url=callback_url)
        return self._parse(self._request("POST", "/jobs/publish", body=body, what="project"), JobCreated)

    def get_job(self, job_id: str) -> Job:
        return self._parse(self._request("GET", self._job_path(job_id), what="job"), Job)

    def list_jobs(
        self,
        *,
        project_id: str | None = None,
        type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """GET /jobs: one page, newest first (Descript's default window is the last 7 days)."""
        params = {
            "project_id": project_id or None,
            "type": type or None,
            "created_after": _iso(created_after, "created_after") if created_after else None,
            "created_before": _iso(created_before, "created_before") if created_before else None,
            "limit": _limit(limit),
            "cursor": cursor or None,
        }
        page = self._parse(self._request("GET", "/jobs", params=params, what="job"), _JobList)
        return JobPage(jobs=page.data, next_cursor=page.pagination.next_cursor or None)

    def iter_jobs(
        self,
        *,
        project_id: str | None = None,
        type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Every job the filters match, following next_cursor page after page."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_jobs(project_id=project_id, type=type, created_after=created_after,
                                  created_before=created_before, limit=page_size, cursor=cursor)
            yield from page.jobs
            cursor = self._next(page.next_cursor, seen)
            if cursor is None:
                return

    def cancel_job(self, job_id: str) -> None:
        """DELETE /jobs/{id} (204). A job that has already stopped answers `conflict` or succeeds."""
        self._request("DELETE", self._job_path(job_id), what="job")

    # --- projects and status ------------------------------------------------------------------

    def list_projects(
        self,
        *,
        name: str | None = None,
        folder_path: str | None = None,
        created_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        sort: str | None = None,
        direction: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ProjectPage:
        """GET /projects: one page of the token's drive's projects (`name` matches a part, any case)."""
        params = {
            "name": name or None,
            "folder_path": folder_path or None,
            "created_by": created_by or None,
            "created_after": _iso(created_after, "created_after") if created_after else None,
            "created_before": _iso(created_before, "created_before") if created_before else None,
            "updated_after": _iso(updated_after, "updated_after") if updated_after else None,
            "updated_before": _iso(updated_before, "updated_before") if updated_before else None,
            "sort": _one_of(sort, ("name", "created_at", "updated_at", "last_viewed_at"), "sort"),
            "direction": _one_of(direction, ("asc", "desc"), "direction"),
            "limit": _limit(limit),
            "cursor": cursor or None,
        }
        page = self._parse(self._request("GET", "/projects", params=params, what="project"), _ProjectList)
        return ProjectPage(projects=page.data, next_cursor=page.pagination.next_cursor or None)

    def iter_projects(self, *, page_size: int = 100, **filters: Any) -> Iterator[ProjectSummary]:
        """Every project the filters (those of list_projects) match, following next_cursor."""
        filters.pop("cursor", None)
        filters.pop("limit", None)
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_projects(limit=page_size, cursor=cursor, **filters)
            yield from page.projects
            cursor = self._next(page.next_cursor, seen)
            if cursor is None:
                return

    def get_project(self, project_id: str) -> Project:
        path = f"/projects/{quote(_name(project_id, 'project id'), safe='')}"
        return self._parse(self._request("GET", path, what="project"), Project)

    def status(self) -> ApiStatus:
        """GET /status: is the token valid and the API up (401: the token is not)."""
        return self._parse(self._request("GET", "/status", what="status"), ApiStatus)

    # --- reconciling a submit that may have created a job ------------------------------------

    def find_submitted(
        self,
        *,
        job_type: str,
        since: datetime,
        project_id: str | None = None,
        project_name: str | None = None,
        exclude: Collection[str] = (),
    ) -> Job | None:
        """The newest `job_type` job created since `since` in the project, or None.

        For a submit whose answer was lost: the import (and an agent run that creates its
        project) is found by its project's unique name first, then that project's jobs. Jobs
        in `exclude` (those the caller already knows, e.g. an earlier failed attempt's) are
        never the answer.
        """
        if not project_id and not project_name:
            raise ValueError("find_submitted needs the project's id or its unique name")
        after = max(_iso_ready(since) - CLOCK_SKEW, datetime.now(UTC) - MAX_LOOKBACK + timedelta(minutes=1))
        if project_id:
            project_ids = [project_id]
        else:
            project_ids = [p.id for p in self.iter_projects(name=project_name) if p.name == project_name]
        # Publish is not a documented `type` filter: those are matched here instead.
        type_filter = job_type if job_type in FILTERABLE_TYPES else None
        found = [
            job
            for pid in project_ids
            for job in self.iter_jobs(project_id=pid, type=type_filter, created_after=after)
            if job.job_type == job_type and job.job_id not in exclude
            and (job.created_at is None or job.created_at >= after)
        ]
        if not found:
            return None
        return max(found, key=lambda j: j.created_at or datetime.min.replace(tzinfo=UTC))

    # --- the request loop ---------------------------------------------------------------------

    @staticmethod
    def _job_path(job_id: str) -> str:
        return f"/jobs/{quote(_name(job_id, 'job id'), safe='')}"

    @staticmethod
    def _next(cursor: str | None, seen: set[str]) -> str | None:
        if not cursor:
            return None
        if cursor in seen:  # a cursor that leads back would page forever
            raise JobsError("bad_answer", detail="Descript's pagination repeated a cursor.")
        seen.add(cursor)
        return cursor

    def _take_budget(self, deadline: float) -> None:
        """Reserve one call in the shared budget, or wait for it (CLI), or say when (worker)."""
        if self.budget is None:
            return
        while True:
            wait = self.budget.reserve()
            if wait <= 0:
                return
            if not self.wait_for_budget or time.monotonic() + wait > deadline:
                raise JobsError("rate_limited", retry_after=round(wait, 3),
                                detail="The shared rate budget for this token is spent for now.")
            time.sleep(wait)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str | None] | None = None,
        what: str,
    ) -> requests.Response:
        if not self.token:
            raise JobsError("misconfigured")
        submit = method == "POST"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = (self._http.connect_timeout, self._http.read_timeout)
        started = time.monotonic()
        deadline = started + self.patience
        attempts = 0
        retried = False
        while True:
            self._take_budget(deadline)
            attempts += 1
            self.calls += 1
            sent_at = time.monotonic()
            error: JobsError
            # Whoever waits here (a worker, a cancel in a web request) holds no pooled connection.
            hand_back_connections()
            try:
                response = self._http._send(method, path, body=body, params=query or None, timeout=timeout)
            except requests.exceptions.ReadTimeout:
                # The request was sent: a submit may have created its job; a read's time is spent.
                log.info("descript %s %s: no answer in %.1fs", method, path, time.monotonic() - sent_at)
                raise JobsError("timeout", attempts=attempts, maybe_created=submit,
                                latency_ms=self._ms(started)) from None
            except requests.exceptions.RequestException as exc:
                never_sent = _never_sent(exc)
                log.info("descript %s %s: connection failed (%s)", method, path, type(exc).__name__)
                kind = "timeout" if isinstance(exc, requests.exceptions.ConnectTimeout) else "upstream_error"
                error = JobsError(kind, attempts=attempts, maybe_created=submit and not never_sent,
                                  detail=type(exc).__name__, latency_ms=self._ms(started))
                may_retry = never_sent or not submit
            else:
                status = response.status_code
                log.info("descript %s %s: %s in %d ms", method, path, status, (time.monotonic() - sent_at) * 1000)
                if 200 <= status < 300:
                    return response
                code, message = _error_fields(response)
                if status == 429:
                    hold = parse_retry_after(response.headers.get("Retry-After"))
                    hold = DEFAULT_HOLD_OFF_SECONDS if hold is None else hold
                    if self.budget is not None:
                        self.budget.hold_off(hold)
                    if self.wait_for_budget and time.monotonic() + hold <= deadline:
                        if self.budget is None:
                            time.sleep(hold)
                        continue  # the budget makes this client (and every other) wait first
                    raise JobsError("rate_limited", status=429, code=code or "rate_limit_exceeded", detail=message,
                                    retry_after=hold, attempts=attempts, latency_ms=self._ms(started))
                if status < 500:
                    raise self._refusal(status, code, message, what=what, attempts=attempts,
                                        latency_ms=self._ms(started))
                error = JobsError("upstream_error", status=status, code=code, detail=message, attempts=attempts,
                                  maybe_created=submit, latency_ms=self._ms(started))
                may_retry = not submit
            if retried or not may_retry:
                raise error
            retried = True
            time.sleep(0.2)  # a moment for a restarting upstream, not a backoff schedule

    @staticmethod
    def _ms(started: float) -> int:
        return int((time.monotonic() - started) * 1000)

    @staticmethod
    def _refusal(status: int, code: str, message: str, *, what: str, attempts: int, latency_ms: int) -> JobsError:
        kind = _STATUS_KINDS.get(status, "bad_request" if 400 <= status < 500 else "bad_answer")
        words = None
        if kind == "not_found":
            words = {
                "job": "Descript does not know this job: it may have been deleted, or it is older than "
                       "the 30 days Descript keeps jobs.",
                "project": "Descript does not know this project or composition: it may have been deleted.",
            }.get(what)
        elif kind == "bad_request" and message:
            words = f"Descript did not accept the request: {_clean(message)}"
        return JobsError(kind, words, status=status, code=code, detail=message, attempts=attempts,
                         latency_ms=latency_ms)

    @staticmethod
    def _parse(response: requests.Response, model: type[_M]) -> _M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:5]
            raise JobsError("bad_answer", status=response.status_code, code="bad_body",
                            detail=f"{model.__name__}: {', '.join(fields) or 'not JSON'}") from None


def _iso_ready(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise _refuse("The time to look from needs a time zone.")
    return value
