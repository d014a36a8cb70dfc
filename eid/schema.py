"""Recording -> Edit in Descript project schema. Pure functions: no I/O, no settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SCHEMA_VERSION = "1.0.0"


@dataclass(frozen=True)
class SchemaFile:
    uri: str
    name: str
    start_offset: float | None = None


def build_request(*, drive_id: str, source_id: str, files: Sequence[SchemaFile], multitrack: bool) -> dict:
    """The body of POST /edit_in_descript/schema.

    `source_id` is the recording's stable id: Descript echoes it on share pages as
    descript:source, which is how an edit finds its way back to the same recording.
    Offsets are sent for multitrack sets only: there they place each track on the timeline.
    """
    if not files:
        raise ValueError("a project needs at least one file")
    entries = []
    for f in files:
        entry: dict = {"uri": f.uri, "name": f.name}
        if multitrack:
            entry["start_offset"] = {"seconds": float(f.start_offset or 0.0)}
        entries.append(entry)
    return {
        "partner_drive_id": drive_id,
        "project_schema": {"schema_version": SCHEMA_VERSION, "source_id": source_id, "files": entries},
    }
