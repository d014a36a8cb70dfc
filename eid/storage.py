"""S3: existence checks, SigV4 presigning and streaming multipart uploads.

One boto3 client per process (clients are thread-safe and expensive to build); it is rebuilt
only when storage settings change, which tests do.
"""

from __future__ import annotations

import functools
import logging
import posixpath
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from datetime import datetime, timedelta, timezone
from typing import Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.signals import setting_changed
from django.dispatch import receiver


from .conf import eid_settings
from .errors import EidError
from .media import is_supported_object

log = logging.getLogger(__name__)

# SigV4 presigned URLs cannot outlive 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_STORAGE_SETTINGS = {
    "AWS_S3_ENDPOINT_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_REGION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
# Shared by every click in the process; as wide as the boto3 client's connection pool.
_head_pool = ThreadPoolExecutor(max_workers=20, thread_name_prefix="s3-head")


class StorageError(EidError):
    """A file cannot be handed to Descript. `reason` is plain words naming the file."""

    class Kind(StrEnum):
        MISSING = "missing"
        EMPTY = "empty"
        UNSUPPORTED = "unsupported"
        UNAVAILABLE = "unavailable"
        CREDENTIALS = "credentials"

    def __init__(self, kind: str, reason: str, key: str = "") -> None:
        super().__init__(kind, reason)
        self.key = key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str


@functools.lru_cache(maxsize=1)
def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=eid_settings.AWS_S3_ENDPOINT_URL,
        region_name=eid_settings.AWS_S3_REGION_NAME,
        aws_access_key_id=eid_settings.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=eid_settings.AWS_SECRET_ACCESS_KEY,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=3,
            read_timeout=30,
            max_pool_connections=20,
        ),
    )


@receiver(setting_changed)
def _reset_client(setting: str, **kwargs) -> None:
    if setting in _STORAGE_SETTINGS:
        s3_client.cache_clear()


def bucket() -> str:
    return eid_settings.AWS_STORAGE_BUCKET_NAME


def head(key: str) -> ObjectInfo:
    name = posixpath.basename(key) or key
    try:
        answer = s3_client().head_object(Bucket=bucket(), Key=key)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise StorageError("missing", f"The file “{name}” is not in storage.", key) from None
        raise StorageError("unavailable", "Storage did not answer as expected. Please try again.", key) from None
    except BotoCoreError:
        raise StorageError("unavailable", "Storage is not reachable right now. Please try again.", key) from None
    return ObjectInfo(key=key, size=int(answer.get("ContentLength", 0)), content_type=answer.get("ContentType", ""))


def start_checks(keys: Iterable[str]) -> list[Future[ObjectInfo]]:
    """HEAD every object at once, in the background: the click overlaps them with Descript's answer."""
    return [_head_pool.submit(head, key) for key in keys]


def finish_checks(checks: list[Future[ObjectInfo]]) -> list[ObjectInfo]:
    """Wait for `start_checks`: each object must exist, hold bytes, and be a type Descript imports."""
    infos = []
    first_error: StorageError | None = None
    for future in checks:
        try:
            infos.append(future.result())
        except StorageError as exc:
            first_error = first_error or exc
    if first_error:
        raise first_error
    for info in infos:
        name = posixpath.basename(info.key) or info.key
        if info.size <= 0:
            raise StorageError("empty", f"The file “{name}” is empty.", info.key)
        if not is_supported_object(info.key, info.content_type):
            raise StorageError(
                "unsupported",
                f"The file “{name}” is not a type Descript can import "
                "(audio: WAV, FLAC, AAC, MP3; video: MP4, MOV).",
                info.key,
            )
    return infos


def check_for_descript(keys: Iterable[str]) -> list[ObjectInfo]:
    return finish_checks(start_checks(keys))


def _credentials_expiry() -> datetime | None:
    creds = s3_client()._request_signer._credentials  # botocore keeps the live credentials here
    expiry = getattr(creds, "_expiry_time", None)
    return expiry if isinstance(expiry, datetime) else None


def presign_get(key: str, ttl_seconds: int, *, download_name: str | None = None) -> str:
    """A SigV4 GET URL. Refuses a lifetime the signing credentials cannot honour."""
    if not 0 < ttl_seconds <= MAX_PRESIGN_SECONDS:
        raise StorageError("credentials", "Presigned URLs can last at most 7 days.", key)
    expiry = _credentials_expiry()
    if expiry is not None and expiry < datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds):
        # Temporary credentials sign happily, but the URL dies with them.
        raise StorageError("credentials", "Storage credentials expire before the links would.", key)
    params = {"Bucket": bucket(), "Key": key}
    if download_name:
        params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
    return s3_client().generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)


def put_bytes(key: str, data: bytes, content_type: str) -> None:
    s3_client().put_object(Bucket=bucket(), Key=key, Body=data, ContentType=content_type)


def abort_uploads(key: str) -> int:
    """Abort every unfinished multipart upload of `key`; returns how many were aborted."""
    client = s3_client()
    aborted = 0
    answer = client.list_multipart_uploads(Bucket=bucket(), Prefix=key)
    for upload in answer.get("Uploads", []):
        if upload["Key"] == key:
            client.abort_multipart_upload(Bucket=bucket(), Key=key, UploadId=upload["UploadId"])
            aborted += 1
    return aborted
