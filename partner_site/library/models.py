"""The partner's content: recordings, the files they are made of, and their edited versions."""

from __future__ import annotations

import posixpath
import uuid

from django.conf import settings
from django.db import models

class Recording(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recordings")
    title = models.CharField(max_length=300)
    # The stable id Descript carries back as descript:source: the same on every click.
    source_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The storage pipeline's own id (PUT /api/v1/recordings/{external_id}); empty for recordings
    # made in the UI or brought back from Descript as new recordings.
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set on every change made through the API or the admin (bulk_update sets it explicitly).
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def mix(self) -> MediaFile | None:
        return next((f for f in self.files.all() if f.role == MediaFile.Role.MIX), None)

    @property
    def tracks(self) -> list[MediaFile]:
        return [f for f in self.files.all() if f.role == MediaFile.Role.TRACK]


class MediaFile(models.Model):
    """One object in the bucket: the mixed file, or one of the separate tracks."""

    class Role(models.TextChoices):
        MIX = "mix", "Mixed file"
        TRACK = "track", "Separate track"

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=8, choices=Role.choices)
    key = models.CharField(max_length=1024, help_text="Object key in the bucket.")
    name = models.CharField(max_length=300, blank=True)
    start_offset = models.FloatField(default=0.0, help_text="Seconds into the timeline (tracks).")
    position = models.PositiveIntegerField(default=0)
    # As the pipeline (or a HEAD with ?verify=1) reported them; empty/None when not known.
    content_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["role", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "key"], name="mediafile_unique_key_per_recording"),
            models.CheckConstraint(condition=models.Q(start_offset__gte=0), name="mediafile_offset_not_negative"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or posixpath.basename(self.key)


class RecordingVersion(models.Model):
    """An edited version of a recording, brought back from Descript.

    A row exists only once every part is stored: it is created in the same transaction that
    marks the import done, so a half-copied version is never visible.
    """

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recording", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "number"], name="version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.recording} v{self.number}"


class VersionAsset(models.Model):
    class Kind(models.TextChoices):
        AUDIO = "audio", "Audio"
        VIDEO = "video", "Video"
        SUBTITLES = "subtitles", "Subtitles (WebVTT)"
        TRANSCRIPT = "transcript", "Transcript (JSON)"

    version = models.ForeignKey(RecordingVersion, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=1024)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100)

    class Meta:
        ordering = ["version", "kind"]
        constraints = [models.UniqueConstraint(fields=["version", "kind"], name="asset_kind_unique")]

    def __str__(self) -> str:
        return f"{self.version} {self.kind}"
