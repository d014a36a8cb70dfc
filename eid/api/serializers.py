"""What eid's endpoints read and write. No presigned URL and no Descript media link ever goes out."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from ..content import MAX_REF_LENGTH
from ..models import Handoff, ReturnedExport

_OFFSET_WITH_SPACE = re.compile(r" (\d\d(:?\d\d)?)$")


class SinceField(serializers.DateTimeField):
    """ISO 8601; an unescaped "+01:00" arrives as " 01:00" in a query string and is read as meant."""

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = _OFFSET_WITH_SPACE.sub(r"+\1", value.strip())
        return super().to_internal_value(value)


class NewImportLinkSerializer(serializers.Serializer):
    recording = serializers.CharField(max_length=MAX_REF_LENGTH,
                                      help_text="The recording's id, as the site's adapter names it (the `ref`).")
    option = serializers.SlugField(max_length=16, help_text='The download option: "mix" or "tracks" here.')
    user = serializers.CharField(max_length=150, help_text="The username the link is made for.")


class ImportLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Descript's one-time import link: send the user there now. "
                                         "Never cached, never stored; ask again for another.")
    handoff = serializers.IntegerField(help_text="The Handoff row this call left (see GET /handoffs).")


class HandoffSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True)
    recording = serializers.CharField(source="item_ref", read_only=True)
    title = serializers.CharField(source="item_title", read_only=True)

    class Meta:
        model = Handoff
        fields = ["id", "user", "recording", "title", "source_id", "option", "outcome", "detail", "file_count",
                  "total_bytes", "started_at", "finished_at", "upstream_status", "upstream_error_code",
                  "upstream_latency_ms", "upstream_attempts"]
        read_only_fields = fields


class HandoffQuerySerializer(serializers.Serializer):
    since = SinceField(required=False, help_text="ISO 8601: clicks started at or after this time.")
    outcome = serializers.ChoiceField(choices=Handoff.Outcome.choices, required=False)


class ReturnedExportSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    target = serializers.CharField(source="target_ref", read_only=True,
                                   help_text="The recording the edit belongs to (own_source only), else empty.")
    result = serializers.CharField(source="result_ref", read_only=True,
                                   help_text="Where the edit landed once done: the recording's id.")
    version = serializers.IntegerField(source="version_number", read_only=True, allow_null=True)

    class Meta:
        model = ReturnedExport
        # Never media_links (Descript's links), share_url, upload, lease_token.
        fields = ["id", "user", "title", "share_id", "match", "state", "reason", "retryable", "target",
                  "target_title", "result", "result_title", "version", "bytes_copied", "bytes_total",
                  "created_at", "updated_at", "finished_at"]
        read_only_fields = fields


class ReturnedExportQuerySerializer(serializers.Serializer):
    since = SinceField(required=False, help_text="ISO 8601: imports changed at or after this time.")
    state = serializers.ChoiceField(choices=ReturnedExport.State.choices, required=False)
