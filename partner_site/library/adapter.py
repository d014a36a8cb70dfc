"""The library's side of eid's one door (eid.content): recordings, their options, their versions."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

from django.db.models import Max
from django.urls import reverse

from eid.content import Content, ContentAdapter, ReturnedEdit, Source, SourceFile, StoredEdit

from .models import MediaFile, Recording, RecordingVersion, VersionAsset
from .options import download_options, find_option


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class LibraryContent(ContentAdapter):
    def load_item(self, user: Any, ref: str) -> Recording | None:
        if not ref.isdigit():
            return None
        return Recording.objects.filter(pk=int(ref), owner=user).prefetch_related("files").first()

    def content_for(self, item: Recording, option: str) -> Content | None:
        chosen = find_option(item, option)
        if chosen is None:
            return None
        return Content(
            ref=str(item.pk),
            option=chosen.slug,
            source_id=str(item.source_id),
            title=item.title,
            files=tuple(SourceFile(f.key, f.display_name, f.start_offset) for f in chosen.files),
            multitrack=chosen.is_multitrack,
        )

    def option_names(self, item: Recording) -> tuple[str, ...]:
        return tuple(option.slug for option in download_options(item))

    def find_source(self, user: Any, source_id: str) -> Source | None:
        if not _is_uuid(source_id):
            return None
        recording = Recording.objects.filter(source_id=source_id, owner=user).first()
        return Source(str(recording.pk), recording.title) if recording else None

    def source_exists(self, source_id: str) -> bool:
        return _is_uuid(source_id) and Recording.objects.filter(source_id=source_id).exists()

    def item_url(self, ref: str) -> str:
        return reverse("recording", args=[ref]) if ref.isdigit() else ""

    def describe_item(self, ref: str) -> dict[str, Any]:
        """For webhook payloads: the storage pipeline's own id, when the recording came from it."""
        if not ref.isdigit():
            return {}
        external_id = Recording.objects.filter(pk=int(ref)).values_list("external_id", flat=True).first()
        return {"external_id": external_id or None}

    def store_edit(self, edit: ReturnedEdit) -> StoredEdit:
        """A new version of the source recording, or a new recording (its mix is the edit) with version 1."""
        recording = None
        if edit.source is not None:
            # The row lock orders concurrent edits of one recording, so numbers never collide.
            recording = Recording.objects.select_for_update().filter(pk=int(edit.source.ref)).first()
        if recording is None:  # no source, or it was deleted while the edit came back
            recording = Recording.objects.create(owner=edit.user, title=edit.title)
            primary = edit.primary
            MediaFile.objects.create(recording=recording, role=MediaFile.Role.MIX, key=primary.key,
                                     name=posixpath.basename(primary.key))
        number = (recording.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = RecordingVersion.objects.create(recording=recording, number=number, title=edit.title,
                                                  duration_seconds=edit.duration_seconds)
        VersionAsset.objects.bulk_create(
            VersionAsset(version=version, kind=f.kind, key=f.key, size=f.size, content_type=f.content_type)
            for f in edit.files
        )
        return StoredEdit(ref=str(recording.pk), title=recording.title, version=number)
