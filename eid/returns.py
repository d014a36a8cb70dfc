"""The way back: read a Descript share page and decide where its edit belongs.

`preview` fetches and classifies without writing anything (the landing page shows it);
`confirm` writes the ReturnedExport once per (user, share) and nudges the worker.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.signals import setting_changed
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone

from .conf import eid_settings
from . import netsafe, sharepage
from .errors import EidError
from .waiting import hand_back_connections
from .content import Source, get_adapter
from .models import ReturnedExport

log = logging.getLogger(__name__)

PAGE_MAX_BYTES = 2_000_000
# Source ids are the partner's own (UUIDs in the demo): anything printable and short is asked about.
_SOURCE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ReturnRefused(EidError):
    """A share link we will not (or cannot) take. `reason` is for the user; `status` for HTTP."""

    class Kind(StrEnum):
        REFUSED = "refused"  # 400: the link itself is not acceptable
        GONE = "gone"  # 404: no such public page
        UNREADABLE = "unreadable"  # 422: the page is not what Descript shares
        UPSTREAM = "upstream"  # 502: Descript could not be read right now

    _KIND_BY_STATUS = {400: "refused", 404: "gone", 422: "unreadable", 502: "upstream"}

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(self._KIND_BY_STATUS[status], reason)
        self.status = status


def _origins(values) -> frozenset[str]:
    return frozenset(v.rstrip("/").lower() for v in values)


@functools.lru_cache(maxsize=1)
def share_policy() -> netsafe.FetchPolicy:
    hosts = {h.lower() for h in eid_settings.DESCRIPT_SHARE_HOSTS}
    origins = _origins(eid_settings.DESCRIPT_SANDBOX_ORIGINS)
    hosts |= {urlsplit(o).hostname for o in origins if urlsplit(o).hostname}
    return netsafe.FetchPolicy(
        allowed_hosts=frozenset(hosts),
        dev_origins=origins,
        max_bytes=PAGE_MAX_BYTES,
        timeout=eid_settings.EID_SHARE_PAGE_TIMEOUT,
        allowed_content_types=("text/html", "application/xhtml+xml"),
    )


@functools.lru_cache(maxsize=1)
def media_policy() -> netsafe.FetchPolicy:
    """Media and caption links: any public https host (Descript serves them from CDNs)."""
    return netsafe.FetchPolicy(
        allowed_hosts=frozenset(),
        dev_origins=_origins(eid_settings.DESCRIPT_SANDBOX_ORIGINS),
        max_bytes=eid_settings.EID_EXPORT_MAX_MEDIA_BYTES,
        timeout=60.0,
    )


@receiver(setting_changed)
def _reset_policies(setting: str, **kwargs) -> None:
    if setting in ("DESCRIPT_SHARE_HOSTS", "DESCRIPT_SANDBOX_ORIGINS", "EID_EXPORT_MAX_MEDIA_BYTES",
                   "EID_SHARE_PAGE_TIMEOUT"):
        share_policy.cache_clear()
        media_policy.cache_clear()


@dataclass(frozen=True)
class ShareLink:
    """A share link that passed the address rules: canonical (no query or fragment), with its id."""

    url: str
    share_id: str


def clean_share_url(raw: str) -> ShareLink:
    """Validate a share link once; the landing passes the result on instead of checking again."""
    raw = (raw or "").strip()
    if not raw:
        raise ReturnRefused("No Descript share link was given.")
    try:
        parts = netsafe.check_url(raw, share_policy(), path_pattern=sharepage.SHARE_PATH)
    except netsafe.UnsafeURL as exc:
        raise ReturnRefused(exc.reason) from None
    share_id = sharepage.share_id_from_path(parts.path)
    canonical = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return ShareLink(canonical, share_id)


@dataclass(frozen=True)
class Preview:
    share_url: str
    share_id: str
    title: str
    tags: sharepage.ShareTags
    match: str
    target: Source | None  # the user's own item this edit belongs to (own_source only)


def classify(user: Any, tags: sharepage.ShareTags, drive_id: str) -> tuple[str, Source | None]:
    """Where does this edit go? Only ever onto an item of `user`, as the adapter finds it."""
    M = ReturnedExport.Match
    if not tags.partner and not tags.source:
        return M.NO_TAGS, None
    if not drive_id or (tags.partner or "").lower() != drive_id.lower():
        return M.OTHER_PARTNER, None
    source = (tags.source or "").strip()
    if not _SOURCE_ID.match(source):
        return M.UNKNOWN_SOURCE, None
    adapter = get_adapter()
    target = adapter.find_source(user, source)
    if target is not None:
        return M.OWN_SOURCE, target
    if adapter.source_exists(source):
        # Someone else's item: say nothing about it to this user; operators see the match.
        log.warning("returned export: user %s sent a share page whose source is another user's item", user.pk)
        return M.FOREIGN_SOURCE, None
    return M.UNKNOWN_SOURCE, None


_FETCH_REFUSALS = {
    "too_large": ("That Descript page is too large to read.", 422),
    "not_html": ("That link is not a Descript web page.", 422),
    "bad_encoding": ("The share page is not valid text.", 422),
    "timeout": ("Descript took too long to answer. Please try again in a moment.", 502),
    "connection": ("Descript could not be reached. Please try again in a moment.", 502),
    "redirect": ("That Descript page sent us somewhere we do not follow.", 422),
}


def _refusal_for(exc: netsafe.FetchError) -> ReturnRefused:
    if exc.kind == "bad_status":
        if exc.status in (404, 410):
            return ReturnRefused("That Descript page does not exist (or is not public).", 404)
        return ReturnRefused(f"Descript answered with an error ({exc.status}). Please try again in a moment.", 502)
    reason, status = _FETCH_REFUSALS.get(exc.kind, ("That Descript page could not be read.", 502))
    return ReturnRefused(reason, status)


def preview(user: Any, link: ShareLink, title_hint: str = "") -> Preview:
    hand_back_connections()  # the share page may be slow: hold no database connection meanwhile
    try:
        page = netsafe.fetch(link.url, share_policy(), path_pattern=sharepage.SHARE_PATH)
    except netsafe.UnsafeURL as exc:
        raise ReturnRefused(exc.reason) from None
    except netsafe.FetchError as exc:
        raise _refusal_for(exc) from None
    if page.status != 200:
        raise ReturnRefused("Descript did not return the page.", 502)
    try:
        tags = sharepage.parse_share_page(sharepage.decode_page(page.body, page.content_type))
    except sharepage.ShareTagError as exc:
        raise ReturnRefused(exc.reason, 422) from None
    if not (tags.audio or tags.video):
        raise ReturnRefused("That Descript page has no audio or video to bring back.", 422)
    match, target = classify(user, tags, eid_settings.DESCRIPT_PARTNER_DRIVE_ID)
    title = (title_hint or tags.title or "Edited in Descript").strip()[:300]
    return Preview(link.url, link.share_id, title, tags, match, target)


def confirm(user: Any, preview_: Preview) -> tuple[ReturnedExport, bool]:
    """Create the import once per (user, share); a second confirm finds the first."""
    tags = preview_.tags
    links = {k: v for k, v in {
        "audio": tags.audio, "video": tags.video, "subtitles": tags.subtitles, "transcript": tags.transcript,
    }.items() if v}
    now = timezone.now()
    defaults = dict(
        share_url=preview_.share_url,
        title=preview_.title,
        match=preview_.match,
        partner_tag=(tags.partner or "")[:200],
        source_tag=(tags.source or "")[:200],
        target_ref=preview_.target.ref if preview_.target else "",
        target_title=preview_.target.title[:300] if preview_.target else "",
        media_links=links,
        next_check_at=now,
        waiting_since=now,
    )
    try:
        with transaction.atomic():
            export, created = ReturnedExport.objects.get_or_create(
                user=user, share_id=preview_.share_id, defaults=defaults
            )
    except IntegrityError:
        export, created = ReturnedExport.objects.get(user=user, share_id=preview_.share_id), False
    if created:
        from .tasks import enqueue_advance

        transaction.on_commit(lambda: enqueue_advance(export.pk))
    return export, created
