"""The recordings API's shapes: what a pipeline sends, and what it gets back.

Requests are checked by `partner_site.library.api.validation` (plain Python, fast enough for
1 000 recordings a request); the request serializers here describe the same rules for the
OpenAPI document, from the same constants. Responses are built by the `*_dict` functions below
(no serializer per row on the bulk path) and described by the response serializers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count
from rest_framework import serializers

from eid.models import Handoff, ReturnedExport

from .api import validation as v
from .models import MediaFile, Recording, RecordingVersion

RESULTS = ("created", "updated", "unchanged")


# --- Requests (documentation of validation.parse_recording) -----------------------------------


class FileIn(serializers.Serializer):
    key = serializers.CharField(
        max_length=v.MAX_KEY_BYTES,
        help_text="The object's key in the site's bucket: relative (no leading “/”), no “..” segment, "
                  "not a URL. Its extension (or content_type) must be one Descript imports: "
                  ".wav .flac .aac .m4a .mp3 .mp4 .mov.")
    name = serializers.CharField(max_length=v.MAX_NAME, required=False, allow_blank=True, allow_null=True,
                                 help_text="Shown to the user; defaults to the key's file name.")
    content_type = serializers.CharField(max_length=v.MAX_CONTENT_TYPE, required=False, allow_null=True,
                                         help_text="The object's Content-Type, when known (e.g. audio/wav).")
    size = serializers.IntegerField(min_value=1, max_value=v.MAX_SIZE, required=False, allow_null=True,
                                    help_text="Bytes, when known. With ?verify=1 it must match the object.")


class TrackIn(FileIn):
    offset = serializers.FloatField(min_value=0, max_value=v.MAX_OFFSET_SECONDS, required=False, default=0,
                                    allow_null=True, help_text="Seconds into the timeline where this track starts "
                                                               "(0 when left out or null).")


class RecordingIn(serializers.Serializer):
    owner = serializers.CharField(
        max_length=v.MAX_USERNAME, required=False,
        help_text="The owner's username. Required, except with a token scoped to one user (then that user). "
                  "Naming another user than the token's own is 403 `owner_not_allowed`.")
    title = serializers.CharField(max_length=v.MAX_TITLE)
    mix = FileIn(required=False, allow_null=True, help_text="The mixed file.")
    tracks = serializers.ListField(child=TrackIn(), max_length=v.MAX_TRACKS, required=False, allow_null=True,
                                   help_text=f"The separate tracks, in order (at most {v.MAX_TRACKS}). "
                                             "Give mix, tracks, or both.")


class RecordingPut(RecordingIn):
    external_id = serializers.CharField(required=False, allow_null=True,
                                        help_text="Optional; if given, the id in the URL.")


class BulkIn(serializers.Serializer):
    # Items are documented in words, not as a schema: each is checked on its own and a bad one is
    # that item's error in a 200 answer, never the whole request's 400.
    recordings = serializers.ListField(
        child=serializers.JSONField(), max_length=1000,
        help_text="At most 1 000 recordings. Each is a RecordingPutRequest (owner, title, mix, tracks) "
                  f"with its `external_id` (pattern {v.EXTERNAL_ID_PATTERN}). Each is checked, and saved or "
                  "refused, on its own: a bad one is reported in its result, the others are saved.")


# --- Responses -------------------------------------------------------------------------------


class FileOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField(help_text="As given, or the key's file name.")
    content_type = serializers.CharField(allow_null=True)
    size = serializers.IntegerField(allow_null=True)


class TrackOut(FileOut):
    offset = serializers.FloatField()


class RecordingOut(serializers.Serializer):
    external_id = serializers.CharField()
    ref = serializers.CharField(help_text="The site's own id: the `item_ref` of handoffs, the recording of "
                                          "import links.")
    source_id = serializers.UUIDField(help_text="What Descript carries back (descript:source); never changes.")
    owner = serializers.CharField()
    title = serializers.CharField()
    mix = FileOut(allow_null=True)
    tracks = TrackOut(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="Last change of title, owner or files through the API.")


class AssetOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["audio", "video", "subtitles", "transcript"])
    key = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()


class VersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    title = serializers.CharField()
    duration_seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    assets = AssetOut(many=True)


class HandoffsOut(serializers.Serializer):
    total = serializers.IntegerField(help_text="Clicks on “Edit in Descript” (and import links) for it.")
    by_outcome = serializers.DictField(child=serializers.IntegerField())
    last_outcome = serializers.CharField(allow_null=True)
    last_at = serializers.DateTimeField(allow_null=True)


class ImportsOut(serializers.Serializer):
    in_flight = serializers.IntegerField(help_text="Edits coming back to it, still rendering or copying.")
    done = serializers.IntegerField()
    failed = serializers.IntegerField()


class RecordingDetailOut(RecordingOut):
    versions = VersionOut(many=True)
    handoffs = HandoffsOut()
    imports = ImportsOut()


class PutOut(serializers.Serializer):
    result = serializers.ChoiceField(choices=RESULTS, help_text="`unchanged`: the body matched what was stored.")
    recording = RecordingOut()


class BulkItemOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request's list.")
    external_id = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(choices=(*RESULTS, "error"))
    ref = serializers.CharField(required=False)
    source_id = serializers.UUIDField(required=False)
    code = serializers.CharField(required=False, help_text="Errors only: invalid, owner_not_allowed, not_found, "
                                                           "duplicate, conflict.")
    detail = serializers.CharField(required=False)
    errors = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.errors
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="`invalid` only: each field's messages, by path (tracks.2.key).")


class BulkCounts(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    error = serializers.IntegerField()


class BulkOut(serializers.Serializer):
    results = BulkItemOut(many=True)
    counts = BulkCounts()


class ImportInFlightOut(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    title = serializers.CharField()


class DeleteOut(serializers.Serializer):
    external_id = serializers.CharField()
    deleted = serializers.BooleanField()
    files = serializers.IntegerField(help_text="File rows removed (the objects stay in the bucket).")
    versions = serializers.IntegerField(help_text="Edited versions removed (their objects stay in the bucket).")
    imports_in_flight = ImportInFlightOut(many=True, help_text="Edits of it still coming back: each will land "
                                                                "as a new recording of the user who sent it.")
    detail = serializers.CharField()


# --- Building the responses ------------------------------------------------------------------


def _file_dict(f: MediaFile, *, track: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"key": f.key, "name": f.display_name, "content_type": f.content_type or None,
                           "size": f.size}
    if track:
        out["offset"] = f.start_offset
    return out


def files_by_recording(recordings: list[Recording]) -> dict[int, list[MediaFile]]:
    """The files of a page of recordings in one query (prefetch_related would clone a queryset per
    recording)."""
    grouped: dict[int, list[MediaFile]] = {r.pk: [] for r in recordings}
    for f in MediaFile.objects.filter(recording_id__in=list(grouped)).order_by("role", "position", "id"):
        grouped[f.recording_id].append(f)
    return grouped


def recording_dict(recording: Recording, files: list[MediaFile] | None = None) -> dict[str, Any]:
    """A recording as the API shows it, with its files (given, or prefetched, or one query)."""
    files = sorted(recording.files.all() if files is None else files, key=lambda f: (f.role, f.position, f.pk or 0))
    mix = next((f for f in files if f.role == MediaFile.Role.MIX), None)
    return {
        "external_id": recording.external_id,
        "ref": str(recording.pk),
        "source_id": str(recording.source_id),
        "owner": recording.owner.get_username(),
        "title": recording.title,
        "mix": _file_dict(mix, track=False) if mix else None,
        "tracks": [_file_dict(f, track=True) for f in files if f.role == MediaFile.Role.TRACK],
        "created_at": serializers.DateTimeField().to_representation(recording.created_at),
        "updated_at": serializers.DateTimeField().to_representation(recording.updated_at),
    }


def _version_dict(version: RecordingVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "title": version.title,
        "duration_seconds": version.duration_seconds,
        "created_at": serializers.DateTimeField().to_representation(version.created_at),
        "assets": [{"kind": a.kind, "key": a.key, "size": a.size, "content_type": a.content_type}
                   for a in version.assets.all()],
    }


def handoffs_summary(ref: str) -> dict[str, Any]:
    clicks = Handoff.objects.filter(item_ref=ref)
    counts = dict(clicks.order_by().values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    last = clicks.order_by("-started_at", "-id").values_list("outcome", "started_at").first()
    return {
        "total": sum(counts.values()),
        "by_outcome": dict(sorted(counts.items())),
        "last_outcome": last[0] if last else None,
        "last_at": serializers.DateTimeField().to_representation(last[1]) if last else None,
    }


def imports_summary(ref: str) -> dict[str, Any]:
    states = Counter(dict(ReturnedExport.objects.filter(target_ref=ref).order_by().values_list("state")
                          .annotate(n=Count("id")).values_list("state", "n")))
    S = ReturnedExport.State
    return {"in_flight": states[S.WAITING] + states[S.COPYING], "done": states[S.DONE], "failed": states[S.FAILED]}


def recording_detail_dict(recording: Recording) -> dict[str, Any]:
    """Files, versions with their assets, and what eid knows of it; versions and their assets
    must be prefetched."""
    out = recording_dict(recording)
    out["versions"] = [_version_dict(version) for version in recording.versions.all()]
    out["handoffs"] = handoffs_summary(str(recording.pk))
    out["imports"] = imports_summary(str(recording.pk))
    return out
