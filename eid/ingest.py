"""Advance one ReturnedExport: wait for Descript to render, copy its parts, publish the version.

The database row is the truth. A run takes a lease on the row (so two workers never copy the
same export at once), records a heartbeat while it works, and gives the lease back when it
stops. A worker that dies leaves a stale heartbeat; the sweep (`manage.py eid_sweep`) then
enqueues the row again and the next run starts the copy afresh: object keys are deterministic
and the version is created in the transaction that marks the row done, so it happens once.

In a worker, the copy runs on one of the process's copy slots (eid.copyslots) rather than in
the task, so one slow link never holds the worker. A watch on every media copy (CopyWatch)
stops a download slower than EID_EXPORT_MIN_BYTES_PER_SECOND over a window, or past a deadline
scaled to its size; the import is released and tried again later, and fails (retryable) after
MAX_COPY_ATTEMPTS.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from . import netsafe, storage, webhooks
from .client import DescriptClient, DescriptError, PublishedProject
from .content import ReturnedEdit, ReturnedFile, Source, StoredEdit, get_adapter
from .conf import eid_settings
from .copier import CopyAborted, CopyStopped, CopyWatch, part_size_for, stream_to_s3
from .models import ReturnedExport
from .returns import media_policy

if TYPE_CHECKING:
    from .copyslots import CopySlots

log = logging.getLogger(__name__)

# Sent once an import ends (done or failed), after the write that says so commits, with `export`
# (the row). Apps built on the way back listen (eid.jobs: an auto-edit copying its result home);
# eid itself knows none of them.
export_finished = Signal()

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
# Media is read in pieces this big: the copy watch counts bytes as pieces arrive, so a smaller
# piece measures a slow link's rate more finely (a read waits for its whole piece).
READ_CHUNK = 64 * 1024


@dataclass
class Step:
    """What the caller (the task) should do next."""

    run_again_at: datetime | None = None  # enqueue again then


def object_key(export: ReturnedExport, kind: str) -> str:
    return f"returns/{export.pk}/{PART_FORMATS[kind][0]}"


# --- the lease --------------------------------------------------------------------------------


@dataclass
class Lease:
    """One worker's claim on one export. Every write goes through it, and only while it holds."""

    export: ReturnedExport
    token: uuid.UUID

    @classmethod
    def take(cls, export_id: Any) -> Lease | None:
        now = timezone.now()
        stale = now - timedelta(seconds=eid_settings.EID_EXPORT_STALE_SECONDS)
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
        return cls(export, token)

    def update(self, **fields: Any) -> None:
        """Write fields (and the heartbeat) while we hold the lease; CopyAborted when we do not."""
        fields["heartbeat_at"] = timezone.now()
        fields["updated_at"] = fields["heartbeat_at"]
        changed = ReturnedExport.objects.filter(pk=self.export.pk, lease_token=self.token).update(**fields)
        if not changed:
            raise CopyAborted("lease lost")
        for name, value in fields.items():
            setattr(self.export, name, value)

    def release(self, **fields: Any) -> None:
        try:
            self.update(lease_token=None, **fields)
        except CopyAborted:
            log.info("export %s: lease was taken over before release", self.export.pk)

    def fail(self, reason: str, *, retryable: bool, detail: str = "") -> Step:
        log.warning("export %s failed: %s %s", self.export.pk, reason, detail)
        self.release(state=State.FAILED, reason=reason[:500], retryable=retryable,
                     finished_at=timezone.now(), next_check_at=None)
        if self.export.state == State.FAILED:  # released: the row says so (else the lease was lost)
            webhooks.returned_export_failed(self.export)
            export = self.export
            transaction.on_commit(lambda: export_finished.send(ReturnedExport, export=export))
        return Step()


# --- the steps --------------------------------------------------------------------------------


def advance(export_id: Any, *, slots: CopySlots | None = None) -> Step:
    """Move the import on by one step.

    Without `slots` a copy runs here, in the caller's thread. With them (a worker process's copy
    slots) the copy runs on a free slot's thread and this returns at once; when no slot is free
    the import waits on the queue (run again in EID_WORKER_BUSY_RETRY_SECONDS), not in the worker.
    """
    if slots is not None and not slots.has_room():
        waiting = _no_slot_for(export_id)
        if waiting is not None:
            return waiting
    lease = Lease.take(export_id)
    if lease is None:
        return Step()

    def step() -> Step:
        if lease.export.state == State.WAITING:
            return _wait_for_render(lease, slots)
        if lease.export.state == State.COPYING:
            return _start_copy(lease, slots)
        lease.release()
        return Step()

    return _guarded(lease, step)


def _guarded(lease: Lease, step: Callable[[], Step]) -> Step:
    try:
        return step()
    except CopyAborted:
        return Step()
    except Exception as exc:  # noqa: BLE001 - a bug must still leave a row an operator can read
        log.exception("export %s: unexpected error", lease.export.pk)
        return lease.fail("Something went wrong while bringing the edit back. Please try again.",
                          retryable=True, detail=type(exc).__name__)


def _busy_retry_at() -> datetime:
    return timezone.now() + timedelta(seconds=eid_settings.EID_WORKER_BUSY_RETRY_SECONDS)


def _no_slot_for(export_id: Any) -> Step | None:
    """Every slot is busy: a copying import waits on the queue, without a lease taken or an attempt counted."""
    row = ReturnedExport.objects.filter(pk=export_id).values("state", "lease_token", "heartbeat_at").first()
    if row is None or row["state"] != State.COPYING:
        return None  # a render check needs no slot (and one that finds the media ready waits below)
    stale = timezone.now() - timedelta(seconds=eid_settings.EID_EXPORT_STALE_SECONDS)
    if row["lease_token"] and row["heartbeat_at"] and row["heartbeat_at"] > stale:
        return Step()  # someone is copying it now: this nudge is not needed
    return Step(run_again_at=_busy_retry_at())


def waiting_for_a_slot(limit: int = 1) -> list[Any]:
    """Imports released for want of a copy slot, longest waiting first.

    That is copying imports nobody holds, due within EID_WORKER_BUSY_RETRY_SECONDS (one whose
    retry after a failed attempt is due as soon is taken a little early: no harm).
    """
    soon = timezone.now() + timedelta(seconds=eid_settings.EID_WORKER_BUSY_RETRY_SECONDS)
    rows = ReturnedExport.objects.filter(state=State.COPYING, lease_token__isnull=True, next_check_at__lte=soon)
    return list(rows.order_by("next_check_at").values_list("pk", flat=True)[:limit])


def _start_copy(lease: Lease, slots: CopySlots | None, **fields: Any) -> Step:
    """Copy here (no slots) or on a free slot's thread; with none free, release and wait on the queue.

    `fields` (the move from waiting to copying) are written in every case: on the slot's thread
    first thing, so that a copying row with a live lease always has its slot.
    """
    if slots is None:
        if fields:
            lease.update(**fields)
        return _copy(lease)

    def job(stop: threading.Event) -> datetime | None:
        def run() -> Step:
            if fields:
                lease.update(**fields)
            return _copy(lease, stop)

        return _guarded(lease, run).run_again_at

    if slots.try_start(lease.export.pk, job):
        return Step()
    again = _busy_retry_at()
    # Not an attempt: nothing was tried.
    attempts = 0 if fields else max(0, lease.export.attempts - 1)
    lease.release(**{**fields, "attempts": attempts, "next_check_at": again})
    return Step(run_again_at=again)


def _published_metadata(export: ReturnedExport) -> tuple[str, PublishedProject | None, float | None]:
    """Ask the published_projects API, when we have a token. ("ready"|"wait"|"skip", answer, wait)."""
    if not eid_settings.DESCRIPT_API_TOKEN:
        return "skip", None, None
    try:
        answer = DescriptClient().published_project(export.share_id, budget=15.0)
    except DescriptError as exc:
        if exc.kind == "processing":
            return "wait", None, None
        if exc.kind == "rate_limited":
            return "wait", None, exc.retry_after
        log.info("export %s: published_projects unavailable (%s %s), using page tags", export.pk, exc.status, exc.code)
        return "skip", None, None
    return "ready", answer, None


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


def _wait_for_render(lease: Lease, slots: CopySlots | None = None) -> Step:
    export = lease.export
    now = timezone.now()
    if export.next_check_at and export.next_check_at > now + timedelta(seconds=1):
        lease.release()
        return Step(run_again_at=export.next_check_at)

    poll = eid_settings.EID_EXPORT_POLL_SECONDS
    waiting_since = export.waiting_since or export.created_at
    links = {k: v for k, v in export.media_links.items() if k in PART_FORMATS}
    api_state, published, api_wait = _published_metadata(export)
    ready = api_state != "wait"
    last_status = 409 if api_state == "wait" and api_wait is None else (429 if api_state == "wait" else None)
    if ready:
        for kind, url in links.items():
            try:
                status = _probe(url)
            except netsafe.UnsafeURL as exc:
                return lease.fail(f"Descript's {kind} link is not allowed: {exc.reason}", retryable=False)
            except netsafe.FetchError as exc:
                status = exc.status or 0
            last_status = status
            if status in NOT_READY or status >= 500 or status == 0:
                ready = False
                break
            if status >= 400:
                return lease.fail(f"Descript's {kind} link answered with an error ({status}).", retryable=True)

    checks = export.checks + 1
    if not ready:
        if (now - waiting_since).total_seconds() >= eid_settings.EID_EXPORT_GIVE_UP_SECONDS:
            hours = eid_settings.EID_EXPORT_GIVE_UP_SECONDS / 3600
            return lease.fail(f"Descript had not finished rendering after {hours:g} hours of checking. "
                              "Publish again in Descript, or try again later.", retryable=True)
        delay = max(poll, api_wait or 0)
        next_at = now + timedelta(seconds=delay)
        lease.release(checks=checks, last_check_status=last_status, next_check_at=next_at)
        return Step(run_again_at=next_at)

    resolved: dict[str, Any] = dict(links)
    fields: dict[str, Any] = {}
    if published:
        meta = published.metadata
        if meta.title and meta.title.strip() and not export.title:
            fields["title"] = meta.title.strip()[:300]
        if meta.duration_seconds is not None and meta.duration_seconds >= 0:
            resolved["_duration"] = float(meta.duration_seconds)
        kind = "video" if published.publish_type == "video" else "audio"
        if published.download_url and _fetchable(published.download_url):
            resolved[kind] = published.download_url  # else the page's own media link stays
        if published.subtitles and published.subtitles.strip():
            resolved["_subtitles_text"] = published.subtitles
    media_links = dict(export.media_links, _resolved=resolved)
    # From here `attempts` counts copy attempts: this run is the first.
    return _start_copy(lease, slots, state=State.COPYING, checks=checks, last_check_status=last_status,
                       next_check_at=None, media_links=media_links, attempts=1, **fields)


def _abort_previous_upload(export: ReturnedExport) -> None:
    upload = export.upload or {}
    for kind in PART_FORMATS:
        key = object_key(export, kind)
        if upload.get("key") == key or kind in ("audio", "video"):
            storage.abort_uploads(key)


def _copy(lease: Lease, stop: threading.Event | None = None) -> Step:
    export = lease.export
    if export.attempts > MAX_COPY_ATTEMPTS:
        return lease.fail("Copying the edit kept failing. Please try again later.", retryable=True)
    _abort_previous_upload(export)  # a worker that died mid-copy left parts behind
    lease.update(upload={}, bytes_copied=0, reason="")
    resolved = export.media_links.get("_resolved") or {}
    stored: list[ReturnedFile] = []
    copied_before = 0
    try:
        for kind in ("video", "audio"):
            url = resolved.get(kind)
            if url:
                key = object_key(export, kind)
                size = _copy_media(lease, url, key, PART_FORMATS[kind][1], copied_before, stop)
                copied_before += size
                stored.append(ReturnedFile(kind, key, size, PART_FORMATS[kind][1]))
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
            stored.append(ReturnedFile(kind, key, len(data), PART_FORMATS[kind][1]))
            copied_before += len(data)
            # Captions count toward the total too, so "copied" never passes "of".
            lease.update(bytes_copied=copied_before, bytes_total=max(export.bytes_total or 0, copied_before))
    except CopyAborted:
        raise
    except CopyStopped as exc:
        return _copy_stopped(lease, exc)
    except netsafe.UnsafeURL as exc:
        return lease.fail(f"A link on the Descript page is not allowed: {exc.reason}", retryable=False)
    except (netsafe.FetchError, storage.StorageError, OSError) as exc:
        if isinstance(exc, netsafe.FetchError) and exc.kind == "too_large":
            reason = "The media file is larger than this site accepts."
        else:
            reason = getattr(exc, "reason", "") or "The copy was interrupted."
        return _retry_copy_later(lease, reason)
    except (BotoCoreError, ClientError):
        return _retry_copy_later(lease, "storage was unavailable.")

    if not any(f.kind in ("audio", "video") for f in stored):
        return lease.fail("The Descript page had no media we could copy.", retryable=False)
    _publish_version(lease, tuple(stored), resolved.get("_duration"))
    return Step()


def _retry_copy_later(lease: Lease, reason: str) -> Step:
    export = lease.export
    log.warning("export %s: copy attempt %s failed: %s", export.pk, export.attempts, reason)
    if export.attempts >= MAX_COPY_ATTEMPTS:
        return lease.fail(f"Copying the edit failed: {reason}", retryable=True)
    again = timezone.now() + timedelta(seconds=min(60.0, 2.0 ** export.attempts))
    lease.release(reason=f"Retrying: {reason}"[:500], next_check_at=again)
    return Step(run_again_at=again)


def _copy_stopped(lease: Lease, stopped: CopyStopped) -> Step:
    """A copy stopped by its watch: release the import, and try again later (or fail, after MAX_COPY_ATTEMPTS)."""
    export = lease.export
    now = timezone.now()
    if stopped.kind == CopyStopped.Kind.SHUTDOWN:
        # Not the link's fault, and not an attempt: another worker carries on at once.
        log.info("export %s: worker stopping, copy released", export.pk)
        lease.release(attempts=max(0, export.attempts - 1), next_check_at=now)
        return Step(run_again_at=now)
    rate = _bytes_per_second(eid_settings.EID_EXPORT_MIN_BYTES_PER_SECOND)
    if stopped.kind == CopyStopped.Kind.TOO_SLOW:
        what = (f"Descript's link was too slow (under {rate} for "
                f"{eid_settings.EID_EXPORT_RATE_WINDOW_SECONDS:g} seconds)")
    else:
        limit = stopped.limit_seconds or 0
        what = f"Descript's link was too slow (the copy passed its time limit of {_duration(limit)})"
    log.warning("export %s: copy attempt %s stopped: %s (%s)", export.pk, export.attempts, stopped.kind,
                stopped.reason)
    if export.attempts >= MAX_COPY_ATTEMPTS:
        return lease.fail(f"{what}, {export.attempts} times. Please try again later.", retryable=True,
                          detail=stopped.reason)
    delay = float(eid_settings.EID_EXPORT_SLOW_RETRY_SECONDS) * 2 ** max(0, export.attempts - 1)
    again = now + timedelta(seconds=delay)
    lease.release(reason=f"{what}; trying again {_in_words(delay)}."[:500], next_check_at=again)
    return Step(run_again_at=again)


def _bytes_per_second(rate: float) -> str:
    """64 KB/s, 1.5 MB/s: the units of the status page's sizes (1 KB = 1024 bytes)."""
    for unit, size in (("MB/s", 1024 * 1024), ("KB/s", 1024)):
        if rate >= size:
            return f"{rate / size:.3g} {unit}"
    return f"{rate:.0f} bytes/s"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _in_words(seconds: float) -> str:
    if seconds < 1:
        return "in a moment"
    return f"in about {_duration(seconds)}"


def _watch(expected_bytes: int, stop: threading.Event | None) -> CopyWatch:
    """The watch on one media copy: the minimum rate over a window, and a deadline scaled to the size."""
    min_rate = float(eid_settings.EID_EXPORT_MIN_BYTES_PER_SECOND)
    deadline = None
    if min_rate > 0:
        deadline = float(eid_settings.EID_EXPORT_DEADLINE_BASE_SECONDS) + expected_bytes / min_rate
    return CopyWatch(min_bytes_per_second=min_rate, window=float(eid_settings.EID_EXPORT_RATE_WINDOW_SECONDS),
                     deadline=deadline, stop=stop)


def _cut(response: Any) -> None:
    """Shut the download's socket down, so that a read blocked on a slow or silent link returns now.

    (Closing the socket would not wake a read blocked in another thread; shutting it down does.)
    """
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:  # http.client's own file object over the socket
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the fd only, safe for a TLS socket too
        except (OSError, ValueError):
            pass  # already closed


def _copy_media(lease: Lease, url: str, key: str, content_type: str, copied_before: int,
                stop: threading.Event | None = None) -> int:
    last_beat = [time.monotonic()]
    limit = eid_settings.EID_EXPORT_MAX_MEDIA_BYTES
    with netsafe.open_stream(url, media_policy()) as response:
        if response.status_code != 200:
            raise netsafe.FetchError(f"Descript's media link answered {response.status_code}.",
                                     kind="bad_status", status=response.status_code)
        length = response.headers.get("Content-Length")
        expected = limit
        if length and length.isdigit():
            if int(length) > limit:
                raise netsafe.FetchError("The media file is larger than this site accepts.", kind="too_large")
            expected = int(length)
            lease.update(bytes_total=copied_before + int(length))
        # Recorded first: if this process dies mid-copy, the next run aborts what it left in S3.
        lease.update(upload={"key": key})
        watch = _watch(expected, stop)

        def progress(total: int) -> None:
            watch.check()  # CopyStopped: too slow, too long, or the worker is stopping
            if time.monotonic() - last_beat[0] >= eid_settings.EID_EXPORT_HEARTBEAT_SECONDS:
                last_beat[0] = time.monotonic()
                lease.update(bytes_copied=copied_before + total)  # raises CopyAborted if lost

        chunks = watch.chunks(netsafe.iter_chunks(response, max_bytes=limit, chunk_size=READ_CHUNK))
        size = stream_to_s3(chunks, key, content_type, part_size=part_size_for(limit), on_progress=progress,
                            interrupt=lambda: _cut(response))
    lease.update(upload={}, bytes_copied=copied_before + size)
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


def _publish_version(lease: Lease, stored: tuple[ReturnedFile, ...], duration: float | None) -> None:
    """Hand the edit to the site and mark the row done, in one transaction: exactly once."""
    with transaction.atomic():
        row = ReturnedExport.objects.select_for_update().get(pk=lease.export.pk)
        if row.lease_token != lease.token or row.state != State.COPYING:
            raise CopyAborted("lease lost before publishing")
        target = Source(row.target_ref, row.target_title) if row.target_ref else None
        result: StoredEdit = get_adapter().store_edit(
            ReturnedEdit(user=row.user, title=row.title, source=target, files=stored, duration_seconds=duration)
        )
        now = timezone.now()
        ReturnedExport.objects.filter(pk=row.pk).update(
            state=State.DONE, result_ref=str(result.ref)[:64], result_title=result.title[:300],
            version_number=result.version, lease_token=None, heartbeat_at=now, finished_at=now, upload={},
            reason="", updated_at=now, bytes_copied=sum(f.size for f in stored),
        )
        # Deliveries are written in this transaction (they exist if and only if the version
        # does) and sent by the worker after it commits.
        webhooks.version_created(row, result, stored, duration)
        transaction.on_commit(lambda: export_finished.send(ReturnedExport, export=row))
    log.info("export %s: version %s of item %s is ready", row.pk, result.version, result.ref)


def retry(export: ReturnedExport, *, operator: bool = False) -> bool:
    """A retry of a failed import: wait for rendering again, from now.

    A user may retry only a retryable failure; an operator any failure. The row changes only
    then; `eid.tasks.retry_import` enqueues when it did.
    """
    now = timezone.now()
    failed = ReturnedExport.objects.filter(pk=export.pk, state=State.FAILED)
    if not operator:
        failed = failed.filter(retryable=True)
    changed = failed.update(
        state=State.WAITING, reason="", retryable=False, waiting_since=now, next_check_at=now, checks=0,
        attempts=0, finished_at=None, lease_token=None, updated_at=now,
    )
    return bool(changed)
