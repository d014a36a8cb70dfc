"""Fetching: `fetch` reads a whole (limited) body, `open_stream` hands the response to the caller.

Every redirect is followed by hand and its Location goes through `check_url` again; headers
meant for one origin (Authorization, Cookie, Proxy-Authorization) are dropped when a redirect
leaves it. Errors come back as FetchError in plain words, never with the link's query string.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import SplitResult, urljoin

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from .deadline import Deadline
from .errors import FetchError, UnsafeURL
from .policy import FetchPolicy, FetchResult
from .transport import SafeAdapter, session_for
from .urls import check_url, redact_url

_CHUNK = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that must not follow a redirect to another origin (they are meant for the first one).
_ORIGIN_BOUND_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


def _require_safe(session: requests.Session, url: str) -> None:
    if not isinstance(session.get_adapter(url), SafeAdapter):
        raise TypeError("netsafe needs a session from make_session(): its adapter checks the connected address")


def _same_origin(a: SplitResult, b: SplitResult) -> bool:
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: requests and urllib3 nest the socket's error in args and reason."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (current.__cause__, getattr(current, "reason", None), *current.args):
            if isinstance(inner, BaseException):
                stack.append(inner)


def _is_timeout(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            continue  # urllib3 makes "connection refused" a subclass of its connect timeout
        if isinstance(cause, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return True
    return False


def _map_error(exc: Exception, where: SplitResult, deadline: Deadline | None) -> FetchError:
    """Turn a requests/urllib3 error into plain words, without the URL's query string.

    Every failure to connect or to talk to the peer - refused (a closed port), reset, cut off,
    a failed TLS handshake, a name that does not resolve - reads the same: the message must not
    tell whether something listens at an address (no port-scan oracle). Only running out of
    time and undecodable content are told apart; the first is decided by the deadline and the
    exception types, never by the peer's words.
    """
    if deadline is not None and (deadline.expired or deadline.remaining() <= 0):
        return FetchError(f"{redact_url(where)} took too long to answer.", kind="timeout")
    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return FetchError(f"{redact_url(where)} sent content that could not be decoded.", kind="bad_encoding")
    if _is_timeout(exc):
        return FetchError(f"{redact_url(where)} took too long to answer.", kind="timeout")
    return FetchError(f"Could not download {redact_url(where)}.", kind="connection")


_READ_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)
_TRANSPORT_ERRORS = (*_READ_ERRORS, OSError)


def _follow(
    session: requests.Session,
    start: SplitResult,
    policy: FetchPolicy,
    path_pattern: re.Pattern[str] | None,
    headers: Mapping[str, str] | None,
    timeout: Callable[[], tuple[float, float]],
    deadline: Deadline | None,
) -> tuple[requests.Response, SplitResult]:
    """GET `start`, following redirects by hand; every hop is checked before it is requested."""
    current = start
    sent_headers = dict(headers or {})
    for hop in range(policy.max_redirects + 1):
        url = current.geturl()
        _require_safe(session, url)
        try:
            response = session.get(url, headers=sent_headers, allow_redirects=False, stream=True, timeout=timeout())
        except UnsafeURL:
            raise  # the peer check refused the connection
        except _TRANSPORT_ERRORS as exc:
            raise _map_error(exc, current, deadline) from None
        if response.status_code not in _REDIRECT_STATUSES:
            return response, current
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise FetchError(f"{redact_url(current)} redirected without saying where.", kind="redirect",
                             status=response.status_code)
        if hop == policy.max_redirects:
            raise FetchError(f"{redact_url(start)} redirected too many times.", kind="redirect",
                             status=response.status_code)
        target = check_url(urljoin(url, location.strip()), policy, path_pattern=path_pattern)
        if not _same_origin(current, target):
            for name in _ORIGIN_BOUND_HEADERS:
                for key in [k for k in sent_headers if k.lower() == name.lower()]:
                    del sent_headers[key]
        current = target
    raise AssertionError("unreachable")  # the loop returns or raises


def _check_response(response: requests.Response, where: SplitResult, policy: FetchPolicy) -> None:
    status = response.status_code
    if not 200 <= status < 300:
        raise FetchError(f"{redact_url(where)} answered with status {status}.", kind="bad_status", status=status)
    if policy.allowed_content_types is not None:
        media = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media not in policy.allowed_content_types:
            shown = media or "no declared type"
            raise FetchError(f"{redact_url(where)} is not a web page ({shown}).", kind="not_html", status=status)
    declared = (response.headers.get("Content-Length") or "").strip()
    if policy.max_bytes is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        # Refuse before reading a byte of the body.
        raise FetchError(f"{redact_url(where)} is larger than {policy.max_bytes} bytes.", kind="too_large", status=status)


def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    session: requests.Session | None = None,
    path_pattern: re.Pattern[str] | None = None,
    stream_to: Callable[[bytes], Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """GET `url` under `policy`; raise UnsafeURL (nothing fetched) or FetchError.

    The whole exchange - DNS look-ups, connecting, each redirect, headers and body - must
    finish within `policy.timeout` seconds, and the body may not exceed `policy.max_bytes`
    (None: no limit).
    With `stream_to`, body chunks are handed to it as they arrive (still within the deadline
    and the byte limit) and the result's `body` is b"". A status outside 2xx raises
    FetchError(kind="bad_status", status=...).
    """
    with Deadline(policy.timeout) as deadline:
        start = check_url(url, policy, path_pattern=path_pattern)  # its DNS look-up is in the budget
        session = session or session_for(policy)

        def timeout() -> tuple[float, float]:
            left = deadline.remaining()
            if left <= 0:
                raise FetchError(f"{redact_url(start)} took too long to answer.", kind="timeout")
            return (left, left)

        response, final = _follow(session, start, policy, path_pattern, headers, timeout, deadline)
        try:
            _check_response(response, final, policy)
            chunks: list[bytes] = []
            total = 0
            body = response.iter_content(chunk_size=_CHUNK)
            while not deadline.expired:
                # Only the read is mapped to FetchError: an OSError from `stream_to` (a full
                # disk, say) is the caller's and must not turn into "could not download".
                try:
                    chunk = next(body)
                except StopIteration:
                    break
                except _TRANSPORT_ERRORS as exc:
                    raise _map_error(exc, final, deadline) from None
                total += len(chunk)
                if policy.max_bytes is not None and total > policy.max_bytes:
                    raise FetchError(f"{redact_url(final)} is larger than {policy.max_bytes} bytes.",
                                     kind="too_large", status=response.status_code)
                if stream_to is not None:
                    stream_to(chunk)
                else:
                    chunks.append(chunk)
            # A shut-down socket can look like a clean end of body: the flag tells them apart.
            if deadline.expired:
                raise FetchError(f"{redact_url(final)} took too long to answer.", kind="timeout")
            return FetchResult(
                url=final.geturl(),
                status=response.status_code,
                headers=CaseInsensitiveDict(response.headers),
                body=b"".join(chunks),
                content_type=response.headers.get("Content-Type"),
            )
        finally:
            # Closing an unfinished response closes its connection instead of reusing it, so an
            # oversized body is never read to the end.
            response.close()


@contextlib.contextmanager
def open_stream(
    url: str,
    policy: FetchPolicy,
    *,
    session: requests.Session | None = None,
    headers: Mapping[str, str] | None = None,
    path_pattern: re.Pattern[str] | None = None,
) -> Iterator[requests.Response]:
    """Open `url` for the caller to read (`iter_content`), e.g. a multi-GB media copy.

    Checked like `fetch` (the link, every redirect, the connected peer). `policy.timeout` is a
    total budget up to the response headers (DNS look-ups included), then a per-read timeout while the caller reads.
    Raises FetchError for a status outside 2xx, a refused content type, or a declared length
    above `policy.max_bytes`; counting the bytes actually read is the caller's job (see
    `iter_chunks`). Transport errors raised while the caller reads inside the `with` block are
    turned into FetchError too.
    """
    with Deadline(policy.timeout) as deadline:
        start = check_url(url, policy, path_pattern=path_pattern)  # its DNS look-up is in the budget
        session = session or session_for(policy)

        def timeout() -> tuple[float, float]:
            left = deadline.remaining()
            if left <= 0:
                raise FetchError(f"{redact_url(start)} took too long to answer.", kind="timeout")
            return (left, policy.timeout)  # read timeout stays per read for the body

        response, final = _follow(session, start, policy, path_pattern, headers, timeout, deadline)
    try:
        if deadline.expired:
            raise FetchError(f"{redact_url(final)} took too long to answer.", kind="timeout")
        _check_response(response, final, policy)
        try:
            yield response
        except _READ_ERRORS as exc:  # not OSError: the caller's own I/O errors stay theirs
            raise _map_error(exc, final, None) from None
    finally:
        response.close()


def iter_chunks(response: requests.Response, *, max_bytes: int | None, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """Body chunks of an `open_stream` response, stopping with FetchError(too_large) past max_bytes."""
    total = 0
    for chunk in response.iter_content(chunk_size=chunk_size):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise FetchError(f"{redact_url(response.url)} is larger than {max_bytes} bytes.", kind="too_large",
                             status=response.status_code)
        yield chunk
