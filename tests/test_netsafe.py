"""eid.netsafe against real sockets: local HTTP servers in threads, no mocked transport.

The local servers are dev origins of the policy under test (that is what the sandbox is);
everything else must be refused before a byte is sent, which the listeners here can see.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from eid import netsafe
from eid.netsafe import FetchError, FetchPolicy, UnsafeURL, check_url, fetch, open_stream
from eid.sharepage import SHARE_PATH

SHARE_HOSTS = frozenset({"share.descript.com"})
PUBLIC_IP = "93.184.216.34"


# --------------------------------------------------------------------------------------------
# Local peers
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: LocalServer = self.server  # type: ignore[assignment]
        server.requests.append((self.path, dict(self.headers)))
        route = server.routes.get(urlsplit(self.path).path)
        if route is None:
            send(self, 404, b"not here", "text/plain")
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            server.aborted.set()  # the client hung up on us, as it should for oversized bodies

    def log_message(self, *args: object) -> None:
        pass


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still dripping must not hold up teardown

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.aborted = threading.Event()
        self.sent = 0
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"
        self.port = self.server_address[1]

    def url(self, path: str) -> str:
        return self.origin + path


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "text/html; charset=utf-8",
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect_to(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda h: send(h, status, b"", headers={"Location": location})


def page(body: bytes = b"<html><head><title>ok</title></head></html>", ctype: str = "text/html; charset=utf-8"):
    return lambda h: send(h, 200, body, ctype)


@pytest.fixture
def servers() -> Iterator[Callable[[], LocalServer]]:
    started: list[LocalServer] = []

    def start() -> LocalServer:
        server = LocalServer()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(servers) -> LocalServer:
    return servers()


class Listener:
    """A bare TCP listener: counts connections and the bytes any client sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.settimeout(0.5)
            try:
                while data := conn.recv(4096):
                    self.received += data
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def dev_policy(*servers: LocalServer, **kwargs) -> FetchPolicy:
    kwargs.setdefault("allowed_hosts", SHARE_HOSTS)
    kwargs.setdefault("timeout", 5.0)
    return FetchPolicy(dev_origins=frozenset(s.origin for s in servers), **kwargs)


@pytest.fixture
def public_dns(monkeypatch) -> list[str]:
    """Every name resolves to a public address (the sandbox has no outside DNS). Records look-ups,
    so a test can show a refusal came from the rules and not from DNS."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
            return real(host, port, *args, **kwargs)  # a literal (a local server): no DNS involved
        except ValueError:
            pass
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port or 443))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return looked_up


# --------------------------------------------------------------------------------------------
# check_url: refused without fetching
# --------------------------------------------------------------------------------------------

REFUSED = [
    "http://share.descript.com/view/JNWta1T8TKX",
    "ftp://share.descript.com/view/JNWta1T8TKX",
    "javascript:alert(1)",
    "https://127.0.0.1/view/x",
    "https://localhost/view/x",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/view/x",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://0/",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/",
    "https://192.168.1.1/",
    "https://share.descript.com@evil.example/view/x",
    "https://user:pw@share.descript.com/view/x",
    "https://share.descript.com\\@evil.example/view/x",
    "https://share.descript.com:8443/view/x",
    "https://share.descript.com:80/view/x",
    "https://evil.example/view/x",
    "https://share.descript.com.evil.example/view/x",
    "https://share.descript.com/embed/x",
    "https://share.descript.com/admin",
    "https://share.descript.com/view/../admin",
    "https://share.descript.com/view/a%2F..%2Fadmin",
    "https://share.descript.com/view/" + "a" * 65,
    "https://share.descript.com/view/x\r\nX-Injected: 1",
    "https://share.descript.com/view/x\n/",
    "https://share.descript.com/view/ x",
    "https:///view/x",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_share_links_refused_by_the_rules_alone(url, public_dns):
    with pytest.raises(UnsafeURL) as err:
        check_url(url, FetchPolicy(allowed_hosts=SHARE_HOSTS), path_pattern=SHARE_PATH)
    assert err.value.reason and err.value.reason.endswith(".")
    # Even with DNS answering "public" for every name, these never needed a look-up.
    assert public_dns == []


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/view/x",
    "https://localhost/view/x",
    "https://foo.localhost/view/x",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::]/",
    "https://[fe80::1]/",
    "https://[fd00::1]/",
    "https://[64:ff9b::7f00:1]/",  # NAT64 wrapping of 127.0.0.1
    "https://[2002:7f00:1::]/",  # 6to4 wrapping of 127.0.0.1
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://0.0.0.0/",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/",
    "https://10.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://224.0.0.1/",
    "https://255.255.255.255/",
])
def test_private_literals_refused_even_when_any_host_is_allowed(url, public_dns):
    with pytest.raises(UnsafeURL) as err:
        check_url(url, FetchPolicy(allowed_hosts=None))
    assert err.value.reason == "That address is private."
    assert public_dns == []


# --------------------------------------------------------------------------------------------
# The address table: explicit ranges, not the running Python's idea of "global"
# --------------------------------------------------------------------------------------------

# Written out here independently of eid/netsafe/addresses.py, so dropping a row there fails here.
REFUSED_RANGES = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
]


def _first_and_last(ranges) -> list:
    nets = [ipaddress.ip_network(r) for r in ranges]
    return [pytest.param(str(net[i]), id=f"{net}-{name}") for net in nets for i, name in ((0, "first"), (-1, "last"))]


@pytest.mark.parametrize("address", ["192.0.0.192", "192.0.0.8", "fec0::1"])
def test_addresses_this_python_calls_global_are_refused(address, public_dns, monkeypatch):
    # Python 3.11.7's ipaddress.is_global says True for all three.
    assert not netsafe.addresses.is_public_ip(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURL) as err:
        check_url(f"https://{host}/x", FetchPolicy(allowed_hosts=None))
    assert err.value.reason == "That address is private."
    with pytest.raises(UnsafeURL) as err:  # and as a DNS answer
        _resolve_with_answers(monkeypatch, address)
    assert err.value.reason == "That address is private."


@pytest.mark.parametrize("address", _first_and_last(REFUSED_RANGES))
def test_every_refused_range_from_first_to_last_address(address):
    assert not netsafe.addresses.is_public_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", _first_and_last(str(net) for net, _ in netsafe.addresses.REFUSED_RANGES))
def test_the_modules_own_table_is_refused_end_to_end(address):
    assert not netsafe.addresses.is_public_ip(ipaddress.ip_address(address))


def test_the_table_says_why_for_each_range():
    assert all(why.strip() for _, why in netsafe.addresses.REFUSED_RANGES)
    listed = {str(net) for net, _ in netsafe.addresses.REFUSED_RANGES}
    listed |= {str(net) for net, _ in netsafe.addresses.EMBEDDED_IPV4_RANGES}
    assert listed == {str(ipaddress.ip_network(r)) for r in REFUSED_RANGES}


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", PUBLIC_IP, "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
    "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.31.196.1", "192.175.48.1", "223.255.255.254",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "2001:200::1", "2a00:1450:4001::1",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",  # wrappers of a public IPv4 address
])
def test_public_addresses_pass(address):
    assert netsafe.addresses.is_public_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:c0a8:101::1", "2002:a9fe:a9fe::",
                                     "::7f00:1", "4000::1", "100:0:0:1::1"])
def test_wrapped_private_and_unallocated_ipv6_are_refused(address):
    assert not netsafe.addresses.is_public_ip(ipaddress.ip_address(address))


def _resolve_with_answers(monkeypatch, *addresses: str) -> None:
    """resolve_public with DNS answering `addresses`."""
    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    netsafe._resolve_public("share.descript.com", 443)


@pytest.mark.parametrize("url", ["https://1.2.3.4.5/", "https://256.0.0.1/", "https://0x100000000/", "https://09.0.0.1/",
                                 "https://example.123/", "https://[::1/", "https://exa mple.com/"])
def test_malformed_hosts_refused(url, public_dns):
    with pytest.raises(UnsafeURL):
        check_url(url, FetchPolicy(allowed_hosts=None))
    assert public_dns == []


def test_refusal_reasons_are_plain_words(public_dns):
    policy = FetchPolicy(allowed_hosts=SHARE_HOSTS)
    cases = {
        "http://share.descript.com/view/x": "Only https links are accepted.",
        "https://evil.example/view/x?sig=SECRET": "That link is not on share.descript.com.",
        "https://share.descript.com:8443/view/x": "Only links on the standard https port are accepted.",
        "https://user:pw@share.descript.com/view/x": "Links with a user name or password are not accepted.",
        "https://share.descript.com/view/" + "x" * 2100: "That link is too long.",
    }
    for url, reason in cases.items():
        with pytest.raises(UnsafeURL) as err:
            check_url(url, policy)
        assert err.value.reason == reason
        assert str(err.value) == reason
    with pytest.raises(UnsafeURL) as err:
        check_url("https://a.example/x", FetchPolicy(allowed_hosts={"a.test", "b.test"}))
    assert err.value.reason == "That link is not on a.test or b.test."


def test_name_resolving_to_localhost_is_private():
    # Real resolution of "localhost" through /etc/hosts, no patching.
    with pytest.raises(UnsafeURL) as err:
        netsafe._resolve_public("localhost", 443)
    assert err.value.reason == "That address is private."


@pytest.mark.parametrize("answers", [
    ["10.0.0.5"],
    ["127.0.0.1"],
    [PUBLIC_IP, "192.168.0.10"],  # one private answer is enough: the connection may pick it
    ["::1"],
    ["::ffff:10.0.0.1"],
    ["169.254.169.254"],
])
def test_name_resolving_to_a_private_address_is_refused(monkeypatch, answers):
    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UnsafeURL) as err:
        check_url("https://share.descript.com/view/JNWta1T8TKX", FetchPolicy(allowed_hosts=SHARE_HOSTS),
                  path_pattern=SHARE_PATH)
    assert err.value.reason == "That address is private."


def test_name_that_does_not_resolve(monkeypatch):
    def fake(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UnsafeURL) as err:
        check_url("https://share.descript.com/view/JNWta1T8TKX", FetchPolicy(allowed_hosts=SHARE_HOSTS))
    assert err.value.reason == "That address cannot be found."


# --------------------------------------------------------------------------------------------
# Name resolution counts against the deadline
# --------------------------------------------------------------------------------------------


@pytest.fixture
def slow_dns(monkeypatch):
    """Names (not IP literals) resolve to a public address only after `slow_dns.delay` seconds, or
    from the `slow_dns.fast` first look-ups on, at once. Sleeping threads are woken at teardown."""
    real = socket.getaddrinfo
    release = threading.Event()

    class Slow:
        delay = 5.0
        fast = 0
        calls = 0

    def fake(host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
            return real(host, port, *args, **kwargs)
        except ValueError:
            pass
        Slow.calls += 1
        if Slow.calls > Slow.fast:
            release.wait(Slow.delay)  # the system resolver, hanging
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield Slow
    release.set()


@pytest.mark.parametrize("how", ["fetch", "open_stream"])
def test_a_hanging_look_up_ends_with_the_fetchs_deadline(slow_dns, how):
    policy = FetchPolicy(allowed_hosts=None, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        if how == "fetch":
            fetch("https://slow.example/view/x?sig=SECRET", policy)
        else:
            with open_stream("https://slow.example/view/x?sig=SECRET", policy):
                pass
    elapsed = time.monotonic() - started
    assert err.value.kind == "timeout"
    assert err.value.reason == "https://slow.example/view/x took too long to answer."
    assert 0.45 <= elapsed < 0.5 + 0.4


def test_the_connections_own_look_up_ends_with_the_deadline(slow_dns):
    """check_url's look-up answers at once; the second one, by the connection, hangs."""
    slow_dns.fast = 1
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch("https://slow.example/view/x", FetchPolicy(allowed_hosts=None, timeout=0.5))
    elapsed = time.monotonic() - started
    assert slow_dns.calls == 2
    assert err.value.kind == "timeout"
    assert elapsed < 0.5 + 0.4


def test_a_redirects_look_up_shares_the_same_deadline(server, slow_dns):
    server.routes["/go"] = redirect_to("https://slow.example/there")
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url("/go"), dev_policy(server, allowed_hosts=None, timeout=0.6))
    assert err.value.kind == "timeout"
    assert time.monotonic() - started < 0.6 + 0.4


def test_a_check_on_its_own_waits_at_most_the_policys_timeout(slow_dns):
    started = time.monotonic()
    with pytest.raises(UnsafeURL) as err:
        check_url("https://slow.example/view/x", FetchPolicy(allowed_hosts=None, timeout=0.3))
    assert err.value.reason == "Looking up that address took too long."
    assert time.monotonic() - started < 0.3 + 0.4


def test_a_session_used_directly_bounds_the_look_up_by_its_connect_timeout(slow_dns):
    session = netsafe.make_session()
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectTimeout):
        session.get("https://slow.example/", timeout=0.3)
    assert time.monotonic() - started < 0.3 + 0.4


def test_busy_resolver_threads_are_waited_for_within_the_deadline(slow_dns, monkeypatch):
    """Every resolver thread stuck: a new look-up waits for a slot, but only until its deadline."""
    monkeypatch.setattr(netsafe.addresses, "_slots", threading.BoundedSemaphore(1))
    with pytest.raises(UnsafeURL):  # takes the only slot and leaves it stuck
        check_url("https://slow.example/a", FetchPolicy(allowed_hosts=None, timeout=0.1))
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch("https://slow.example/b", FetchPolicy(allowed_hosts=None, timeout=0.4))
    assert err.value.kind == "timeout"
    assert time.monotonic() - started < 0.4 + 0.4
    assert slow_dns.calls == 1  # the second look-up never got a thread


def test_a_fast_look_up_is_unchanged(slow_dns):
    slow_dns.fast = 10
    assert check_url("https://fast.example/x", FetchPolicy(allowed_hosts=None, timeout=0.3)).netloc == "fast.example"


@pytest.mark.parametrize("url, netloc, path", [
    ("https://share.descript.com/view/JNWta1T8TKX", "share.descript.com", "/view/JNWta1T8TKX"),
    ("https://share.descript.com/view/a50ffa05-0d1b-4b53-9b0c-6a3e8e6f8e11", "share.descript.com",
     "/view/a50ffa05-0d1b-4b53-9b0c-6a3e8e6f8e11"),
    ("https://share.descript.com/view/JNW_ta-1/", "share.descript.com", "/view/JNW_ta-1/"),
    ("  https://SHARE.Descript.com./view/JNWta1T8TKX#frag  ", "share.descript.com", "/view/JNWta1T8TKX"),
    ("HTTPS://share.descript.com:443/view/JNWta1T8TKX", "share.descript.com", "/view/JNWta1T8TKX"),
    ("https://\uff53hare.descript.com/view/JNWta1T8TKX", "share.descript.com", "/view/JNWta1T8TKX"),  # fullwidth s
])
def test_good_share_links_are_normalised(url, netloc, path, public_dns):
    parts = check_url(url, FetchPolicy(allowed_hosts=SHARE_HOSTS), path_pattern=SHARE_PATH)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", netloc, path, "")
    assert public_dns == ["share.descript.com"]


def test_any_public_host_for_media_links(public_dns):
    policy = FetchPolicy(allowed_hosts=None)
    parts = check_url("https://cdn.b\u00fccher.example/a/b.mp4?X-Amz-Signature=abc", policy)
    assert parts.netloc == "cdn.xn--bcher-kva.example"
    assert parts.query == "X-Amz-Signature=abc"
    # A public IP literal is allowed when no host list applies, and written the plain way.
    assert check_url("https://0x5db8d822/x", policy).netloc == PUBLIC_IP
    assert check_url("https://[2606:4700:4700::1111]/x", policy).netloc == "[2606:4700:4700::1111]"


def test_dev_origin_must_match_exactly(public_dns):
    policy = FetchPolicy(allowed_hosts=SHARE_HOSTS, dev_origins=frozenset({"http://127.0.0.1:8001/"}))
    parts = check_url("http://127.0.0.1:8001/view/JNWta1T8TKX", policy, path_pattern=SHARE_PATH)
    assert parts.geturl() == "http://127.0.0.1:8001/view/JNWta1T8TKX"
    for url in ["http://localhost:8001/view/x", "https://127.0.0.1:8001/view/x", "http://127.0.0.1:8002/view/x",
                "http://127.0.0.1/view/x", "http://u:p@127.0.0.1:8001/view/x"]:
        with pytest.raises(UnsafeURL):
            check_url(url, policy, path_pattern=SHARE_PATH)
    with pytest.raises(UnsafeURL):  # the path rule still applies on a dev origin
        check_url("http://127.0.0.1:8001/admin", policy, path_pattern=SHARE_PATH)
    assert public_dns == []


def test_policy_is_normalised_and_hashable():
    a = FetchPolicy(allowed_hosts={"Share.Descript.com."}, dev_origins=["HTTP://127.0.0.1:8001/"])
    b = FetchPolicy(allowed_hosts=frozenset({"share.descript.com"}), dev_origins=frozenset({"http://127.0.0.1:8001"}))
    assert a == b and hash(a) == hash(b)
    assert a.allowed_hosts == frozenset({"share.descript.com"})
    assert FetchPolicy(allowed_hosts=None).allowed_hosts == frozenset()
    with pytest.raises(ValueError):
        FetchPolicy(allowed_hosts=None, dev_origins={"http://127.0.0.1:8001/path"})


# --------------------------------------------------------------------------------------------
# fetch against live local servers
# --------------------------------------------------------------------------------------------


def test_fetch_returns_the_page(server):
    body = b"<html><head><meta property='descript:partner' content='p'></head></html>"
    server.routes["/view/abc"] = page(body)
    result = fetch(server.url("/view/abc?x=1"), dev_policy(server, allowed_content_types=("text/html",)),
                   path_pattern=SHARE_PATH)
    assert result.status == 200
    assert result.body == body
    assert result.content_type == "text/html; charset=utf-8"
    assert result.url == server.url("/view/abc?x=1")
    assert result.headers["content-length"] == str(len(body))
    assert server.requests[0][1]["User-Agent"] == netsafe.USER_AGENT


def test_redirects_are_followed_and_each_hop_checked(servers):
    a, b = servers(), servers()
    a.routes["/view/one"] = redirect_to("/view/two", 301)
    a.routes["/view/two"] = redirect_to(b.url("/view/three"), 307)
    b.routes["/view/three"] = page(b"done")
    result = fetch(a.url("/view/one"), dev_policy(a, b), path_pattern=SHARE_PATH)
    assert result.body == b"done"
    assert result.url == b.url("/view/three")
    assert [p for p, _ in a.requests] == ["/view/one", "/view/two"]
    assert [p for p, _ in b.requests] == ["/view/three"]


def test_too_many_redirects(server):
    server.routes["/view/loop"] = redirect_to("/view/loop")
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/loop"), dev_policy(server, max_redirects=2))
    assert err.value.kind == "redirect"
    assert len(server.requests) == 3  # the first request and two redirects, no more


def test_redirect_without_location(server):
    server.routes["/view/x"] = lambda h: send(h, 302, b"")
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/x"), dev_policy(server))
    assert err.value.kind == "redirect"


@pytest.mark.parametrize("target", [
    "https://evil.example/view/x?sig=SECRET",
    "https://127.0.0.1:{port}/view/x",
    "https://127.0.0.1/view/x",
    "https://10.0.0.1/view/x",
    "https://169.254.169.254/latest/meta-data",
    "http://localhost:{port}/view/x",
    "{other}/view/x",  # a live server that is not a dev origin of this policy
    "file:///etc/passwd",
])
def test_redirect_to_a_refused_address_is_not_followed(servers, target, public_dns):
    a, other = servers(), servers()
    a.routes["/view/go"] = redirect_to(target.format(port=other.port, other=other.origin))
    other.routes["/view/x"] = page(b"should never be served")
    with pytest.raises(UnsafeURL) as err:
        fetch(a.url("/view/go"), dev_policy(a), path_pattern=SHARE_PATH)
    assert "SECRET" not in err.value.reason
    assert other.requests == []
    assert len(a.requests) == 1


def test_redirect_to_a_wrong_path_on_the_same_origin(server):
    server.routes["/view/go"] = redirect_to("/admin")
    server.routes["/admin"] = page(b"admin")
    with pytest.raises(UnsafeURL):
        fetch(server.url("/view/go"), dev_policy(server), path_pattern=SHARE_PATH)
    assert [p for p, _ in server.requests] == ["/view/go"]


def test_cross_origin_redirect_drops_credentials(servers):
    a, b = servers(), servers()
    a.routes["/go"] = redirect_to(b.url("/there"))
    b.routes["/there"] = page(b"x")
    fetch(a.url("/go"), dev_policy(a, b, allowed_hosts=None), headers={"Authorization": "Bearer t", "X-Keep": "1"})
    assert a.requests[0][1]["Authorization"] == "Bearer t"
    assert "Authorization" not in b.requests[0][1]
    assert b.requests[0][1]["X-Keep"] == "1"


def test_slow_drip_body_is_cut_at_the_deadline(server):
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(600):  # 30 s worth, one byte at a time
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.05)

    server.routes["/view/drip"] = drip
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/drip"), dev_policy(server, timeout=1.0))
    elapsed = time.monotonic() - started
    assert err.value.kind == "timeout"
    assert 0.9 <= elapsed < 2.0


def test_slow_drip_without_length_is_not_mistaken_for_the_end(server):
    # No Content-Length: cutting the socket looks like a normal end of body unless we check.
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        for _ in range(600):
            h.wfile.write(b"y")
            h.wfile.flush()
            time.sleep(0.05)

    server.routes["/view/drip"] = drip
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/drip"), dev_policy(server, timeout=1.0))
    assert err.value.kind == "timeout"
    assert time.monotonic() - started < 2.0


def test_slow_drip_headers_are_cut_at_the_deadline(listener_http):
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(listener_http.url, FetchPolicy(allowed_hosts=None, dev_origins={listener_http.origin}, timeout=1.0))
    assert err.value.kind == "timeout"
    assert time.monotonic() - started < 2.0


class DripHeaders:
    """Answers every connection with a status line and then one header byte every 50 ms."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.origin = f"http://127.0.0.1:{port}"
        self.url = self.origin + "/view/x"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(600):
                    conn.sendall(b"a")
                    time.sleep(0.05)
            except OSError:
                pass


@pytest.fixture
def listener_http() -> Iterator[DripHeaders]:
    drip = DripHeaders()
    yield drip
    drip.sock.close()


def test_huge_body_is_cut_at_max_bytes(server):
    total = 200 * 1024 * 1024

    def endless(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b"z" * 65536
        while server.sent < total:
            h.wfile.write(chunk)
            server.sent += len(chunk)

    server.routes["/view/huge"] = endless
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/huge"), dev_policy(server, max_bytes=1_000_000))
    assert err.value.kind == "too_large"
    assert time.monotonic() - started < 3.0
    assert server.aborted.wait(5), "the server was never cut off"
    assert server.sent < total // 4


def test_declared_length_over_the_limit_is_refused_before_reading(server):
    def big(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(10 * 1024**3))
        h.end_headers()
        h.wfile.write(b"z" * 1000)
        time.sleep(5)  # would stall a reader that waited for the body

    server.routes["/view/big"] = big
    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/big"), dev_policy(server))
    assert err.value.kind == "too_large"
    assert time.monotonic() - started < 1.0


def test_non_html_is_refused(server):
    server.routes["/view/img"] = page(b"\x89PNG....", "image/png")
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/img"), dev_policy(server, allowed_content_types=("text/html",)))
    assert err.value.kind == "not_html"
    server.routes["/view/none"] = lambda h: (h.send_response(200), h.send_header("Content-Length", "0"), h.end_headers())
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/none"), dev_policy(server, allowed_content_types=("text/html",)))
    assert err.value.kind == "not_html"


def test_bad_status_keeps_the_status_and_hides_the_query(server):
    with pytest.raises(FetchError) as err:
        fetch(server.url("/view/missing?X-Amz-Signature=SECRET"), dev_policy(server))
    assert (err.value.kind, err.value.status) == ("bad_status", 404)
    assert "SECRET" not in str(err.value)
    assert server.url("/view/missing") in err.value.reason


def test_connection_refused_is_a_connection_error(listener):
    origin = f"http://127.0.0.1:{listener.port}"
    listener.close()  # nothing listens there any more
    with pytest.raises(FetchError) as err:
        fetch(origin + "/x", FetchPolicy(allowed_hosts=None, dev_origins={origin}))
    assert err.value.kind == "connection"


def test_stream_to_receives_the_body(server):
    payload = bytes(range(256)) * 20_000  # 5 MB
    server.routes["/media.mp4"] = page(payload, "video/mp4")
    received: list[bytes] = []
    result = fetch(server.url("/media.mp4"), dev_policy(server, allowed_hosts=None, max_bytes=None),
                   stream_to=received.append)
    assert result.body == b""
    assert b"".join(received) == payload
    assert len(received) > 1


def test_stream_to_still_stops_at_max_bytes(server):
    server.routes["/media.mp4"] = lambda h: (h.send_response(200), h.send_header("Connection", "close"),
                                             h.end_headers(), h.wfile.write(b"m" * 3_000_000))
    received: list[bytes] = []
    with pytest.raises(FetchError) as err:
        fetch(server.url("/media.mp4"), dev_policy(server, max_bytes=1_000_000), stream_to=received.append)
    assert err.value.kind == "too_large"
    assert sum(map(len, received)) <= 1_000_000


def test_cookies_are_not_carried_between_fetches(server):
    server.routes["/a"] = lambda h: send(h, 200, b"a", headers={"Set-Cookie": "sid=victim; Path=/"})
    server.routes["/b"] = page(b"b")
    policy = dev_policy(server)
    fetch(server.url("/a"), policy)
    fetch(server.url("/b"), policy)
    assert "Cookie" not in server.requests[1][1]


# --------------------------------------------------------------------------------------------
# Nothing is fetched from refused links; the connection itself is checked
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", [
    "https://127.0.0.1:{port}/view/x",
    "http://127.0.0.1:{port}/view/x",
    "http://localhost:{port}/view/x",
    "https://localhost:{port}/view/x",
    "http://2130706433:{port}/view/x",
    "http://[::ffff:127.0.0.1]:{port}/view/x",
    "http://share.descript.com@127.0.0.1:{port}/view/x",
])
def test_refused_links_never_connect(listener, template):
    # The listener's own origin spelled differently is not the dev origin.
    policy = FetchPolicy(allowed_hosts=None, dev_origins={"http://127.0.0.1:1"})
    with pytest.raises(UnsafeURL):
        fetch(template.format(port=listener.port), policy)
    with pytest.raises(UnsafeURL):
        with open_stream(template.format(port=listener.port), policy):
            pass
    time.sleep(0.1)
    assert listener.connections == 0


def _rebinding(monkeypatch, second: tuple[str, int]) -> list[str]:
    """DNS answers public to check_url, then `second` when the connection resolves the name."""
    answers = iter([PUBLIC_IP])
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        lookups.append(host)
        address = next(answers, None)
        if address is None:  # second look-up, by the connection
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", second)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    return lookups


def test_dns_rebinding_is_refused_before_connecting(listener, monkeypatch):
    """check_url is told the name is public; the connection's own look-up then says 127.0.0.1."""
    lookups = _rebinding(monkeypatch, ("127.0.0.1", listener.port))
    policy = FetchPolicy(allowed_hosts={"rebind.example"})  # no dev origins at all
    with pytest.raises(UnsafeURL) as err:
        fetch("https://rebind.example/view/x", policy, path_pattern=SHARE_PATH)
    assert err.value.reason == "That address is private."
    assert lookups == ["rebind.example", "rebind.example"]
    time.sleep(0.2)
    assert listener.connections == 0  # judged on the answer: not even a TCP handshake


def test_rebinding_to_an_open_or_a_closed_port_reads_the_same(monkeypatch):
    """No port-scan oracle through rebinding: whether something listens is never told."""
    open_port = Listener()
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    outcomes = []
    try:
        for port in (open_port.port, closed_port):
            _rebinding(monkeypatch, ("127.0.0.1", port))
            with pytest.raises(UnsafeURL) as err:
                fetch("https://rebind.example/view/x", FetchPolicy(allowed_hosts=None), path_pattern=SHARE_PATH)
            outcomes.append((type(err.value), err.value.reason))
        time.sleep(0.1)
        assert open_port.connections == 0
    finally:
        open_port.close()
    assert outcomes[0] == outcomes[1] == (UnsafeURL, "That address is private.")


class Resetter:
    """Accepts every connection and resets it (RST, not FIN), before or after reading the request."""

    def __init__(self, read_first: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.read_first = read_first
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with contextlib.suppress(OSError):
                if self.read_first:
                    conn.settimeout(1)
                    conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("read_first", [False, True], ids=["reset-at-accept", "reset-after-request"])
@pytest.mark.parametrize("how", ["fetch", "open_stream"])
def test_a_reset_and_a_closed_port_give_the_same_message(read_first, how):
    """The same port twice: first something accepts and resets, then nothing listens (refused)."""
    resetter = Resetter(read_first)
    origin = f"http://127.0.0.1:{resetter.port}"
    policy = FetchPolicy(allowed_hosts=None, dev_origins={origin}, timeout=3.0)

    def attempt() -> tuple[str, str]:
        with pytest.raises(FetchError) as err:
            if how == "fetch":
                fetch(origin + "/view/x?sig=SECRET", policy)
            else:
                with open_stream(origin + "/view/x?sig=SECRET", policy):
                    pass
        return err.value.kind, err.value.reason

    try:
        reset = attempt()
        assert resetter.accepted >= 1  # it really was accepted, then reset
    finally:
        resetter.close()
    refused = attempt()
    assert reset == refused == ("connection", f"Could not download {origin}/view/x.")


def test_safe_adapter_refuses_private_peers_on_its_own(listener):
    """Even a caller that skips check_url cannot reach a private address through the session."""
    session = netsafe.make_session()
    with pytest.raises(UnsafeURL):
        session.get(f"http://127.0.0.1:{listener.port}/", timeout=2)
    time.sleep(0.2)
    assert listener.connections == 0
    assert listener.received == b""


def test_the_connected_peer_is_checked_as_well(listener, monkeypatch):
    """Behind the answer check, the peer check still refuses a socket that landed somewhere private."""
    monkeypatch.setattr(netsafe.transport, "_check_answers", lambda infos: None)
    session = netsafe.make_session()
    with pytest.raises(UnsafeURL) as err:
        session.get(f"http://127.0.0.1:{listener.port}/", timeout=2)
    assert err.value.reason == "That address is private."
    time.sleep(0.2)
    assert listener.connections == 1
    assert listener.received == b""


def test_dev_origin_exemption_in_the_adapter_is_exact(servers):
    a, b = servers(), servers()
    a.routes["/"] = page(b"ok")
    b.routes["/"] = page(b"ok")
    session = netsafe.make_session(dev_policy(a))
    assert session.get(a.url("/"), timeout=2).content == b"ok"
    with pytest.raises(UnsafeURL):
        session.get(b.url("/"), timeout=2)
    assert b.requests == []


def test_sessions(server):
    policy = dev_policy(server)
    session = netsafe.session_for(policy)
    assert session is netsafe.session_for(dev_policy(server, max_bytes=5))  # same dev origins: same session
    assert session is not netsafe.session_for(FetchPolicy(allowed_hosts=None))
    assert isinstance(session.get_adapter("https://x.example/"), netsafe.SafeAdapter)
    assert session.headers["User-Agent"] == netsafe.USER_AGENT
    assert session.trust_env is False
    with pytest.raises(TypeError):
        fetch(server.url("/view/x"), policy, session=requests.Session())
    assert server.requests == []


def test_environment_proxies_are_not_used(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    server.routes["/view/x"] = page(b"direct")
    assert fetch(server.url("/view/x"), dev_policy(server)).body == b"direct"


# --------------------------------------------------------------------------------------------
# open_stream
# --------------------------------------------------------------------------------------------


def test_open_stream_follows_checked_redirects(servers):
    a, b = servers(), servers()
    payload = b"v" * 300_000
    a.routes["/signed"] = redirect_to(b.url("/media.mp4?sig=1"))
    b.routes["/media.mp4"] = page(payload, "video/mp4")
    with open_stream(a.url("/signed"), dev_policy(a, b, allowed_hosts=None), headers={"Range": "bytes=0-"}) as r:
        assert r.status_code == 200
        data = b"".join(netsafe.iter_chunks(r, max_bytes=None, chunk_size=65536))
    assert data == payload
    assert b.requests[0][1]["Range"] == "bytes=0-"


def test_open_stream_refuses_redirect_to_private(servers):
    a, other = servers(), servers()
    a.routes["/signed"] = redirect_to(other.url("/media.mp4"))
    with pytest.raises(UnsafeURL):
        with open_stream(a.url("/signed"), dev_policy(a, allowed_hosts=None)):
            pass
    assert other.requests == []


def test_open_stream_status_and_limits(server):
    server.routes["/big.mp4"] = page(b"b" * 5000, "video/mp4")
    with pytest.raises(FetchError) as err:
        with open_stream(server.url("/gone.mp4"), dev_policy(server, allowed_hosts=None)):
            pass
    assert (err.value.kind, err.value.status) == ("bad_status", 404)
    with pytest.raises(FetchError) as err:  # declared length over the limit
        with open_stream(server.url("/big.mp4"), dev_policy(server, allowed_hosts=None, max_bytes=1000)):
            pass
    assert err.value.kind == "too_large"
    with pytest.raises(FetchError) as err:  # counted while reading
        with open_stream(server.url("/big.mp4"), dev_policy(server, allowed_hosts=None, max_bytes=None)) as r:
            list(netsafe.iter_chunks(r, max_bytes=1000, chunk_size=512))
    assert err.value.kind == "too_large"


def test_open_stream_read_errors_become_fetch_errors(server):
    def short(h):
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"s" * 10)
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)

    server.routes["/short.mp4"] = short
    with pytest.raises(FetchError) as err:
        with open_stream(server.url("/short.mp4"), dev_policy(server, allowed_hosts=None)) as r:
            b"".join(r.iter_content(1024))
    assert err.value.kind == "connection"
