"""Fetching attacker-controllable links without becoming an SSRF proxy.

A Descript share link (and the media links on its page) is input from a user, so every
request this module makes is checked three times:

1. `check_url` - syntax, scheme, host, port and path rules, then a DNS look-up that must
   return only public addresses. Nothing is fetched when this fails.
2. Every redirect is followed by hand and its Location goes through `check_url` again.
3. The connection itself: DNS can answer differently the second time (rebinding), so the
   urllib3 connection classes used by `SafeAdapter` look at the address the socket actually
   connected to and drop it when it is not public.

The only exception are `FetchPolicy.dev_origins`: the offline Descript sandbox that demo and
test settings run on a loopback address over plain http. An exempt origin has to match scheme,
host and port exactly.

Nothing here reads Django settings: callers build a `FetchPolicy` and pass it in.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

__all__ = [
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "MAX_URL_LENGTH",
    "SafeAdapter",
    "USER_AGENT",
    "UnsafeURL",
    "check_url",
    "fetch",
    "iter_chunks",
    "make_session",
    "open_stream",
    "redact_url",
    "session_for",
]

USER_AGENT = "PartnerBackend/1.0 (+Edit in Descript)"
MAX_URL_LENGTH = 2048
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that must not follow a redirect to another origin (they are meant for the first one).
_ORIGIN_BOUND_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
# Whitespace, control characters and backslashes: browsers and urllib disagree about what they
# mean inside a URL (`https://a\@b/`), and a share link never needs them.
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_LABELS = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_HEX_PART = re.compile(r"^0[xX][0-9a-fA-F]*$")
# Well-known NAT64 prefix: 64:ff9b::a.b.c.d reaches the embedded IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """A link we refuse to fetch. `reason` is plain words a user can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchError(Exception):
    """A fetch that was allowed but failed.

    `kind` is one of "too_large", "timeout", "bad_status", "not_html", "connection",
    "redirect", "bad_encoding"; `status` is the HTTP status when there was one.
    """

    KINDS = frozenset({"too_large", "timeout", "bad_status", "not_html", "connection", "redirect", "bad_encoding"})

    def __init__(self, reason: str, kind: str = "connection", status: int | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown FetchError kind {kind!r}")
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status


def _parse_origin(origin: str) -> tuple[str, str, int]:
    """'http://127.0.0.1:8001' -> ('http', '127.0.0.1', 8001); anything more than an origin is an error."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"not an http(s) origin: {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an origin has no path, query or fragment: {origin!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    return scheme, parts.hostname.rstrip(".").lower(), port


def _format_origin(key: tuple[str, str, int]) -> str:
    scheme, host, port = key
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class FetchPolicy:
    """What one kind of link may point at, and how much we will read from it.

    allowed_hosts: exact lowercase host names (no wildcards); None or empty means any public host.
    dev_origins: origins (scheme://host:port) exempt from the https, port, public-address and
        allowed-host rules - only for the offline sandbox in demo and test settings.
    max_bytes: body limit for `fetch` (and the declared length for `open_stream`); None = no limit.
    timeout: seconds. For `fetch` a deadline over the whole exchange (connect, redirects,
        headers, body); for `open_stream` the budget up to the headers, then a per-read timeout.
    allowed_content_types: media types (without parameters) accepted; None = any.
    """

    allowed_hosts: frozenset[str] | None
    dev_origins: frozenset[str] = frozenset()
    max_bytes: int | None = 2_000_000
    timeout: float = 10.0
    max_redirects: int = 3
    allowed_content_types: tuple[str, ...] | None = None
    # (scheme, host, port) of the dev origins, derived once; not part of equality or hashing.
    _dev_keys: frozenset[tuple[str, str, int]] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        # Normalise whatever iterable the caller built from settings, so comparisons are exact.
        hosts = frozenset(h.strip().rstrip(".").lower() for h in (self.allowed_hosts or ()) if h and h.strip())
        keys = frozenset(_parse_origin(o) for o in (self.dev_origins or ()))
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "dev_origins", frozenset(_format_origin(k) for k in keys))
        object.__setattr__(self, "_dev_keys", keys)
        if self.allowed_content_types is not None:
            types = tuple(t.split(";", 1)[0].strip().lower() for t in self.allowed_content_types)
            object.__setattr__(self, "allowed_content_types", types)
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive or None")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL, after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes  # b"" when the body went to `stream_to`
    content_type: str | None  # the raw Content-Type header, parameters included


# --------------------------------------------------------------------------------------------
# Address rules
# --------------------------------------------------------------------------------------------


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 wrappers."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address reach that address: judge the inner one.
        if ip.ipv4_mapped is not None:
            return _is_public_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return _is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not _is_public_ip(ip.sixtofour):
            return False
        if ip.teredo is not None and not _is_public_ip(ip.teredo[1]):
            return False
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
    )


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id


def _parse_ipv4_number(part: str) -> int:
    if _HEX_PART.match(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # ValueError for 8s and 9s, as it should
    if part.isdigit() and part.isascii():
        return int(part)
    raise ValueError(part)


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parse a host the way browsers and inet_aton do (WHATWG URL IPv4 parser).

    `2130706433`, `0x7f000001`, `0177.0.0.1` and `127.1` all mean 127.0.0.1 to something on the
    way to the socket, so they must mean it here too. Returns None for an ordinary name; raises
    UnsafeURL for a host that looks numeric but is not a valid address.
    """
    parts = host.split(".")
    last = parts[-1]
    if not ((last.isdigit() and last.isascii()) or _HEX_PART.match(last)):
        return None
    invalid = UnsafeURL("That link's address is not valid.")
    if len(parts) > 4 or "" in parts:
        raise invalid
    try:
        numbers = [_parse_ipv4_number(p) for p in parts]
    except ValueError:
        raise invalid from None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise invalid
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _normalise_host(raw: str | None) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None]:
    """Return (ascii lowercase host, IP if the host is an IP literal)."""
    invalid = UnsafeURL("That link's address is not valid.")
    if not raw:
        raise invalid
    if ":" in raw:  # urlsplit only yields a colon for a bracketed IPv6 literal
        try:
            ip = _parse_ip(raw)
        except ValueError:
            raise invalid from None
        return str(ip), ip
    host = raw[:-1] if raw.endswith(".") else raw  # "share.descript.com." is the same host
    if not host or "%" in host:
        raise invalid
    if not host.isascii():
        try:
            import idna  # requests' own dependency; the same encoding requests would apply

            host = idna.encode(host, uts46=True).decode("ascii")
        except Exception:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise invalid from None
    host = host.lower()
    ip4 = _ipv4_literal(host)
    if ip4 is not None:
        return str(ip4), ip4
    if len(host) > 253 or not _HOST_LABELS.match(host):
        raise invalid
    return host, None


def redact_url(url: str | SplitResult) -> str:
    """scheme://host[:port]/path only: no user info, and no query string (it may be signed)."""
    try:
        parts = url if isinstance(url, SplitResult) else urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return f"{parts.scheme}://{host}{parts.path}"
    except ValueError:
        return "(an invalid link)"


def _hosts_phrase(hosts: Iterable[str]) -> str:
    names = sorted(hosts)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _resolve_public(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise UnsafeURL("That address cannot be found.") from None
    if not infos:
        raise UnsafeURL("That address cannot be found.")
    for info in infos:
        try:
            ip = _parse_ip(str(info[4][0]))
        except ValueError:
            raise UnsafeURL("That address cannot be found.") from None
        # Every answer must be public: the connection may use any of them.
        if not _is_public_ip(ip):
            raise UnsafeURL("That address is private.")


def check_url(url: str, policy: FetchPolicy, *, path_pattern: re.Pattern[str] | None = None) -> SplitResult:
    """Validate a link against `policy` without fetching it (DNS is the only network use).

    Returns the normalised parts (ascii lowercase host, default port dropped, fragment
    dropped): fetch that, not the original string, so the request goes where we checked.
    """
    if not isinstance(url, str):
        raise UnsafeURL("That is not a link.")
    url = url.strip()
    if not url:
        raise UnsafeURL("That is not a link.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL("That link is too long.")
    if _BAD_URL_CHARS.search(url):
        raise UnsafeURL("That link contains characters that are not allowed.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise UnsafeURL("Only https links are accepted.")
        if "@" in parts.netloc:  # user:pass@host, and share.descript.com@evil.example
            raise UnsafeURL("Links with a user name or password are not accepted.")
        try:
            port = parts.port
        except ValueError:
            raise UnsafeURL("That link's port is not valid.") from None
        host, ip = _normalise_host(parts.hostname)
    except UnsafeURL:
        raise
    except ValueError:  # urlsplit's own complaints, e.g. a malformed [IPv6] literal
        raise UnsafeURL("That link is not valid.") from None

    effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
    is_dev = (scheme, host, effective_port) in policy._dev_keys
    if not is_dev:
        if scheme != "https":
            raise UnsafeURL("Only https links are accepted.")
        if effective_port != 443:
            raise UnsafeURL("Only links on the standard https port are accepted.")
        if policy.allowed_hosts and host not in policy.allowed_hosts:
            raise UnsafeURL(f"That link is not on {_hosts_phrase(policy.allowed_hosts)}.")
        if ip is not None and not _is_public_ip(ip):
            raise UnsafeURL("That address is private.")
        if host == "localhost" or host.endswith(".localhost"):
            raise UnsafeURL("That address is private.")

    path = parts.path or "/"
    # fullmatch: a `$` in the caller's pattern would otherwise accept a trailing newline.
    if path_pattern is not None and not path_pattern.fullmatch(path):
        raise UnsafeURL("That link does not lead to a page we can use.")

    if not is_dev and ip is None:
        _resolve_public(host, effective_port)

    netloc = f"[{host}]" if ":" in host else host
    if effective_port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{effective_port}"
    return SplitResult(scheme, netloc, path, parts.query, "")


# --------------------------------------------------------------------------------------------
# Deadline: one budget over a whole exchange
# --------------------------------------------------------------------------------------------

_local = threading.local()


class _Deadline:
    """A total time budget that also covers reads which each return in time (slow drip).

    Socket timeouts are per operation, and http.client keeps reading until a buffer is full,
    so a server sending one byte a second is never "timed out". Instead a timer shuts down the
    sockets this exchange is using when the budget runs out; the blocked read then ends, and
    the caller sees `expired`. Sockets are attached by the guarded connection classes (via a
    thread-local) and detached when their connection goes back to the pool, so the timer can
    never touch a connection another request has picked up.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socks: dict[int, tuple[Any, list[socket.socket]]] = {}
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def attach(self, conn: Any, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shutdown(sock)
                return
            entry = self._socks.setdefault(id(conn), (conn, []))
            if sock not in entry[1]:
                entry[1].append(sock)
            conn._eid_deadline = self

    def detach(self, conn: Any) -> None:
        with self._lock:
            self._socks.pop(id(conn), None)
            if getattr(conn, "_eid_deadline", None) is self:
                conn._eid_deadline = None

    def _expire(self) -> None:
        # Shut down while holding the lock: a connection detached (returned to the pool)
        # before this point is never touched.
        with self._lock:
            self.expired = True
            for _conn, socks in self._socks.values():
                for sock in socks:
                    _shutdown(sock)

    def __enter__(self) -> _Deadline:
        self._previous = getattr(_local, "deadline", None)
        _local.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _local.deadline = self._previous
        with self._lock:
            for conn, _socks in self._socks.values():
                if getattr(conn, "_eid_deadline", None) is self:
                    conn._eid_deadline = None
            self._socks.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        # The plain socket method, also for an SSLSocket: it only acts on the file descriptor,
        # which is safe from another thread (SSLSocket.shutdown would also drop its SSL object).
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass  # already closed


def _current_deadline() -> _Deadline | None:
    return getattr(_local, "deadline", None)


# --------------------------------------------------------------------------------------------
# Connections that check whom they are talking to
# --------------------------------------------------------------------------------------------


def _check_peer(sock: socket.socket) -> None:
    try:
        peer = sock.getpeername()
        ip = _parse_ip(str(peer[0]))
    except (OSError, ValueError, IndexError):
        raise UnsafeURL("That address cannot be checked.") from None
    if not _is_public_ip(ip):
        raise UnsafeURL("That address is private.")


class _GuardedConnectionMixin:
    """Checks the peer right after connecting: DNS may have changed since check_url looked."""

    _eid_exempt = False  # set by the pool for a dev origin
    _eid_deadline: _Deadline | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        if not self._eid_exempt:
            try:
                _check_peer(sock)
            except BaseException:
                with contextlib.suppress(OSError):
                    sock.close()
                raise
        deadline = _current_deadline()
        if deadline is not None:
            deadline.attach(self, sock)  # TLS handshake and plain-http reads are covered from here
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _current_deadline()
        sock = getattr(self, "sock", None)
        if deadline is not None and sock is not None:
            deadline.attach(self, sock)  # a reused connection, or the TLS socket after the handshake
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedPoolMixin:
    _eid_exempt = False

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn._eid_exempt = self._eid_exempt
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            deadline = getattr(conn, "_eid_deadline", None)
            if deadline is not None:
                deadline.detach(conn)  # back in the pool: no longer ours to cut off
        super()._put_conn(conn)  # type: ignore[misc]


class _GuardedHTTPConnectionPool(_GuardedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(_GuardedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, exempt: frozenset[tuple[str, str, int]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._eid_exempt = exempt
        self.pool_classes_by_scheme = {"http": _GuardedHTTPConnectionPool, "https": _GuardedHTTPSConnectionPool}

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None) -> Any:
        pool = super()._new_pool(scheme, host, port, request_context)
        key = (scheme.lower(), host.strip("[]").rstrip(".").lower(), port)
        pool._eid_exempt = key in self._eid_exempt
        return pool


class SafeAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse non-public peers.

    Only the dev origins of `policy` are exempt (matched on scheme, host and port). Proxies are
    refused: through a proxy the peer we could check would be the proxy, not the target.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "_eid_exempt"]

    def __init__(self, policy: FetchPolicy | None = None, **kwargs: Any) -> None:
        self._eid_exempt = policy._dev_keys if policy is not None else frozenset()
        kwargs.setdefault("max_retries", 0)  # a retry would be a second, unplanned request
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            self._eid_exempt, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise UnsafeURL("Fetching through a proxy is not supported.")

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Mapping[str, str] | None = None) -> requests.Response:
        if proxies and select_proxy(request.url or "", dict(proxies)):
            raise UnsafeURL("Fetching through a proxy is not supported.")
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


def make_session(policy: FetchPolicy | None = None) -> requests.Session:
    """A session that only talks to public peers (plus `policy`'s dev origins).

    No environment proxies or .netrc (trust_env off) and no cookie jar: one user's share page
    must not set cookies that a later request for someone else would send.
    """
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = USER_AGENT
    adapter = SafeAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def session_for(policy: FetchPolicy) -> requests.Session:
    """The cached session for `policy` (per thread; sessions keyed by the dev origins only,
    since that is all the adapter needs - connection pools are reused across fetches)."""
    cache: dict[frozenset[tuple[str, str, int]], requests.Session] | None = getattr(_local, "sessions", None)
    if cache is None:
        cache = _local.sessions = {}
    session = cache.get(policy._dev_keys)
    if session is None:
        session = cache[policy._dev_keys] = make_session(policy)
    return session


# --------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------


def _require_safe(session: requests.Session, url: str) -> None:
    if not isinstance(session.get_adapter(url), SafeAdapter):
        raise TypeError("netsafe needs a session from make_session(): its adapter checks the connected address")


def _same_origin(a: SplitResult, b: SplitResult) -> bool:
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _map_error(exc: Exception, where: SplitResult, deadline: _Deadline | None) -> FetchError:
    """Turn a requests/urllib3 error into plain words, without the URL's query string."""
    if deadline is not None and (deadline.expired or deadline.remaining() <= 0):
        return FetchError(f"{redact_url(where)} took too long to answer.", kind="timeout")
    if isinstance(exc, requests.exceptions.ContentDecodingError) or isinstance(exc, urllib3.exceptions.DecodeError):
        return FetchError(f"{redact_url(where)} sent content that could not be decoded.", kind="bad_encoding")
    text = repr(exc)
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) or (
        "ReadTimeoutError" in text or "timed out" in text
    ):
        return FetchError(f"{redact_url(where)} took too long to answer.", kind="timeout")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(f"The secure connection to {redact_url(where)} failed.", kind="connection")
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
    deadline: _Deadline | None,
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

    The whole exchange - connecting, each redirect, headers and body - must finish within
    `policy.timeout` seconds, and the body may not exceed `policy.max_bytes` (None: no limit).
    With `stream_to`, body chunks are handed to it as they arrive (still within the deadline
    and the byte limit) and the result's `body` is b"". A status outside 2xx raises
    FetchError(kind="bad_status", status=...).
    """
    start = check_url(url, policy, path_pattern=path_pattern)
    session = session or session_for(policy)
    with _Deadline(policy.timeout) as deadline:

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
    total budget up to the response headers, then a per-read timeout while the caller reads.
    Raises FetchError for a status outside 2xx, a refused content type, or a declared length
    above `policy.max_bytes`; counting the bytes actually read is the caller's job (see
    `iter_chunks`). Transport errors raised while the caller reads inside the `with` block are
    turned into FetchError too.
    """
    start = check_url(url, policy, path_pattern=path_pattern)
    session = session or session_for(policy)
    with _Deadline(policy.timeout) as deadline:

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
