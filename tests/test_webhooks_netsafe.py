"""netsafe's allowed networks (FetchPolicy.allowed_networks), the operator's way to let webhooks
reach a receiver on a private range: real sockets, the system resolver stood in for names only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eid import netsafe
from eid.netsafe import FetchPolicy, UnsafeURL, check_url, fetch

LOOPBACK = frozenset({"127.0.0.0/8"})


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.hits += 1  # type: ignore[attr-defined]
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hello() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _answers(monkeypatch, *addresses: str) -> None:
    """Names resolve to `addresses` (literals still resolve as themselves)."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host.replace(".", "").isdigit():
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_without_allowed_networks_a_private_receiver_is_refused_before_connecting(hello):
    url = f"http://127.0.0.1:{hello.server_address[1]}/hook"
    with pytest.raises(UnsafeURL):
        fetch(url, FetchPolicy(allowed_hosts=None))
    with pytest.raises(UnsafeURL):
        fetch("https://127.0.0.1/hook", FetchPolicy(allowed_hosts=None))
    assert hello.hits == 0


def test_an_allowed_network_may_be_reached_over_http_on_any_port(hello):
    url = f"http://127.0.0.1:{hello.server_address[1]}/hook"
    result = fetch(url, FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK))
    assert (result.status, result.body) == (200, b"hello")
    assert hello.hits == 1


def test_other_private_ranges_stay_refused(hello):
    policy = FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK)
    for url in ("http://10.0.0.1:8080/", "https://169.254.169.254/", "https://192.168.1.1/", "https://[::1]/",
                "http://93.184.216.34/"):  # public, but over http: still the share-page rules
        with pytest.raises(UnsafeURL):
            check_url(url, policy)


def test_a_name_inside_the_allowed_network_may_use_http(hello, monkeypatch):
    _answers(monkeypatch, "127.0.0.1")
    policy = FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK)
    result = fetch(f"http://hooks.internal:{hello.server_address[1]}/x", policy)
    assert result.status == 200


def test_a_name_half_inside_may_not_use_http(monkeypatch):
    _answers(monkeypatch, "127.0.0.1", "93.184.216.34")
    policy = FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK)
    with pytest.raises(UnsafeURL, match="https"):
        check_url("http://hooks.example:8080/x", policy)
    check_url("https://hooks.example/x", policy)  # public or inside: https on 443 passes


def test_a_name_resolving_to_another_private_range_is_refused(monkeypatch):
    _answers(monkeypatch, "127.0.0.1", "10.1.2.3")
    with pytest.raises(UnsafeURL, match="private"):
        check_url("https://hooks.example/x", FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK))


def test_the_connected_peer_is_checked_against_the_allowed_networks(hello):
    """The transport itself: a session for a policy without the network refuses the socket."""
    port = hello.server_address[1]
    allowed = netsafe.make_session(FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK))
    assert allowed.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    other = netsafe.make_session(FetchPolicy(allowed_hosts=None, allowed_networks=frozenset({"10.0.0.0/8"})))
    with pytest.raises(UnsafeURL):
        other.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert hello.hits == 1


def test_policies_differing_in_networks_get_their_own_sessions():
    plain = FetchPolicy(allowed_hosts=None)
    wide = FetchPolicy(allowed_hosts=None, allowed_networks=frozenset({"127.0.0.1/8"}))
    assert wide.allowed_networks == frozenset({"127.0.0.0/8"})  # normalised
    assert netsafe.session_for(plain) is not netsafe.session_for(wide)
    assert netsafe.session_for(wide) is netsafe.session_for(FetchPolicy(allowed_hosts=None, allowed_networks=LOOPBACK))
    with pytest.raises(ValueError):
        FetchPolicy(allowed_hosts=None, allowed_networks=frozenset({"not-a-network"}))
