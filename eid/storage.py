"""S3: existence checks, SigV4 presigning and streaming multipart uploads.

One boto3 client per process (clients are thread-safe and expensive to build); it is rebuilt
only when storage settings change, which tests do.

The click's HEAD checks do not go through boto3's `head_object`: botocore's event machinery
(handlers, parsers, retry hooks) cost 3.4 ms of CPU per HEAD, the largest single part of a click
(bench/click_cpu --parts). They are signed with botocore's own SigV4 signer and the client's own
credentials, endpoint and region, and sent with urllib3 (keep-alive pool), retried as the client's
"standard" mode retries (connection errors, 429, 5xx; 3 attempts). The click sends its checks
without a thread (`send_checks`: written before the schema POST, read after it); under load each
thread hand-off costs a wait for the GIL among a hundred request threads.
"""

from __future__ import annotations

import functools
import http.client
import logging
import posixpath
import queue
import ssl
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from datetime import datetime, timedelta, timezone
from typing import Iterable, Protocol, Sequence
from urllib.parse import quote, urlsplit

import boto3
import botocore
import certifi
import requests
import urllib3
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, NoCredentialsError
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
# Shared by every click in the process; as wide as the HEAD session's connection pool.
_HEAD_THREADS = 20
_head_pool = ThreadPoolExecutor(max_workers=_HEAD_THREADS, thread_name_prefix="s3-head")
_HEAD_TIMEOUT = (3.0, 30.0)  # connect, read: the boto3 client's own
_HEAD_ATTEMPTS = 3  # as the boto3 client's "standard" retry mode: connection errors, 429 and 5xx
_HEAD_RETRY_STATUSES = {429, 500, 502, 503, 504}
_HEAD_USER_AGENT = f"eid (botocore/{botocore.__version__})"


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


@functools.lru_cache(maxsize=1)
def _head_http() -> urllib3.PoolManager:
    """Keep-alive connections for the HEAD checks; a proxy from the environment, as boto3 honours one."""
    client = s3_client()
    proxy = requests.utils.get_environ_proxies(client.meta.endpoint_url).get(
        urlsplit(client.meta.endpoint_url).scheme
    )
    timeout = urllib3.Timeout(*_HEAD_TIMEOUT)
    if proxy:
        return urllib3.ProxyManager(proxy, maxsize=_HEAD_THREADS, retries=False, timeout=timeout)
    return urllib3.PoolManager(maxsize=_HEAD_THREADS, retries=False, timeout=timeout)


@functools.lru_cache(maxsize=1)
def _head_proxied() -> bool:
    """A proxy for the storage endpoint: sent checks go through `head()` (urllib3 speaks to proxies)."""
    endpoint = s3_client().meta.endpoint_url
    return bool(requests.utils.get_environ_proxies(endpoint).get(urlsplit(endpoint).scheme))


@receiver(setting_changed)
def _reset_client(setting: str, **kwargs) -> None:
    if setting in _STORAGE_SETTINGS:
        s3_client.cache_clear()
        _head_http.cache_clear()
        _head_proxied.cache_clear()
        with _idle_lock:
            for idle in _idle.values():
                while not idle.empty():
                    idle.get_nowait().close()
            _idle.clear()


def bucket() -> str:
    return eid_settings.AWS_STORAGE_BUCKET_NAME


def _object_url(key: str) -> str:
    # Path-style addressing, as the client is configured; the key encoded as botocore encodes it.
    return f"{s3_client().meta.endpoint_url.rstrip('/')}/{quote(bucket(), safe='')}/{quote(key, safe='/~')}"


def _frozen_credentials() -> ReadOnlyCredentials:
    """The client's own credentials (refreshed as boto3 refreshes them); BotoCoreError when there are none."""
    credentials = s3_client()._request_signer._credentials
    if credentials is None:
        raise NoCredentialsError()
    return credentials.get_frozen_credentials()


def _signed_head(key: str) -> tuple[str, dict[str, str]]:
    """The HEAD's URL and headers, SigV4-signed (Authorization header) as boto3 signs head_object."""
    url = _object_url(key)
    request = AWSRequest(method="HEAD", url=url, headers={"User-Agent": _HEAD_USER_AGENT})
    try:
        S3SigV4Auth(_frozen_credentials(), "s3", s3_client().meta.region_name).add_auth(request)
    except BotoCoreError:  # no credentials, or refreshing them failed: as boto3's head_object would fail
        raise StorageError("unavailable", "Storage is not reachable right now. Please try again.", key) from None
    return url, dict(request.headers.items())


def head(key: str) -> ObjectInfo:
    """The object's size and type, from a HEAD; StorageError (naming the file) when it cannot be had."""
    answer: urllib3.BaseHTTPResponse | None = None
    for attempt in range(_HEAD_ATTEMPTS):
        if attempt:
            time.sleep(0.05 * 2**attempt)
        url, headers = _signed_head(key)  # signed again: X-Amz-Date is part of the signature
        try:
            answer = _head_http().request("HEAD", url, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            # Neither the URL nor the headers (the signature) reach the log: only the kind of failure.
            log.info("storage HEAD failed: %s (attempt %d)", type(exc).__name__, attempt + 1)
            answer = None
            continue
        if answer.status not in _HEAD_RETRY_STATUSES:
            break
    if answer is None:
        raise StorageError("unavailable", "Storage is not reachable right now. Please try again.", key)
    return _object_info(key, answer.status, answer.headers.get("Content-Length"), answer.headers.get("Content-Type"))


def _object_info(key: str, status: int, length: str | None, content_type: str | None) -> ObjectInfo:
    if status == 404:
        raise StorageError("missing", f"The file “{posixpath.basename(key) or key}” is not in storage.", key)
    if status != 200:
        log.info("storage HEAD answered %s", status)
        raise StorageError("unavailable", "Storage did not answer as expected. Please try again.", key)
    try:
        size = int(length or "0")
    except ValueError:
        size = 0
    return ObjectInfo(key=key, size=size, content_type=content_type or "")


class Check(Protocol):
    """A HEAD on its way: `result()` is its ObjectInfo, or raises StorageError."""

    def result(self) -> ObjectInfo: ...


def start_checks(keys: Iterable[str]) -> list[Future[ObjectInfo]]:
    """HEAD every object at once, in the background: the click overlaps them with Descript's answer."""
    return [_head_pool.submit(head, key) for key in keys]


# Idle keep-alive connections of the sent checks, per (scheme, host, port); LIFO keeps the warm ones.
_idle: dict[tuple[str, str, int], queue.LifoQueue[http.client.HTTPConnection]] = {}
_idle_lock = threading.Lock()


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _idle_for(origin: tuple[str, str, int]) -> queue.LifoQueue[http.client.HTTPConnection]:
    with _idle_lock:
        return _idle.setdefault(origin, queue.LifoQueue(maxsize=_HEAD_THREADS))


def _take_connection(origin: tuple[str, str, int]) -> http.client.HTTPConnection:
    try:
        return _idle_for(origin).get_nowait()
    except queue.Empty:
        pass
    scheme, host, port = origin
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=_HEAD_TIMEOUT[0], context=_tls_context())
    return http.client.HTTPConnection(host, port, timeout=_HEAD_TIMEOUT[0])


def _give_back(origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
    try:
        _idle_for(origin).put_nowait(conn)
    except queue.Full:
        conn.close()


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())  # the CA bundle requests and boto3 use


class SentCheck:
    """A HEAD already sent on a keep-alive connection of its own, its answer not yet read.

    The click sends its checks, then POSTs to Descript and reads the checks' answers after: the
    HEADs travel while Descript answers, without a thread. Anything unusual (a connection the
    server had closed, a 429 or 5xx, a proxy to go through) is the HEAD again with `head()`'s
    retries, after Descript's answer.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._conn: http.client.HTTPConnection | None = None
        self._origin = ("", "", 0)
        if _head_proxied():
            return
        try:
            url, headers = _signed_head(key)
            self._origin = _origin(url)
            conn = _take_connection(self._origin)
            self._conn = conn
            conn.request("HEAD", urlsplit(url).path, headers=headers)
            if conn.sock is not None:
                conn.sock.settimeout(_HEAD_TIMEOUT[1])  # connected: now the read timeout
        except StorageError:
            self._conn = None
        except (OSError, http.client.HTTPException):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def result(self) -> ObjectInfo:
        conn = self._conn
        if conn is None:
            return head(self.key)
        try:
            answer = conn.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException) as exc:
            log.info("storage HEAD on a kept connection failed: %s; sending it again", type(exc).__name__)
            self._drop()
            return head(self.key)
        self._conn = None
        if answer.status in _HEAD_RETRY_STATUSES:
            conn.close()
            return head(self.key)
        # Closed by the server (Connection: close)? http.client connects again on its next request.
        _give_back(self._origin, conn)
        return _object_info(self.key, answer.status, answer.getheader("Content-Length"),
                            answer.getheader("Content-Type"))


def send_checks(keys: Iterable[str]) -> list[SentCheck]:
    """HEAD every object now, answers read by `finish_checks`: for a caller that waits on something else meanwhile."""
    return [SentCheck(key) for key in keys]


def finish_checks(checks: Sequence[Check]) -> list[ObjectInfo]:
    """Wait for `start_checks` or `send_checks`: each object must exist, hold bytes, and be a type Descript imports."""
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
    if download_name:
        params = {"Bucket": bucket(), "Key": key,
                  "ResponseContentDisposition": f'attachment; filename="{download_name}"'}
        return s3_client().generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)
    # The click's case, signed by botocore's own query signer without the client's event machinery:
    # the same URL as generate_presigned_url("get_object") (tests compare them), at 40 % of the CPU.
    request = AWSRequest(method="GET", url=_object_url(key))
    try:
        signer = S3SigV4QueryAuth(_frozen_credentials(), "s3", s3_client().meta.region_name, expires=ttl_seconds)
        signer.add_auth(request)
    except BotoCoreError:
        raise StorageError("credentials", "Storage credentials are not usable.", key) from None
    assert request.url is not None
    return request.url


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
