"""Fault rules: checking them, picking the ones a request matches, and answering with them.

A rule (see README) matches by path prefix (and `path_regex`, a full match) and method; every matching rule applies
together (later ones win) and uses up one of its `times`. Sleeping (latency, hangs,
throttling) waits on the app's stop event, so stopping the server wakes it.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .pages import error_body, json_response

if TYPE_CHECKING:
    from .app import SandboxApp

FAULT_KEYS = {
    "path", "method", "times", "latency_ms", "status", "body", "content_type",
    "headers", "hang_seconds", "body_size", "throttle_bps", "redirect_to", "body_b64",
    "path_regex", "hold_after_seconds", "drop_after",
}


def normalize_fault(rule: dict[str, Any]) -> dict[str, Any]:
    """Check a rule and return it in canonical form; ValueError says what is wrong."""
    unknown = set(rule) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {"path": rule.get("path", "/")}
    if not isinstance(out["path"], str) or not out["path"].startswith("/"):
        raise ValueError("path must be a string starting with /")

    def number(key: str, minimum: float, integer: bool = False) -> None:
        if rule.get(key) is None:
            return
        v = rule[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise ValueError(f"{key} must be {'an integer' if integer else 'a number'}")
        if v < minimum:
            raise ValueError(f"{key} must be >= {minimum}")
        out[key] = v

    if rule.get("path_regex") is not None:
        # e.g. "/v1/jobs/[^/]+" with method GET: every job's status, not the list or the submits.
        if not isinstance(rule["path_regex"], str):
            raise ValueError("path_regex must be a string")
        try:
            re.compile(rule["path_regex"])
        except re.error as exc:
            raise ValueError(f"path_regex is not a regular expression: {exc}") from None
        out["path_regex"] = rule["path_regex"]
    if rule.get("drop_after") is not None:
        if not isinstance(rule["drop_after"], bool):
            raise ValueError("drop_after must be true or false")
        out["drop_after"] = rule["drop_after"]
    if rule.get("method") is not None:
        if not isinstance(rule["method"], str):
            raise ValueError("method must be a string")
        out["method"] = rule["method"].upper()
    number("times", 1, integer=True)
    number("latency_ms", 0)
    number("status", 100, integer=True)
    if "status" in out and out["status"] > 599:
        raise ValueError("status must be <= 599")
    number("hang_seconds", 0)
    number("hold_after_seconds", 0)
    number("body_size", 0, integer=True)
    number("throttle_bps", 1, integer=True)
    for key in ("body", "content_type", "redirect_to"):
        if rule.get(key) is not None:
            if not isinstance(rule[key], str):
                raise ValueError(f"{key} must be a string")
            out[key] = rule[key]
    if rule.get("body_b64") is not None:
        # Raw bytes (e.g. invalid UTF-8) that a JSON control request cannot carry as text.
        try:
            out["body"] = base64.b64decode(rule["body_b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError("body_b64 must be base64") from None
    if rule.get("headers") is not None:
        hdrs = rule["headers"]
        if not isinstance(hdrs, dict) or not all(isinstance(k, str) for k in hdrs):
            raise ValueError("headers must be an object of strings")
        out["headers"] = {k: str(v) for k, v in hdrs.items()}
    return out


def take_fault(app: SandboxApp, method: str, path: str) -> dict[str, Any] | None:
    """Merge every matching rule (later rules win) and use up their `times`."""
    merged: dict[str, Any] = {}
    with app._lock:
        matched = False
        for rule in list(app._faults):
            if not path.startswith(rule["path"]):
                continue
            if rule.get("path_regex") and not re.fullmatch(rule["path_regex"], path):
                continue
            if rule.get("method") and rule["method"] != method:
                continue
            matched = True
            headers = {**merged.get("headers", {}), **rule.get("headers", {})}
            merged.update({k: v for k, v in rule.items() if k not in ("id", "times", "path", "method", "path_regex")})
            if headers:
                merged["headers"] = headers
            if rule.get("times") is not None:
                rule["times"] -= 1
                if rule["times"] <= 0:
                    app._faults.remove(rule)
    return merged if matched else None


def answer_with_fault(app: SandboxApp, request: Request, fault: dict[str, Any]) -> Response:
    """Answer `request` as the merged `fault` says (routing it normally for latency/throttle only)."""
    if fault.get("latency_ms"):
        sleep(app, fault["latency_ms"] / 1000.0)
    if fault.get("hang_seconds") is not None:
        return hang(app, request, fault["hang_seconds"])
    if fault.get("hold_after_seconds") is not None or fault.get("drop_after"):
        # The request takes effect (a job is created), and only then is the answer late or lost.
        response = app._route(request)
        sleep(app, fault.get("hold_after_seconds") or 0.0)
        if fault.get("drop_after"):
            return hang(app, request, 0.0)
        return response
    if fault.get("redirect_to") is not None:
        status = fault.get("status", 302)
        response = Response(status=status if 300 <= status < 400 else 302)
        response.headers["Location"] = fault["redirect_to"]
    elif fault.get("body_size") is not None:
        size = fault["body_size"]
        response = Response(
            _filler(size),
            status=fault.get("status", 200),
            content_type=fault.get("content_type", "text/html; charset=utf-8"),
            direct_passthrough=True,
        )
        response.headers["Content-Length"] = str(size)
    elif fault.get("status") is not None:
        status = fault["status"]
        if fault.get("body") is not None:
            response = Response(
                fault["body"], status=status,
                content_type=fault.get("content_type", "text/plain; charset=utf-8"),
            )
        else:
            response = json_response(status, error_body(status))
            if fault.get("content_type"):
                response.headers["Content-Type"] = fault["content_type"]
        if status == 429:
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Consumed"] = "1000"
    else:
        response = app._route(request)  # latency/throttle only: handle normally

    for key, value in fault.get("headers", {}).items():
        response.headers[key] = value
    if fault.get("throttle_bps"):
        response.response = _throttled(
            response.iter_encoded(), fault["throttle_bps"], app._stopping
        )
        response.direct_passthrough = True
    return response


def sleep(app: SandboxApp, seconds: float) -> None:
    """Wait `seconds`, or less if the server is stopping."""
    app._stopping.wait(seconds)


def hang(app: SandboxApp, request: Request, seconds: float) -> Response:
    """Say nothing for `seconds`, then drop the connection without an answer."""
    sleep(app, seconds)
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # If the socket is gone the server's write fails quietly (a dropped connection).
    return Response(b"", status=504, headers={"Connection": "close"})


def _throttled(chunks: Iterable[bytes], bps: int, stop: threading.Event) -> Iterator[bytes]:
    """Re-emit `chunks` in small pieces at no more than `bps` bytes per second."""
    piece = max(256, min(16384, bps // 20))  # ~20 writes a second: smooth, not chatty
    started = time.monotonic()
    sent = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for i in range(0, len(view), piece):
                delay = started + sent / bps - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return  # server is stopping
                part = bytes(view[i : i + piece])
                yield part
                sent += len(part)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()


def _filler(size: int) -> Iterator[bytes]:
    block = (b"<!-- sandbox filler -->\n" * 2731)[: 64 * 1024]
    left = size
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n
