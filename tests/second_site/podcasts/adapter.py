"""Step 3: the second site's adapter. Items are episodes named by slug; edits become cuts."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Max

from eid.content import Content, ContentAdapter, ReturnedEdit, Source, SourceFile, StoredEdit

from .models import Cut, Episode


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class EpisodeContent(ContentAdapter):
    def load_item(self, user: Any, ref: str) -> Episode | None:
        return Episode.objects.filter(slug=ref, owner=user).first()

    def content_for(self, item: Episode, option: str) -> Content | None:
        if option != "audio":
            return None
        return Content(ref=item.slug, option="audio", source_id=str(item.source_uuid), title=item.title,
                       files=(SourceFile(item.audio_key, f"{item.title} (audio)"),))

    def option_names(self, item: Episode) -> tuple[str, ...]:
        return ("audio",)  # step 6: an episode has one option, so an auto-edit of it sends that

    def find_source(self, user: Any, source_id: str) -> Source | None:
        wanted = _uuid(source_id)
        episode = Episode.objects.filter(source_uuid=wanted, owner=user).first() if wanted else None
        return Source(episode.slug, episode.title) if episode else None

    def item_url(self, ref: str) -> str:
        return f"/#{ref}"

    def store_edit(self, edit: ReturnedEdit) -> StoredEdit:
        primary = edit.primary
        episode = Episode.objects.select_for_update().filter(slug=edit.source.ref).first() if edit.source else None
        if episode is None:
            episode = Episode.objects.create(slug=f"edit-{uuid.uuid4().hex[:10]}", owner=edit.user,
                                             title=edit.title, audio_key=primary.key)
            return StoredEdit(ref=episode.slug, title=episode.title)
        number = (episode.cuts.aggregate(n=Max("number"))["n"] or 0) + 1
        Cut.objects.create(episode=episode, number=number, title=edit.title, audio_key=primary.key,
                           size=primary.size)
        return StoredEdit(ref=episode.slug, title=episode.title, version=number)
