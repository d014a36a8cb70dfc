"""What the sandbox remembers: import links, projects, published shares, and the jobs API's jobs.

Plain dataclasses; `SandboxApp` keeps them in dicts behind its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .media import synthetic_chunks


@dataclass
class PendingImport:
    """An import link handed out by POST /v1/edit_in_descript/schema, not yet opened."""

    nonce: str
    partner_drive_id: str
    source_id: str | None
    files: list[dict[str, Any]]
    created_at: float
    used_at: float | None = None


@dataclass
class FileResult:
    """How fetching one partner file went (one row of the import page)."""

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
class Project:
    """What an opened import link made: the fetched files, ready to publish."""

    id: str
    partner_drive_id: str
    source_id: str | None
    files: list[FileResult]
    created_at: float
    # The jobs API's projects (an Edit in Descript import leaves these empty).
    name: str = ""
    folder_path: str = ""
    team_access: str = "none"
    updated_at: float | None = None
    media: dict[str, MediaEntry] = field(default_factory=dict)
    compositions: list[Composition] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)  # agent prompts applied, oldest first
    # (composition_id, media_type) -> share id: republishing reuses the share URL.
    publishes: dict[tuple[str, str], str] = field(default_factory=dict)

    def display_name(self) -> str:
        return self.name or self.default_title()

    def default_title(self) -> str:
        """What the Publish form suggests: "Edited: Host + Guest 1" (a multitrack set names every track)."""
        names = [f.name for f in self.files if f.name] or ["Untitled"]
        shown = " + ".join(names[:3]) + (f" + {len(names) - 3} more" if len(names) > 3 else "")
        return f"Edited: {shown}"


@dataclass
class Share:
    """A published share page and its media (rendering until published_at + render_seconds)."""

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


# --------------------------------------------------------------------------- the jobs API


@dataclass
class MediaEntry:
    """One `add_media` item of a jobs-API project: a URL, a direct upload, or a multitrack sequence."""

    name: str
    kind: str  # "url" | "upload" | "sequence"
    url: str = ""
    language: str | None = None
    content_type: str = ""
    file_size: int = 0
    tracks: list[dict[str, Any]] = field(default_factory=list)  # [{"media", "offset"}]
    upload_id: str = ""  # direct uploads: the id in the upload URL
    status: str = "pending"  # "pending" | "success" | "failed"
    duration: float | None = None
    error: str = ""
    file: FileResult | None = field(default=None, repr=False)  # what fetching (or the upload) got

    def media_type(self) -> str:
        """What GET /v1/projects/<id> calls it: audio, video, image, sequence or other."""
        if self.kind == "sequence":
            return "sequence"
        ctype = (self.file.content_type if self.file else "") or self.content_type
        if ctype.startswith("image/"):
            return "image"
        if (self.file and self.file.looks_video) or ctype.startswith("video/"):
            return "video"
        if ctype.startswith("audio/") or self.name.lower().endswith((".wav", ".mp3", ".m4a", ".aac", ".flac")):
            return "audio"
        return "other"


@dataclass
class Composition:
    """A timeline of a jobs-API project (`add_compositions`)."""

    id: str
    name: str
    width: int
    height: int
    clips: list[str]  # media display names, in order


@dataclass
class Upload:
    """A direct-upload slot handed out in `upload_urls`: PUT bytes here before the job reads them."""

    id: str
    signature: str
    project_id: str
    media: str
    content_type: str
    file_size: int
    expires_at: float
    data: bytes | None = field(default=None, repr=False)
    received_content_type: str = ""


@dataclass
class CallbackAttempt:
    """One POST of a job's status to its callback_url, and how the receiver answered."""

    at: float  # wall clock
    status: int | None  # None: no HTTP answer (refused, timed out)
    error: str = ""


@dataclass
class Job:
    """A Descript job. Its state is computed from the clock when read (see jobs.job_status).

    Timeline (app clock): queued until `started_at`, running until `planned_stop`, stopped at
    max(planned_stop, work_done_at) once the background work (fetching media, publishing) is done.
    """

    id: str
    seq: int  # creation order: newest first in GET /v1/jobs, and the cursor
    job_type: str  # "import/project_media" | "agent" | "publish"
    project_id: str
    created_at: float
    started_at: float
    planned_stop: float
    body: dict[str, Any]
    callback_url: str | None = None
    labels: tuple[str, ...] = ()
    composition_id: str | None = None
    error: str | None = None  # the job ends in error with this message (agent/publish faults)
    cancelled_at: float | None = None
    work_started: bool = False
    work_done_at: float | None = None
    result: dict[str, Any] | None = None  # set by the work (import, publish) or at stop (agent)
    share_id: str | None = None  # publish: known once rendering starts
    stop_handled: bool = False  # callback sent (or not wanted) and stop effects applied
    callback_attempts: list[CallbackAttempt] = field(default_factory=list)
