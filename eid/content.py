"""The one door between eid and a partner's content: a `ContentAdapter` named by one setting.

eid never imports a partner's models. A partner writes one subclass of `ContentAdapter` over
its own content and names it in settings::

    EID_CONTENT_ADAPTER = "mysite.media.descript.RecordingContent"

The adapter answers four questions, each in the partner's own terms:

- `load_item(user, ref)`: the item behind the id in a button (`ref`), if this user may send it;
- `content_for(item, option)`: the files of one download option of that item (object key,
  display name, start offset), its title, and its stable source id (Descript carries the
  source id back on share pages as `descript:source`); no I/O, so buttons stay cheap;
- `find_source(user, source_id)`: the item of this user that a returned edit came from, or None;
- `store_edit(edit)`: keep a returned edit, its files already copied into the bucket, as a new
  version of `edit.source` or, when that is None, as a new item of `edit.user`.

The values crossing the door are the frozen dataclasses below. Item ids (`ref`) are strings
in URLs and rows: a partner may use integers, UUIDs or slugs.
"""

from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .conf import eid_settings
from .media import is_supported_name

MAX_REF_LENGTH = 64


@dataclass(frozen=True)
class SourceFile:
    """One object in the bucket that a download option is made of."""

    key: str
    name: str
    start_offset: float = 0.0  # seconds into the timeline; sent for multitrack options only


@dataclass(frozen=True)
class Content:
    """One download option of one item: what the button shows and the click sends."""

    ref: str
    option: str
    source_id: str
    title: str
    files: tuple[SourceFile, ...]
    multitrack: bool = False

    @property
    def importable(self) -> bool:
        """Could Descript import every file, judging by name? (The click checks the objects too.)"""
        return bool(self.files) and all(is_supported_name(f.key) for f in self.files)


@dataclass(frozen=True)
class Source:
    """A partner's item, as eid names it on pages and rows."""

    ref: str
    title: str


@dataclass(frozen=True)
class ReturnedFile:
    """A part of a returned edit, already stored in the bucket."""

    kind: str  # "audio" | "video" | "subtitles" | "transcript"
    key: str
    size: int
    content_type: str


@dataclass(frozen=True)
class ReturnedEdit:
    """An edit that came back from Descript, every part stored; `source` None means a new item."""

    user: Any
    title: str
    source: Source | None
    files: tuple[ReturnedFile, ...]
    duration_seconds: float | None = None

    @property
    def primary(self) -> ReturnedFile:
        """The video if there is one, else the audio (an edit always has one of them)."""
        return next(f for kind in ("video", "audio") for f in self.files if f.kind == kind)


@dataclass(frozen=True)
class StoredEdit:
    """Where a returned edit landed: the item, and its version number when the partner counts them."""

    ref: str
    title: str
    version: int | None = None


class ContentAdapter(abc.ABC):
    """Subclass this over your own content; see the module docstring."""

    @abc.abstractmethod
    def load_item(self, user: Any, ref: str) -> Any | None:
        """The item `ref` names, if `user` may send it to Descript; None otherwise.

        Someone else's item and a missing one must look the same: both are None.
        """

    @abc.abstractmethod
    def content_for(self, item: Any, option: str) -> Content | None:
        """The download option `option` of `item`, or None when the item has no such option."""

    @abc.abstractmethod
    def find_source(self, user: Any, source_id: str) -> Source | None:
        """`user`'s item whose source id is `source_id`, or None."""

    @abc.abstractmethod
    def store_edit(self, edit: ReturnedEdit) -> StoredEdit:
        """Keep a returned edit. Runs inside the transaction that marks the import done, once."""

    def source_exists(self, source_id: str) -> bool:
        """Is `source_id` any user's item? Operators then see "another user's source" on the row.

        Optional: without it such an edit is recorded as an unknown source. Users never learn
        which of the two it was.
        """
        return False

    def item_url(self, ref: str) -> str:
        """Where a user sees the item (linked from the import pages). Optional."""
        return ""

    def option_names(self, item: Any) -> tuple[str, ...]:
        """The download options of `item`, for an auto-edit that names none (eid.jobs). Optional.

        The auto-edit sends the multitrack one if there is one, else the first Descript imports.
        Without this method an auto-edit must name its option.
        """
        return ()

    def describe_item(self, ref: str) -> dict[str, Any]:
        """More about the item `ref` for webhook payloads (eid.webhooks), JSON-serialisable. Optional.

        The demo library answers `{"external_id": ...}`, the storage pipeline's own id, so a
        pipeline can match a `version.created` event to its record. Keys `ref` and `title` are
        eid's own and are not overridden.
        """
        return {}

    def get_content(self, user: Any, ref: str, option: str) -> Content | None:
        """The click's question: this user's option of the item `ref`, or None."""
        item = self.load_item(user, ref)
        return self.content_for(item, option) if item is not None else None


@functools.lru_cache(maxsize=1)
def get_adapter() -> ContentAdapter:
    path = eid_settings.EID_CONTENT_ADAPTER
    if not path:
        raise ImproperlyConfigured("EID_CONTENT_ADAPTER is not set: name your eid.content.ContentAdapter subclass.")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"EID_CONTENT_ADAPTER {path!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, ContentAdapter)):
        raise ImproperlyConfigured(f"EID_CONTENT_ADAPTER {path!r} is not a subclass of eid.content.ContentAdapter.")
    return cls()


@receiver(setting_changed)
def _reset_adapter(setting: str, **kwargs: Any) -> None:
    if setting == "EID_CONTENT_ADAPTER":
        get_adapter.cache_clear()
