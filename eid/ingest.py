"""Advance one ReturnedExport: wait for Descript to render, copy its parts, publish the version.

The database row is the truth. A run takes a lease on the row (so two workers never copy the
same export at once), records a heartbeat while it works, and gives the lease back when it
stops. A worker that dies leaves a stale heartbeat; the sweep (`manage.py eid_sweep`) then
enqueues the row again and the next run starts the copy afresh: object keys are deterministic
and the version is created in the transaction that marks the row done, so it happens once.
"""

from __future__ import annotations

import logging
import posixpath
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from partner_site.library.models import MediaFile, Recording, RecordingVersion, VersionAsset

from . import netsafe, storage
from .client import DescriptClient, DescriptError
from .copier import CopyAborted, part_size_for, stream_to_s3
from .models import ReturnedExport
from .returns import media_policy

log = logging.getLogger(__name__)

State = ReturnedExport.State
MAX_COPY_ATTEMPTS = 5
NOT_READY = {403, 404}

PART_FORMATS = {
    "audio": ("audio.m4a", "audio/mp4"),
    "video": ("video.mp4", "video/mp4"),
    "subtitles": ("subtitles.vtt", "text/vtt"),
    "transcript": ("transcript.json", "application/json"),
}
SMALL_PARTS = ("subtitles", "transcript")
SMALL_PART_MAX = 20 * 1024 * 1024


@dataclass
class Step:
    """What the caller (the task) should do next."""

    run_again_at: object | None = None  # a datetime: enqueue again then


def object_key(export: ReturnedExport, kind: str) -> str:
    return f"returns/{export.pk}/{PART_FORMATS[kind][0]}"


# --- the lease --------------------------------------------------------------------------------


def _take_lease(export_id) -> tuple[ReturnedExport, uuid.UUID] | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.EID_EXPORT_STALE_SECONDS)
    with transaction.atomic():
        export = ReturnedExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or not export.is_active:
            return None
        if export.lease_token and export.heartbeat_at and export.heartbeat_at > stale:
            return None  # another worker is on it
        token = uuid.uuid4()
        export.lease_token = token
        export.heartbeat_at = now
        export.attempts += 1
        export.save(update_fields=["lease_token", "heartbeat_at", "attempts", "updated_at"])
    return export, token


def _update(export: ReturnedExport, token: uuid.UUID, **fields) -> None:
    """Write fields only while we still hold the lease; CopyAborted when we do not."""
    fields["heartbeat_at"] = timezone.now()
    fields["updated_at"] = fields["heartbeat_at"]
    changed = ReturnedExport.objects.filter(pk=export.pk, lease_token=token).update(**fields)
    if not changed:
        raise CopyAborted("lease lost")
    for name, value in fields.items():
        setattr(export, name, value)


def _release(export: ReturnedExport, token: uuid.UUID, **fields) -> None:
    try:
        _update(export, token, lease_token=None, **fields)
    except CopyAborted:
        log.info("export %s: lease was taken over before release", export.pk)


# --- the steps --------------------------------------------------------------------------------


def advance(export_id) -> Step:
    leased = _take_lease(export_id)
    if leased is None:
        return Step()
    export, token = leased
    try:
        if export.state == State.WAITING:
            return _wait_for_render(export, token)
        if export.state == State.COPYING:
            return _copy(export, token)
        _release(export, token)
        return Step()
    except CopyAborted:
        return Step()
    except Exception as exc:  # noqa: BLE001 - a bug must still leave a row an operator can read
        log.exception("export %s: unexpected error", export.pk)
        _fail(export, token, "Something went wrong while bringing the edit back. Please try again.",
              retryable=True, detail=type(exc).__name__)
        return Step()


def _fail(export: ReturnedExport, token: uuid.UUID, reason: str, *, retryable: bool, detail: str = "") -> None:
    log.warning("export %s failed: %s %s", export.pk, reason, detail)
    _release(export, token, state=State.FAILED, reason=reason[:500], retryable=retryable,
             finished_at=timezone.now(), next_check_at=None)


def _published_metadata(export: ReturnedExport) -> tuple[str, dict | None, float | None]:
    """Ask the published_projects API, when we have a token. ("ready"|"wait"|"skip", body, wait)."""
    if not settings.DESCRIPT_API_TOKEN:
        return "skip", None, None
    try:
        body = DescriptClient().published_project(export.share_id, budget=15.0)
    except DescriptError as exc:
        if exc.kind == "processing":
            return "wait", None, None
        if exc.kind == "rate_limited":
            return "wait", None, exc.retry_after
        log.info("export %s: published_projects unavailable (%s %s), using page tags", export.pk, exc.status, exc.code)
        return "skip", None, None
    return "ready", body, None


def _probe(url: str) -> int:
    """Status of a media link, read with a one-byte Range request (as Descript's own fetcher does)."""
    with netsafe.open_stream(url, media_policy(), headers={"Range": "bytes=0-0"}) as response:
        return response.status_code


def _fetchable(url: str) -> bool:
    """Would the media rules let us fetch this link? (An API answer is input too.)"""
    try:
        netsafe.check_url(url, media_policy())
    except netsafe.UnsafeURL as exc:
        log.warning("published_projects gave a download_url we will not fetch (%s); using the page's link",
                    exc.reason)
        return False
    return True


def _sources(export: ReturnedExport) -> dict[str, str]:
    return dict(export.media_links.get("_resolved") or {k: v for k, v in export.media_links.items() if k in PART_FORMATS})


def _wait_for_render(export: ReturnedExport, token: uuid.UUID) -> Step:
    now = timezone.now()
    if export.next_check_at and export.next_check_at > now + timedelta(seconds=1):
        _release(export, token)
        return Step(run_again_at=export.next_check_at)

    poll = settings.EID_EXPORT_POLL_SECONDS
    waiting_since = export.waiting_since or export.created_at
    links = {k: v for k, v in export.media_links.items() if k in PART_FORMATS}
    api_state, api_body, api_wait = _published_metadata(export)
    ready = api_state != "wait"
    last_status = 409 if api_state == "wait" and api_wait is None else (429 if api_state == "wait" else None)
    if ready:
        for kind, url in links.items():
            try:
                status = _probe(url)
            except netsafe.UnsafeURL as exc:
                _fail(export, token, f"Descript's {kind} link is not allowed: {exc.reason}", retryable=False)
                return Step()
            except netsafe.FetchError as exc:
                status = exc.status or 0
            last_status = status
            if status in NOT_READY or status >= 500 or status == 0:
                ready = False
                break
            if status >= 400:
                _fail(export, token, f"Descript's {kind} link answered with an error ({status}).", retryable=True)
                return Step()

    checks = export.checks + 1
    if not ready:
        if (now - waiting_since).total_seconds() >= settings.EID_EXPORT_GIVE_UP_SECONDS:
            hours = settings.EID_EXPORT_GIVE_UP_SECONDS / 3600
            _fail(export, token,
                  f"Descript had not finished rendering after {hours:g} hours of checking. "
                  "Publish again in Descript, or try again later.", retryable=True)
            return Step()
        delay = max(poll, api_wait or 0)
        next_at = now + timedelta(seconds=delay)
        _release(export, token, checks=checks, last_check_status=last_status, next_check_at=next_at)
        return Step(run_again_at=next_at)

    resolved = dict(links)
    fields: dict = {}
    if api_body:
        meta = api_body.get("metadata") if isinstance(api_body.get("metadata"), dict) else {}
        title = meta.get("title")
        if isinstance(title, str) and title.strip() and not export.title:
            fields["title"] = title.strip()[:300]
        duration = meta.get("duration_seconds")
        if isinstance(duration, (int, float)) and duration >= 0:
            resolved["_duration"] = float(duration)
        download = api_body.get("download_url")
        kind = "video" if api_body.get("publish_type") == "video" else "audio"
        if isinstance(download, str) and _fetchable(download):
            resolved[kind] = download  # else the page's own media link stays
        if isinstance(api_body.get("subtitles"), str) and api_body["subtitles"].strip():
            resolved["_subtitles_text"] = api_body["subtitles"]
    media_links = dict(export.media_links, _resolved=resolved)
    # From here `attempts` counts copy attempts: this run is the first.
    _update(export, token, state=State.COPYING, checks=checks, last_check_status=last_status,
            next_check_at=None, media_links=media_links, attempts=1, **fields)
    return _copy(export, token)


def _abort_previous_upload(export: ReturnedExport) -> None:
    upload = export.upload or {}
    for kind in PART_FORMATS:
        key = object_key(export, kind)
        if upload.get("key") == key or kind in ("audio", "video"):
            storage.abort_uploads(key)


def _copy(export: ReturnedExport, token: uuid.UUID) -> Step:
    if export.attempts > MAX_COPY_ATTEMPTS:
        _fail(export, token, "Copying the edit kept failing. Please try again later.", retryable=True)
        return Step()
    _abort_previous_upload(export)  # a worker that died mid-copy left parts behind
    _update(export, token, upload={}, bytes_copied=0, reason="")
    resolved = export.media_links.get("_resolved") or {}
    stored: list[tuple[str, str, int, str]] = []
    copied_before = 0
    try:
        for kind in ("video", "audio"):
            url = resolved.get(kind)
            if url:
                key = object_key(export, kind)
                size = _copy_media(export, token, url, key, PART_FORMATS[kind][1], copied_before)
                copied_before += size
                stored.append((kind, key, size, PART_FORMATS[kind][1]))
        for kind in SMALL_PARTS:
            text = resolved.get("_subtitles_text") if kind == "subtitles" else None
            if text is not None:
                data = text.encode("utf-8")
            elif resolved.get(kind):
                data = _fetch_small(resolved[kind])
            else:
                continue
            key = object_key(export, kind)
            storage.put_bytes(key, data, PART_FORMATS[kind][1])
            stored.append((kind, key, len(data), PART_FORMATS[kind][1]))
            copied_before += len(data)
            # Captions count toward the total too, so "copied" never passes "of".
            _update(export, token, bytes_copied=copied_before,
                    bytes_total=max(export.bytes_total or 0, copied_before))
    except CopyAborted:
        raise
    except netsafe.UnsafeURL as exc:
        _fail(export, token, f"A link on the Descript page is not allowed: {exc.reason}", retryable=False)
        return Step()
    except (netsafe.FetchError, storage.StorageError, OSError) as exc:
        reason = getattr(exc, "reason", "") or "The copy was interrupted."
        log.warning("export %s: copy attempt %s failed: %s", export.pk, export.attempts, reason)
        if export.attempts >= MAX_COPY_ATTEMPTS:
            _fail(export, token, f"Copying the edit failed: {reason}", retryable=True)
            return Step()
        again = timezone.now() + timedelta(seconds=min(60.0, 2.0 ** export.attempts))
        _release(export, token, reason=f"Retrying: {reason}"[:500], next_check_at=again)
        return Step(run_again_at=again)
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(exc, (BotoCoreError, ClientError)):
            raise
        if export.attempts >= MAX_COPY_ATTEMPTS:
            _fail(export, token, "Storage kept failing while copying the edit.", retryable=True)
            return Step()
        again = timezone.now() + timedelta(seconds=min(60.0, 2.0 ** export.attempts))
        _release(export, token, reason="Retrying: storage was unavailable.", next_check_at=again)
        return Step(run_again_at=again)

    if not any(kind in ("audio", "video") for kind, *_ in stored):
        _fail(export, token, "The Descript page had no media we could copy.", retryable=False)
        return Step()
    _publish_version(export, token, stored, resolved.get("_duration"))
    return Step()


def _copy_media(export, token, url: str, key: str, content_type: str, copied_before: int) -> int:
    last_beat = [time.monotonic()]

    def progress(total: int) -> None:
        if time.monotonic() - last_beat[0] >= settings.EID_EXPORT_HEARTBEAT_SECONDS:
            last_beat[0] = time.monotonic()
            _update(export, token, bytes_copied=copied_before + total)  # raises CopyAborted if lost

    with netsafe.open_stream(url, media_policy()) as response:
        if response.status_code != 200:
            raise netsafe.FetchError(f"Descript's media link answered {response.status_code}.",
                                     kind="bad_status", status=response.status_code)
        length = response.headers.get("Content-Length")
        if length and length.isdigit():
            if int(length) > settings.EID_EXPORT_MAX_MEDIA_BYTES:
                raise netsafe.FetchError("The media file is larger than this site accepts.", kind="too_large")
            _update(export, token, bytes_total=copied_before + int(length))
        limit = settings.EID_EXPORT_MAX_MEDIA_BYTES

        def chunks():
            seen = 0
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                seen += len(chunk)
                if seen > limit:
                    raise netsafe.FetchError("The media file is larger than this site accepts.", kind="too_large")
                yield chunk

        # Recorded first: if this process dies mid-copy, the next run aborts what it left in S3.
        _update(export, token, upload={"key": key})
        size = stream_to_s3(chunks(), key, content_type, part_size=part_size_for(limit), on_progress=progress)
    _update(export, token, upload={}, bytes_copied=copied_before + size)
    return size


def _fetch_small(url: str) -> bytes:
    policy = media_policy()
    small = netsafe.FetchPolicy(
        allowed_hosts=policy.allowed_hosts, dev_origins=policy.dev_origins, max_bytes=SMALL_PART_MAX,
        timeout=60.0,
    )
    result = netsafe.fetch(url, small)
    if result.status != 200:
        raise netsafe.FetchError(f"Descript's caption link answered {result.status}.", kind="bad_status",
                                 status=result.status)
    return result.body


def _publish_version(export: ReturnedExport, token: uuid.UUID, stored, duration) -> None:
    """Make the version visible, exactly once: the row lock and the state check guard it."""
    with transaction.atomic():
        row = ReturnedExport.objects.select_for_update().get(pk=export.pk)
        if row.lease_token != token or row.state != State.COPYING:
            raise CopyAborted("lease lost before publishing")
        recording = row.recording
        if recording is None:
            recording = Recording.objects.create(owner_id=row.user_id, title=row.title)
            primary = next(s for s in stored if s[0] in ("video", "audio"))
            MediaFile.objects.create(recording=recording, role=MediaFile.Role.MIX, key=primary[1],
                                     name=posixpath.basename(primary[1]))
        else:
            recording = Recording.objects.select_for_update().get(pk=recording.pk)
        number = (recording.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = RecordingVersion.objects.create(recording=recording, number=number, title=row.title,
                                                  duration_seconds=duration)
        VersionAsset.objects.bulk_create(
            VersionAsset(version=version, kind=kind, key=key, size=size, content_type=ctype)
            for kind, key, size, ctype in stored
        )
        now = timezone.now()
        ReturnedExport.objects.filter(pk=row.pk).update(
            state=State.DONE, recording=recording, version=version, lease_token=None, heartbeat_at=now,
            finished_at=now, upload={}, reason="", updated_at=now,
            bytes_copied=sum(s[2] for s in stored),
        )
    log.info("export %s: version %s of recording %s is ready", export.pk, number, recording.pk)


def retry(export: ReturnedExport) -> bool:
    """A user's or operator's retry of a failed import: wait for rendering again, from now."""
    now = timezone.now()
    changed = ReturnedExport.objects.filter(pk=export.pk, state=State.FAILED, retryable=True).update(
        state=State.WAITING, reason="", retryable=False, waiting_since=now, next_check_at=now, checks=0,
        attempts=0, finished_at=None, lease_token=None, updated_at=now,
    )
    return bool(changed)


def stale_exports(now=None):
    """Active rows no worker is moving: a dead worker's lease, or a queued nudge that was lost."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.EID_EXPORT_STALE_SECONDS)
    from django.db.models import Q

    return ReturnedExport.objects.filter(state__in=[State.WAITING, State.COPYING]).filter(
        Q(lease_token__isnull=False, heartbeat_at__lt=stale)
        | Q(lease_token__isnull=True, next_check_at__lt=stale)
        | Q(lease_token__isnull=True, next_check_at__isnull=True, updated_at__lt=stale)
    )
