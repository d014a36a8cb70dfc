"""Stream bytes into S3 as a multipart upload, in constant memory.

Parts are uploaded by one background thread while the next part is read, so the download and
the upload overlap; at most three parts (reading, queued, uploading) are in memory at once.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable

from . import storage

PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last


class CopyAborted(Exception):
    pass


def stream_to_s3(
    chunks: Iterable[bytes],
    key: str,
    content_type: str,
    *,
    part_size: int = PART_SIZE,
    on_started: Callable[[str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Upload everything `chunks` yields to `key`; returns the byte count.

    `on_started(upload_id)` lets the caller record the upload so a later run can abort it if
    this process dies; `on_progress(total)` is called for every chunk read (keep it cheap) and
    may raise CopyAborted to stop (the lease was lost).
    On any failure the multipart upload is aborted, leaving no orphan parts.
    """
    client = storage.s3_client()
    bucket = storage.bucket()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
    if on_started:
        on_started(upload_id)
    parts: list[dict] = []
    errors: list[BaseException] = []
    pending: queue.Queue = queue.Queue(maxsize=1)

    def uploader() -> None:
        while True:
            item = pending.get()
            if item is None:
                return
            number, data = item
            if errors:
                continue  # drain: something already failed
            try:
                answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                errors.append(exc)

    thread = threading.Thread(target=uploader, name=f"s3-part-{key[-24:]}", daemon=True)
    thread.start()
    total = 0
    number = 0
    buffer = bytearray()
    try:
        for chunk in chunks:
            if errors:
                raise errors[0]
            buffer += chunk
            total += len(chunk)
            while len(buffer) >= part_size:
                number += 1
                pending.put((number, bytes(buffer[:part_size])))
                del buffer[:part_size]
            if on_progress:
                on_progress(total)  # per chunk: a slow download still shows it is alive
        if buffer or number == 0:
            number += 1
            pending.put((number, bytes(buffer)))
            buffer = bytearray()
        pending.put(None)
        thread.join()
        if errors:
            raise errors[0]
        parts.sort(key=lambda p: p["PartNumber"])
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        errors.append(CopyAborted())
        # Unblock and stop the uploader, then drop what S3 holds of this upload.
        while thread.is_alive():
            try:
                pending.put(None, timeout=0.1)
            except queue.Full:
                pass
            thread.join(timeout=0.1)
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # noqa: BLE001 - the original error matters more; a sweep aborts later
            pass
        raise
    if on_progress:
        on_progress(total)
    return total
