"""The one free-port picker, for everything that starts servers on loopback: the test settings and
the tests (through tests/support.py), the benchmarks and anything else in demo/.

It lives in demo/ because every user may import demo (the tests and the benchmarks already do),
while demo must not import the tests. The sandbox takes its port as an argument and imports
nothing from here. The production image has no demo/, and the site itself never needs a free port.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (chosen by the OS; bind it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
