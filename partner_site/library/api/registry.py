"""Create-or-update recordings by the pipeline's own id, many at a time.

One chunk is one transaction: the existing rows are read in one query (their files in a
second), then new recordings and files are written with bulk_create, changed ones with
bulk_update, and removed files with one DELETE. A recording whose title, owner and files are
already what the spec says is left alone ("unchanged"): its updated_at does not move.

Two requests creating the same external id at once: the loser's insert breaks the unique
constraint, its chunk rolls back and runs again (now seeing the row), so both end with one
recording. A chunk that still fails is saved one recording at a time, each in a savepoint, and
only the recordings that fail are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import MediaFile, Recording
from .validation import Errors, FileSpec, RecordingSpec

CHUNK = 1000
_RETRIES = 2


class Result(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


@dataclass
class Outcome:
    index: int
    external_id: str | None
    result: Result
    recording: Recording | None = None
    code: str = ""
    detail: str = ""
    status: int = 200  # for an error: the HTTP status it would have on its own
    errors: Errors = field(default_factory=dict)

    @classmethod
    def error(cls, index: int, external_id: str | None, code: str, detail: str, status: int,
              errors: Errors | None = None) -> Outcome:
        return cls(index, external_id, Result.ERROR, code=code, detail=detail, status=status, errors=errors or {})


@dataclass(frozen=True)
class Item:
    index: int
    spec: RecordingSpec
    owner: Any  # the resolved user


NOT_FOUND_DETAIL = "No recording with this external_id that this token may change."


_FILE_COLUMNS = ("role", "key", "name", "start_offset", "position", "content_type", "size")


def _row(values: tuple) -> tuple:
    """A stored file's (role, key, name, offset, position, content_type, size), as FileSpec.row()."""
    role, key, name, offset, position, content_type, size = values
    return (role, key, name, float(offset), position, content_type, size)


def _new_file(recording: Recording, spec: FileSpec, pk: int | None = None) -> MediaFile:
    return MediaFile(pk=pk, recording=recording, role=spec.role, key=spec.key, name=spec.name,
                     start_offset=spec.offset, position=spec.position, content_type=spec.content_type,
                     size=spec.size)


def _stored_files(recording_ids: list[int]) -> dict[int, list[tuple[int, tuple]]]:
    """Each recording's files as (pk, row) tuples, in one query and no model instances (prefetch_related
    costs a queryset clone per recording, which was most of an unchanged bulk request)."""
    files: dict[int, list[tuple[int, tuple]]] = {pk: [] for pk in recording_ids}
    rows = MediaFile.objects.filter(recording_id__in=recording_ids).order_by("role", "position", "id")
    for pk, recording_id, *values in rows.values_list("pk", "recording_id", *_FILE_COLUMNS):
        files[recording_id].append((pk, _row(tuple(values))))
    return files


def _save_chunk(items: Sequence[Item], may_act_for: Callable[[Any], bool], now: datetime) -> list[Outcome]:
    existing = {
        r.external_id: r
        for r in Recording.objects.select_for_update(of=("self",))
        .filter(external_id__in=[i.spec.external_id for i in items])
        .select_related("owner")
    }
    stored_files = _stored_files([r.pk for r in existing.values()])
    outcomes: list[Outcome] = []
    new_recordings: list[tuple[Recording, RecordingSpec]] = []
    changed_recordings: list[Recording] = []
    create_files: list[MediaFile] = []
    update_files: list[MediaFile] = []
    delete_files: list[int] = []

    for item in items:
        spec = item.spec
        recording = existing.get(spec.external_id)
        if recording is None:
            recording = Recording(external_id=spec.external_id, owner=item.owner, title=spec.title)
            new_recordings.append((recording, spec))
            outcomes.append(Outcome(item.index, spec.external_id, Result.CREATED, recording, status=201))
            continue
        if not may_act_for(recording.owner):
            # The same answer as for an id nobody uses: a scoped token learns nothing of others' rows.
            outcomes.append(Outcome.error(item.index, spec.external_id, "not_found", NOT_FOUND_DETAIL, 404))
            continue
        stored = stored_files[recording.pk]
        if (recording.title == spec.title and recording.owner_id == item.owner.pk
                and sorted(row for _, row in stored) == sorted(f.row() for f in spec.files)):
            outcomes.append(Outcome(item.index, spec.external_id, Result.UNCHANGED, recording))
            continue
        recording.title, recording.owner, recording.updated_at = spec.title, item.owner, now
        changed_recordings.append(recording)
        by_key = {row[1]: (pk, row) for pk, row in stored}
        for file_spec in spec.files:
            found = by_key.pop(file_spec.key, None)
            if found is None:
                create_files.append(_new_file(recording, file_spec))
            elif found[1] != file_spec.row():
                update_files.append(_new_file(recording, file_spec, pk=found[0]))
        delete_files.extend(pk for pk, _ in by_key.values())
        outcomes.append(Outcome(item.index, spec.external_id, Result.UPDATED, recording))

    if new_recordings:
        Recording.objects.bulk_create([r for r, _ in new_recordings])
        if any(r.pk is None for r, _ in new_recordings):  # a database that returns no ids from bulk inserts
            ids = dict(Recording.objects.filter(external_id__in=[r.external_id for r, _ in new_recordings])
                       .values_list("external_id", "pk"))
            for r, _ in new_recordings:
                r.pk = ids[r.external_id]
        for recording, spec in new_recordings:
            create_files.extend(_new_file(recording, f) for f in spec.files)
    if changed_recordings:
        Recording.objects.bulk_update(changed_recordings, ["title", "owner", "updated_at"])
    if delete_files:
        MediaFile.objects.filter(pk__in=delete_files).delete()
    if update_files:
        MediaFile.objects.bulk_update(update_files, ["role", "name", "start_offset", "position", "content_type", "size"])
    if create_files:
        MediaFile.objects.bulk_create(create_files)
    return outcomes


def save(items: Sequence[Item], may_act_for: Callable[[Any], bool], *, chunk: int = CHUNK) -> list[Outcome]:
    """Create or update each item's recording; one outcome per item, in the items' order."""
    outcomes: list[Outcome] = []
    for start in range(0, len(items), chunk):
        outcomes.extend(_save_with_retries(items[start:start + chunk], may_act_for))
    return outcomes


def _save_with_retries(items: Sequence[Item], may_act_for: Callable[[Any], bool]) -> list[Outcome]:
    for _attempt in range(_RETRIES + 1):
        try:
            with transaction.atomic():
                return _save_chunk(items, may_act_for, timezone.now())
        except IntegrityError:
            continue  # someone else wrote one of these ids meanwhile: read again
    outcomes = []
    for item in items:  # one at a time, so only the recording that keeps failing fails
        try:
            with transaction.atomic():
                outcomes.extend(_save_chunk([item], may_act_for, timezone.now()))
        except IntegrityError:
            outcomes.append(Outcome.error(
                item.index, item.spec.external_id, "conflict",
                "Another request changed this recording at the same moment; send it again.", 409))
    return outcomes
