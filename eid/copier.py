"""Stream bytes into S3 as a multipart upload, in bounded memory, at upload_file's pace.

The upload itself is s3transfer's (the engine behind boto3's `upload_file`): it reads parts
from a file-like view of the incoming chunks and uploads several at once, so the download and
the uploads overlap, and it aborts the multipart upload when anything fails. We bound what it
may hold in memory (about `concurrency` parts, whatever the size of the media: nothing goes to
disk), and keep the calling thread free to report progress and to stop the copy when the
caller says so (a lost lease, a copy too slow or past its deadline: see CopyWatch). A
hand-written part uploader measured up to two times slower than s3transfer against the same
server (see bench/export_copy.py).
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from enum import StrEnum
from typing import Callable, Iterable, Iterator

from boto3.s3.transfer import TransferConfig
from s3transfer.manager import TransferManager
from s3transfer.subscribers import BaseSubscriber

from . import storage
from .errors import EidError

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's maximum number of parts in one upload
PART_SIZE = MIN_PART_SIZE
# Four uploads at once keep the link busy (one part's round trip alone leaves it idle) while
# the memory bound stays near 30 MiB with 5 MiB parts.
CONCURRENCY = 4
# How often the calling thread reports progress while the copy runs.
PROGRESS_SECONDS = 0.1


class CopyAborted(EidError):
    """The copy must stop: this worker lost its lease on the import (another took it over)."""

    class Kind(StrEnum):
        LEASE_LOST = "lease_lost"

    def __init__(self, reason: str) -> None:
        super().__init__("lease_lost", reason)


class CopyStopped(EidError):
    """The copy was stopped on purpose: too slow, past its deadline, or the worker is stopping."""

    class Kind(StrEnum):
        TOO_SLOW = "too_slow"
        DEADLINE = "deadline"
        SHUTDOWN = "shutdown"

    def __init__(self, kind: str, reason: str, *, limit_seconds: float | None = None) -> None:
        super().__init__(kind, reason)
        self.limit_seconds = limit_seconds  # the deadline that was passed (kind "deadline")


class CopyWatch:
    """Stops a copy whose download is too slow, past its deadline, or whose worker is stopping.

    `chunks()` counts what the download yields (on whichever thread reads it); `check()`, called
    often on the copying thread (stream_to_s3's on_progress runs every PROGRESS_SECONDS, bytes
    or not, so a link that sends nothing at all is caught too), raises CopyStopped when:
    - `stop` is set (the worker is shutting down);
    - more than `deadline` seconds have passed since the watch was made;
    - at least `window` seconds in, fewer than `min_bytes_per_second` were read on average over
      the last `window` seconds (0 turns this off).
    Neither limit applies once the download has ended: the upload's tail may take a moment with
    nothing left to read.
    """

    def __init__(self, *, min_bytes_per_second: float, window: float, deadline: float | None = None,
                 stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_rate = min_bytes_per_second
        self.window = window
        self.deadline = deadline
        self.stop = stop
        self.clock = clock
        self.started = clock()
        self.count = 0
        self.finished = False
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    def chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.count += len(chunk)
            yield chunk
        self.finished = True

    def rate(self) -> float | None:
        """Average bytes per second over the last `window` seconds (None before a window has passed)."""
        now = self.clock()
        count = self.count
        self._samples.append((now, count))
        # Keep one sample at or before the window's start, and everything after it.
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        since, then = self._samples[0]
        if now - self.started < self.window or now <= since:
            return None
        return (count - then) / (now - since)

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise CopyStopped("shutdown", "The worker is stopping.")
        if self.finished:
            return  # all read: what is left is the upload's tail
        if self.deadline is not None and self.clock() - self.started > self.deadline:
            raise CopyStopped("deadline", f"The copy took longer than {self.deadline:.0f} seconds.",
                              limit_seconds=self.deadline)
        rate = self.rate()
        if self.min_rate > 0 and rate is not None and rate < self.min_rate:
            raise CopyStopped("too_slow", f"The download ran at {rate:.0f} bytes/s over {self.window:g} s.")


def part_size_for(max_bytes: int | None) -> int:
    """The smallest part size that still fits `max_bytes` in S3's 10,000 parts."""
    if not max_bytes:
        return PART_SIZE
    return max(PART_SIZE, -(-max_bytes // MAX_PARTS))


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, counting what has been read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._current = memoryview(b"")
        self.count = 0
        self.stopped = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # s3transfer goes on reading a cancelled upload to its end (it only skips the parts):
        # stop the download instead.
        if self.stopped.is_set():
            raise CopyAborted("the copy was stopped")
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        self.count += n
        return n


class _Done(BaseSubscriber):
    def __init__(self) -> None:
        self.event = threading.Event()

    def on_done(self, future, **kwargs) -> None:
        self.event.set()


def stream_to_s3(
    chunks: Iterable[bytes],
    key: str,
    content_type: str,
    *,
    part_size: int = PART_SIZE,
    concurrency: int = CONCURRENCY,
    on_progress: Callable[[int], None] | None = None,
    interrupt: Callable[[], None] | None = None,
) -> int:
    """Upload everything `chunks` yields to `key`; returns the byte count.

    `chunks` is read on s3transfer's threads; an exception it raises (a size limit, a broken
    download) fails the copy and is raised here. `on_progress(bytes_read)` is called on the
    calling thread about every PROGRESS_SECONDS, and may raise (e.g. CopyAborted when the lease
    was lost, CopyStopped from a CopyWatch) to stop the copy. Whatever stops it, the multipart
    upload is aborted, leaving no orphan parts. `interrupt()`, when given, is called as the copy
    stops, to unblock a download that waits on the network (a read of a link that drips or sends
    nothing would otherwise hold s3transfer's reading thread, and so this call, until the read
    timed out): e.g. shut its socket down.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError("S3 parts are at least 5 MiB")
    reader = _ChunkReader(chunks)
    # BufferedReader.read(n) returns n bytes unless the stream ends: every part is full-size.
    body = io.BufferedReader(reader, buffer_size=1024 * 1024)
    config = TransferConfig(
        multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=concurrency,
    )
    # Not a constructor argument of boto3's TransferConfig; without it s3transfer buffers up to
    # ten parts of a stream that cannot seek.
    config.max_in_memory_upload_chunks = concurrency
    done = _Done()
    with TransferManager(storage.s3_client(), config) as manager:
        future = manager.upload(
            body, storage.bucket(), key, extra_args={"ContentType": content_type}, subscribers=[done]
        )
        try:
            while not done.event.wait(PROGRESS_SECONDS):
                if on_progress:
                    on_progress(reader.count)
            future.result()
        except BaseException as exc:
            # Cancelling makes s3transfer abort the multipart upload once its tasks stop.
            reader.stopped.set()
            if interrupt is not None:
                try:
                    interrupt()
                except Exception:  # noqa: BLE001 - stopping goes on regardless
                    pass
            future.cancel()
            try:
                future.result()
            except BaseException:  # noqa: BLE001 - `exc` is what the caller needs to see
                pass
            raise exc from None
    if on_progress:
        on_progress(reader.count)
    return reader.count
