"""Reading the demo library's rows that an import ended in (eid keeps only the adapter's ids)."""

from __future__ import annotations

from eid.models import ReturnedExport
from partner_site.library.models import Recording, RecordingVersion


def recording_of(export: ReturnedExport) -> Recording:
    return Recording.objects.get(pk=int(export.result_ref))


def version_of(export: ReturnedExport) -> RecordingVersion:
    return RecordingVersion.objects.get(recording_id=int(export.result_ref), number=export.version_number)
