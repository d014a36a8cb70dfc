"""A local HTTP receiver for tests: records every POST and answers from a script (then 200).

It knows nothing of eid: webhooks out are verified with the `standardwebhooks` package's own
`Webhook.verify` (`Received.verify`), and the sandbox's job callbacks are read as JSON
(`Receiver.payloads`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

@dataclass
class Received:
    at: float  # time.time() when the request was read
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 0

    def verify(self, secret: str):
        """The receiver's check: Standard Webhooks' own verifier, raising on a bad signature."""
        return Webhook(secret).verify(self.body, self.headers)

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers from a script (then 200)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                    record = Received(time.time(), self.path, dict(self.headers.items()), body)
                if reply.delay:
                    time.sleep(reply.delay)
                answer = b"ok"
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                record.answered = reply.status
                with receiver.arrived:
                    receiver.received.append(record)
                    receiver.arrived.notify_all()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def payloads(self) -> list[Any]:
        """Every body received so far, as JSON."""
        with self.lock:
            return [json.loads(r.body) for r in self.received]

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self.received)} of {count} deliveries")
                self.arrived.wait(left)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
