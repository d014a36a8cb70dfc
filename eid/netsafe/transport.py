"""Connections that check whom they are talking to.

DNS can answer differently the second time (rebinding), so checking the link is not enough:
the urllib3 connection classes used by `SafeAdapter` resolve the name themselves within the
fetch's deadline, refuse it before connecting when any answer is not public, and look at the
address the socket actually connected to as well. Sessions from `make_session` use only that
adapter, refuse proxies, and keep no cookies.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util.connection import allowed_gai_family

from .addresses import AddrInfo, IPNetwork, LookupTimeout, getaddrinfo_within, in_networks, is_public_ip, parse_ip
from .deadline import Deadline, current_deadline
from .errors import UnsafeURL
from .policy import FetchPolicy

USER_AGENT = "PartnerBackend/1.0 (+Edit in Descript)"

# Per-thread session cache for `session_for`.
_local = threading.local()


def _check_peer(sock: socket.socket, networks: tuple[IPNetwork, ...] = ()) -> None:
    try:
        peer = sock.getpeername()
        ip = parse_ip(str(peer[0]))
    except (OSError, ValueError, IndexError):
        raise UnsafeURL("That address cannot be checked.") from None
    if not is_public_ip(ip) and not in_networks(ip, networks):
        raise UnsafeURL("That address is private.")


def _outside(infos: list[AddrInfo], networks: tuple[IPNetwork, ...]) -> list[AddrInfo]:
    """The answers not inside a policy's allowed networks (those pass as public ones do)."""
    if not networks:
        return infos

    def inside(info: AddrInfo) -> bool:
        try:
            return in_networks(parse_ip(str(info[4][0])), networks)
        except (ValueError, IndexError):
            return False  # left for _check_answers to refuse

    return [info for info in infos if not inside(info)]


def _check_answers(infos: list[AddrInfo]) -> None:
    """Every address the name resolved to must be public, before any of them is connected to.

    Judging the answers first (and not only the connected peer) means a private address is
    refused the same way whether or not something listens there: no port-scan oracle.
    """
    for info in infos:
        try:
            ip = parse_ip(str(info[4][0]))
        except (ValueError, IndexError):
            raise UnsafeURL("That address cannot be checked.") from None
        if not is_public_ip(ip):
            raise UnsafeURL("That address is private.")


class _GuardedConnectionMixin:
    """Resolves within the deadline, refuses private answers, and checks the connected peer.

    urllib3's own `_new_conn` resolves the name again with a getaddrinfo that has no timeout,
    and connects to whatever it returns; this one resolves through `getaddrinfo_within` (so the
    look-up counts against the fetch's deadline), judges every answer before connecting (DNS may
    have changed since check_url looked), and checks the peer once more after connecting.
    """

    _eid_exempt = False  # set by the pool for a dev origin
    _eid_networks: tuple[IPNetwork, ...] = ()  # set by the pool: the policy's allowed networks
    _eid_deadline: Deadline | None = None

    def _new_conn(self) -> socket.socket:
        deadline = current_deadline()
        sock = self._eid_connect(deadline)
        if not self._eid_exempt:
            try:
                _check_peer(sock, self._eid_networks)
            except BaseException:
                with contextlib.suppress(OSError):
                    sock.close()
                raise
        if deadline is not None:
            deadline.attach(self, sock)  # TLS handshake and plain-http reads are covered from here
        return sock

    def _eid_budget(self, deadline: Deadline | None) -> float | None:
        """Seconds left to connect: the connect timeout, cut to what the deadline leaves."""
        timeout = getattr(self, "timeout", None)
        limits = [float(timeout)] if isinstance(timeout, (int, float)) else []
        if deadline is not None:
            limits.append(deadline.remaining())
        return min(limits) if limits else None

    def _eid_connect(self, deadline: Deadline | None) -> socket.socket:
        # What urllib3.util.connection.create_connection does, with a bounded look-up and the
        # answers checked in between.
        conn: Any = self
        host = str(conn._dns_host).strip("[]")
        budget = self._eid_budget(deadline)
        if budget is not None and budget <= 0:
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.")
        try:
            infos = getaddrinfo_within(host, conn.port, budget, allowed_gai_family())
        except LookupTimeout:
            raise ConnectTimeoutError(conn, f"Looking up {conn.host} timed out.") from None
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        except (OSError, UnicodeError) as exc:
            raise NewConnectionError(conn, f"Failed to resolve {conn.host}: {exc}") from exc
        if not self._eid_exempt:
            _check_answers(_outside(infos, self._eid_networks))
        error: OSError | None = None
        for family, kind, proto, _canonical, address in infos:
            sock = None
            try:
                sock = socket.socket(family, kind, proto)
                for option in conn.socket_options or ():
                    sock.setsockopt(*option)
                timeout = conn.timeout
                budget = self._eid_budget(deadline)
                if budget is not None:
                    if budget <= 0:
                        raise TimeoutError("timed out")
                    sock.settimeout(budget)
                elif timeout is None or isinstance(timeout, (int, float)):
                    sock.settimeout(timeout)
                if conn.source_address:
                    sock.bind(conn.source_address)
                sock.connect(address)
                if timeout is None or isinstance(timeout, (int, float)):
                    sock.settimeout(timeout)  # as urllib3 leaves it: the connect timeout
                sys.audit("http.client.connect", conn, conn.host, conn.port)
                return sock
            except OSError as exc:
                error = exc
                if sock is not None:
                    sock.close()
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.") from error
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error or 'no address'}") from error

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = current_deadline()
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
    _eid_networks: tuple[IPNetwork, ...] = ()

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn._eid_exempt = self._eid_exempt
        conn._eid_networks = self._eid_networks
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
    def __init__(self, exempt: frozenset[tuple[str, str, int]], *args: Any,
                 networks: tuple[IPNetwork, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._eid_exempt = exempt
        self._eid_networks = networks
        self.pool_classes_by_scheme = {"http": _GuardedHTTPConnectionPool, "https": _GuardedHTTPSConnectionPool}

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None) -> Any:
        pool = super()._new_pool(scheme, host, port, request_context)
        key = (scheme.lower(), host.strip("[]").rstrip(".").lower(), port)
        setattr(pool, "_eid_exempt", key in self._eid_exempt)  # read by _GuardedPoolMixin
        setattr(pool, "_eid_networks", self._eid_networks)
        return pool


class SafeAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse non-public peers.

    Only the dev origins of `policy` are exempt (matched on scheme, host and port); peers inside
    its allowed networks pass as public ones do. Proxies are refused: through a proxy the peer
    we could check would be the proxy, not the target.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "_eid_exempt", "_eid_networks"]

    def __init__(self, policy: FetchPolicy | None = None, **kwargs: Any) -> None:
        self._eid_exempt = policy._dev_keys if policy is not None else frozenset()
        self._eid_networks = policy._networks if policy is not None else ()
        kwargs.setdefault("max_retries", 0)  # a retry would be a second, unplanned request
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            self._eid_exempt, num_pools=connections, maxsize=maxsize, block=block, networks=self._eid_networks,
            **pool_kwargs
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
    """The cached session for `policy` (per thread; sessions keyed by the dev origins and the
    allowed networks only, since that is all the adapter needs - connection pools are reused
    across fetches)."""
    cache: dict[Any, requests.Session] | None = getattr(_local, "sessions", None)
    if cache is None:
        cache = _local.sessions = {}
    key = (policy._dev_keys, policy._networks)
    session = cache.get(key)
    if session is None:
        session = cache[key] = make_session(policy)
    return session
