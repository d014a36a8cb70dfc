"""eid.copier against moto's S3 server: whole objects, no orphan multipart uploads, bounded parts."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from eid.copier import MIN_PART_SIZE, CopyAborted, part_size_for, stream_to_s3
from sandbox.media import synthetic_chunks

MiB = 1024 * 1024


def uploads_in_flight(s3) -> list:
    return s3.list_multipart_uploads(Bucket=settings.AWS_STORAGE_BUCKET_NAME).get("Uploads", [])


def stored(s3, key: str) -> bytes:
    return s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)["Body"].read()


@pytest.mark.parametrize("chunk", [1000, 7 * 1024 + 3, MiB, 3 * MiB + 1])
def test_chunks_of_any_size_make_the_same_object(s3, chunk):
    size = 12 * MiB + 5  # three parts: two full ones and a short last one
    expected = b"".join(synthetic_chunks("copier", size))
    pieces = (expected[i:i + chunk] for i in range(0, size, chunk))
    key = f"copier/any-{chunk}.bin"

    assert stream_to_s3(pieces, key, "audio/mp4") == size

    data = stored(s3, key)
    assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()
    head = s3.head_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)
    assert head["ContentType"] == "audio/mp4"
    assert uploads_in_flight(s3) == []


def test_small_and_empty_bodies_are_stored_too(s3):
    assert stream_to_s3(iter([b"abc", b"", b"def"]), "copier/small.bin", "text/plain") == 6
    assert stored(s3, "copier/small.bin") == b"abcdef"
    assert stream_to_s3(iter([]), "copier/empty.bin", "text/plain") == 0
    assert stored(s3, "copier/empty.bin") == b""


def test_a_failing_download_aborts_the_upload_and_raises_its_error(s3):
    class Broken(Exception):
        pass

    def chunks():
        yield from synthetic_chunks("broken", 11 * MiB)  # two parts are on their way
        raise Broken("the download broke")

    with pytest.raises(Broken):
        stream_to_s3(chunks(), "copier/broken.bin", "audio/mp4")
    assert uploads_in_flight(s3) == []
    assert s3.list_objects_v2(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix="copier/broken").get("KeyCount") == 0


def test_a_lost_lease_stops_the_copy_and_leaves_nothing(s3):
    seen: list[int] = []
    downloaded: list[int] = []

    def slow_chunks():
        import time

        for piece in synthetic_chunks("lease", 40 * MiB, chunk=MiB):
            time.sleep(0.02)
            downloaded.append(len(piece))
            yield piece

    def progress(total: int) -> None:
        seen.append(total)
        if total >= 6 * MiB:
            raise CopyAborted("lease lost")

    with pytest.raises(CopyAborted):
        stream_to_s3(slow_chunks(), "copier/lease.bin", "audio/mp4", on_progress=progress)
    assert seen and seen[-1] < 40 * MiB  # stopped early...
    assert sum(downloaded) < 20 * MiB  # ... and the download stopped with it
    assert uploads_in_flight(s3) == []
    assert s3.list_objects_v2(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix="copier/lease").get("KeyCount") == 0


def test_progress_is_reported_on_the_calling_thread_up_to_the_total(s3):
    import threading

    threads, totals = set(), []

    def progress(total: int) -> None:
        threads.add(threading.get_ident())
        totals.append(total)

    stream_to_s3(synthetic_chunks("progress", 6 * MiB), "copier/progress.bin", "audio/mp4", on_progress=progress)
    assert threads == {threading.get_ident()}  # so it may use this thread's database connection
    assert totals[-1] == 6 * MiB and totals == sorted(totals)


def test_part_size_grows_only_when_ten_thousand_parts_would_not_hold_the_limit():
    assert part_size_for(None) == MIN_PART_SIZE
    assert part_size_for(20 * 1024**3) == MIN_PART_SIZE
    assert part_size_for(100 * 1024**3) == -(-100 * 1024**3 // 10_000)
    with pytest.raises(ValueError):
        stream_to_s3(iter([b"x"]), "copier/x", "text/plain", part_size=MiB)


# --- stopping a slow copy (CopyWatch) -------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_stops_a_copy_below_the_minimum_rate_only_after_a_full_window():
    from eid.copier import CopyStopped, CopyWatch

    clock = Clock()
    watch = CopyWatch(min_bytes_per_second=1000, window=10, clock=clock)
    list(watch.chunks([b"x" * 50]))  # 50 bytes, then nothing: far too slow...
    watch.finished = False
    for _ in range(99):
        clock.now += 0.1
        watch.check()  # ...but not judged before a whole window has passed
    clock.now += 0.2
    with pytest.raises(CopyStopped) as stopped:
        watch.check()
    assert stopped.value.kind == "too_slow"


def test_the_watch_judges_the_last_window_not_the_whole_copy():
    from eid.copier import CopyStopped, CopyWatch

    clock = Clock()
    watch = CopyWatch(min_bytes_per_second=1000, window=10, clock=clock)
    feed = watch.chunks(iter(lambda: b"x" * 200, None))
    for _ in range(300):  # 30 s at 2000 bytes/s: fine
        clock.now += 0.1
        next(feed)
        watch.check()
    for _ in range(50):  # then 5 s with nothing: the last 10 s still averaged 1000 bytes/s
        clock.now += 0.1
        watch.check()
    with pytest.raises(CopyStopped):
        for _ in range(20):
            clock.now += 0.1
            watch.check()


def test_the_watch_has_a_deadline_a_stop_and_lets_a_finished_download_be():
    import threading

    from eid.copier import CopyStopped, CopyWatch

    clock = Clock()
    watch = CopyWatch(min_bytes_per_second=0, window=10, deadline=60, clock=clock)
    clock.now += 59
    watch.check()  # no minimum rate: only the deadline
    clock.now += 2
    with pytest.raises(CopyStopped) as stopped:
        watch.check()
    assert stopped.value.kind == "deadline" and stopped.value.limit_seconds == 60

    stop = threading.Event()
    watch = CopyWatch(min_bytes_per_second=1000, window=10, deadline=5, stop=stop, clock=clock)
    list(watch.chunks([b"done"]))
    clock.now += 100
    watch.check()  # all read: neither the rate nor the deadline applies to the upload's tail
    stop.set()
    with pytest.raises(CopyStopped) as stopped:
        watch.check()
    assert stopped.value.kind == "shutdown"


def test_a_stopped_copy_interrupts_a_download_that_waits_on_the_network(s3):
    """A read that would block for long (a silent link) ends when the copy stops, via `interrupt`."""
    import threading
    import time

    from eid.copier import CopyStopped

    cut = threading.Event()

    def silent_link():
        yield b"x" * 1000
        if cut.wait(60):  # a read blocked on the socket, until the socket is shut down
            raise OSError("connection shut down")

    def progress(total: int) -> None:
        raise CopyStopped("too_slow", "nothing arrives")

    started = time.monotonic()
    with pytest.raises(CopyStopped):
        stream_to_s3(silent_link(), "copier/silent.bin", "audio/mp4", on_progress=progress, interrupt=cut.set)
    assert time.monotonic() - started < 10
    assert uploads_in_flight(s3) == []
