"""What the auto-edits API reads and writes (eid.jobs.api). Never a token or a signed link.

The answers' shapes follow eid.jobs.status.describe (the live page and the CLI say the same
things); the serializers here document them for the OpenAPI document and check the requests.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..api.serializers import SinceField
from ..content import MAX_REF_LENGTH
from .models import AutoEdit, JobStep

MAX_RECORDINGS = 1000
OPTION_MAX_LENGTH = AutoEdit._meta.get_field("option").max_length or 16
STATES = AutoEdit.State.choices  # with their words: one enum in the API document, not two
MEDIA_TYPES = ["audio", "video"]
RESOLUTIONS = ["720p", "1080p", "4K"]


class RecordingToEditSerializer(serializers.Serializer):
    recording = serializers.CharField(max_length=MAX_REF_LENGTH,
                                      help_text="The recording's id, as the site's adapter names it (the `ref`).")
    user = serializers.CharField(max_length=150, help_text="The username whose recording it is: the new version "
                                                           "lands on it, for them.")
    option = serializers.CharField(
        required=False, max_length=OPTION_MAX_LENGTH,
        help_text="Which download option of the recording to send, as the site's adapter names it (for "
                  "example `mix`: the mixed file alone, not the separate tracks). Default: the multitrack "
                  "option if the recording has one, else the first Descript can import. A recording without "
                  "this option is refused (`not_found`); the others go on.")


class NewAutoEditsSerializer(serializers.Serializer):
    recordings = serializers.ListField(child=RecordingToEditSerializer(), min_length=1, max_length=MAX_RECORDINGS,
                                       help_text=f"1 to {MAX_RECORDINGS} recordings, each edited on its own.")
    prompt = serializers.CharField(required=False, max_length=4000, allow_blank=True,
                                   help_text="Instructions for Descript's Underlord agent. With a preset, these "
                                             "replace the preset's text.")
    preset = serializers.CharField(required=False, max_length=100,
                                   help_text="The name of an enabled prompt preset (see the admin).")
    media_type = serializers.ChoiceField(choices=MEDIA_TYPES, required=False,
                                         help_text="What Descript publishes (default: the preset's, else audio).")
    resolution = serializers.ChoiceField(choices=RESOLUTIONS, required=False,
                                         help_text="Video only (default: Descript's).")
    name = serializers.CharField(required=False, max_length=200, allow_blank=True,
                                 help_text="The batch's name, to find it again.")
    max_in_flight = serializers.IntegerField(required=False, min_value=1, max_value=1000,
                                             help_text="Auto-edits of this batch at Descript at once (capped by "
                                                       "the site's EID_JOBS_MAX_IN_FLIGHT).")

    def validate_prompt(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        return value


class StartedSerializer(serializers.Serializer):
    recording = serializers.CharField()
    user = serializers.CharField()
    result = serializers.ChoiceField(choices=["started", "refused"])
    auto_edit = serializers.UUIDField(required=False, help_text="Started: the auto-edit's id.")
    url = serializers.CharField(required=False, help_text="Started: its address in this API.")
    code = serializers.CharField(required=False, help_text="Refused: why, as a stable code (not_found, "
                                                           "not_importable, already_running, permission_denied...).")
    detail = serializers.CharField(required=False, help_text="Refused: why, in plain words.")


class BatchStartedSerializer(serializers.Serializer):
    batch = serializers.UUIDField()
    url = serializers.CharField(help_text="The batch's address in this API (also the Location header).")
    started = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = StartedSerializer(many=True, help_text="One per recording, in the request's order.")


class StepSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="One of: " + ", ".join(JobStep.Kind.values) + ".")
    kind_words = serializers.CharField()
    state = serializers.CharField(help_text="One of: " + ", ".join(JobStep.State.values) + ".")
    state_words = serializers.CharField()
    job_id = serializers.CharField(allow_null=True, help_text="Descript's job id.")
    progress_label = serializers.CharField(allow_blank=True, help_text="Descript's progress label.")
    progress_percent = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    calls = serializers.IntegerField()
    polls = serializers.IntegerField()
    callbacks = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class AutoEditSerializer(serializers.Serializer):
    """One auto-edit as eid.jobs.status.describe tells it, plus its user and address."""

    id = serializers.UUIDField()
    url = serializers.CharField()
    user = serializers.CharField()
    state = serializers.ChoiceField(choices=STATES)
    state_words = serializers.CharField()
    final = serializers.BooleanField()
    item_ref = serializers.CharField(help_text="The recording (the adapter's id).")
    item_title = serializers.CharField(allow_blank=True)
    option = serializers.CharField(help_text="The download option sent to Descript.")
    prompt = serializers.CharField()
    preset = serializers.CharField(allow_null=True)
    media_type = serializers.CharField()
    resolution = serializers.CharField(allow_null=True)
    via = serializers.CharField()
    steps = StepSerializer(many=True, help_text="Descript's jobs so far: import, agent, publish.")
    agent_summary = serializers.CharField(allow_blank=True, help_text="What Underlord says it did.")
    project_url = serializers.CharField(allow_null=True, help_text="The project at Descript (drive members only).")
    share_url = serializers.CharField(allow_null=True)
    failed_files = serializers.DictField(child=serializers.CharField(),
                                         help_text="A partial import: file name -> why it did not import.")
    version_number = serializers.IntegerField(allow_null=True, help_text="Done: the new version's number.")
    result_ref = serializers.CharField(allow_null=True, help_text="Done: the recording the version belongs to.")
    reason = serializers.CharField(allow_blank=True, help_text="Failed or cancelled: why, in plain words.")
    failure_kind = serializers.CharField(allow_null=True)
    can_cancel = serializers.BooleanField()
    can_choose = serializers.BooleanField(help_text="A partial import waits: POST go-on or stop.")
    batch = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AutoEditRowSerializer(serializers.ModelSerializer):
    """A row of the list (no steps: GET the auto-edit for them)."""

    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    recording = serializers.CharField(source="item_ref", read_only=True)
    title = serializers.CharField(source="item_title", read_only=True)
    version = serializers.IntegerField(source="version_number", read_only=True, allow_null=True)
    result = serializers.CharField(source="result_ref", read_only=True)
    # Strings, not URLs: empty until Descript has made them.
    project_url = serializers.CharField(read_only=True)
    share_url = serializers.CharField(read_only=True)

    class Meta:
        model = AutoEdit
        fields = ["id", "user", "recording", "title", "option", "batch", "via", "state", "reason", "failure_kind",
                  "media_type", "resolution", "project_url", "share_url", "agent_summary", "version", "result",
                  "created_at", "updated_at", "finished_at"]
        read_only_fields = fields


class AutoEditQuerySerializer(serializers.Serializer):
    since = SinceField(required=False, help_text="ISO 8601: auto-edits changed at or after this time.")
    state = serializers.ChoiceField(choices=STATES, required=False)
    batch = serializers.UUIDField(required=False, help_text="Only this batch's auto-edits.")
    recording = serializers.CharField(source="item_ref", required=False, max_length=MAX_REF_LENGTH,
                                      help_text="Only this recording's auto-edits (the adapter's id).")


class BatchItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    recording = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    user = serializers.CharField()
    state = serializers.ChoiceField(choices=STATES)
    reason = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True)


class BatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(allow_blank=True)
    via = serializers.CharField()
    requested_by = serializers.CharField(allow_blank=True)
    prompt = serializers.CharField()
    preset = serializers.CharField(allow_null=True)
    media_type = serializers.CharField()
    resolution = serializers.CharField(allow_null=True)
    max_in_flight = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="Auto-edits by state (every state, zeros included) and `total`.")
    items = BatchItemSerializer(many=True)
