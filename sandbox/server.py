"""Serve the sandbox over real HTTP on a background thread (for tests) or the foreground."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import SandboxApp, SandboxConfig

log = logging.getLogger("sandbox.http")


class _QuietHandler(WSGIRequestHandler):
    """Request handler that logs through `sandbox.http` (or not at all) instead of werkzeug's."""

    protocol_version = "HTTP/1.1"  # chunked streaming for bodies without a length
    log_requests = False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.log_requests:
            # Method, path and status only: headers (Authorization!) are never logged.
            log.info("%s %s %s %s", self.address_string(), self.command, self.path, code)

    def log_error(self, format: str, *args: object) -> None:
        log.debug("http: " + format, *args)


class _LoggingHandler(_QuietHandler):
    log_requests = True


class SandboxServer:
    """A threaded werkzeug server for one `SandboxApp`; usable as a context manager."""

    def __init__(
        self,
        config: SandboxConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        log_requests: bool = False,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.app = SandboxApp(config)
        self._handler = _LoggingHandler if log_requests else _QuietHandler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:54321."""
        if self._server is None:
            raise RuntimeError("server is not started")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._server.server_port}"

    def bind(self) -> None:
        """Open the listening socket (port known afterwards) without serving yet."""
        if self._server is not None:
            return
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=self._handler
        )
        self.port = self._server.server_port
        if not self.config.public_url:
            # Every absolute URL the sandbox emits is built from this.
            self.config.public_url = self.url

    def start(self) -> SandboxServer:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until `stop()` is called from elsewhere."""
        self.bind()
        assert self._server is not None
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        self.app.stop()  # wake requests sleeping in faults
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
