"""Waiting on Descript without holding what other users need.

Under ASGI each request runs in its own thread, so a request that waits on Descript holds no
server thread others need; what it can still hold is a database connection. With a connection
pool (PostgreSQL, `"pool"` in OPTIONS), `hand_back_connections()` returns this thread's
connections to the pool before the wait; the next query after it takes one again (a pool
checkout, not a new connection). Without a pool (SQLite: one file, no server) nothing is done:
reopening would only cost time.
"""

from __future__ import annotations

from django.db import connections


def hand_back_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if getattr(conn, "pool", None) is not None and not conn.in_atomic_block:
            conn.close()
