"""Deadline: one budget over a whole exchange.

The deadline in force is kept in a thread-local, so the guarded connections in `transport`
can attach their sockets to it without it being threaded through requests and urllib3.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

_local = threading.local()


class Deadline:
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

    def __enter__(self) -> Deadline:
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


def current_deadline() -> Deadline | None:
    """The deadline of the exchange running on this thread, if any."""
    return getattr(_local, "deadline", None)
