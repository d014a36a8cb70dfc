"""What the sandbox remembers: pending import links, imported projects and published shares.

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
