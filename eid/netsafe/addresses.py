"""Address rules: which hosts and IP addresses we will talk to.

Only globally routable unicast addresses are public: the ranges refused are listed in one
table (`REFUSED_RANGES`, from the IANA special-purpose registries), and IPv6 wrappers that reach
an IPv4 address are judged by the address inside. Hosts are normalised the way the layers below us would
read them (IDNA, a trailing dot, and the numeric IPv4 spellings that browsers and inet_aton
accept), so what we check is what gets connected to.

`resolve_public` looks names up through `socket.getaddrinfo` at call time (tests patch it
there) and refuses a name when any of its answers is not public. Look-ups run through
`getaddrinfo_within`, which waits at most the time the caller has left (getaddrinfo itself has
no timeout), so a slow resolver counts against a fetch's deadline.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
from typing import Any, cast

from .errors import FetchError, UnsafeURL

_HOST_LABELS = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_HEX_PART = re.compile(r"^0[xX][0-9a-fA-F]*$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The address rules, written out instead of asking the running Python (`ipaddress.is_global`
# changes between releases: 3.11.7 calls 192.0.0.192, 192.0.0.8 and fec0::1 global).
#
# Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries
# (https://www.iana.org/assignments/iana-ipv4-special-registry/,
# https://www.iana.org/assignments/iana-ipv6-special-registry/), as they stood in 2024-2025 (the
# newest entries known here: 3fff::/20, RFC 9637, and 5f00::/16, RFC 9602, both 2024), plus the
# multicast and reserved blocks of the IPv4 and IPv6 Address Space registries. Registry entries
# marked "globally reachable" stay allowed (192.31.196.0/24 and 192.175.48.0/24 AS112,
# 192.52.193.0/24 AMT), except inside 192.0.0.0/24 and 2001::/23: their few reachable entries
# (PCP and TURN anycast 192.0.0.9, 192.0.0.10, 2001:1::1-3; AMT 2001:3::/32; AS112
# 2001:4:112::/48; ORCHIDv2 2001:20::/28; DETs 2001:30::/28) are protocol anycast and
# identifiers, never where a share page or a media file lives, so the whole blocks are refused.
#
# Every address inside one of these ranges is refused.
REFUSED_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple((ipaddress.ip_network(net), why) for net, why in (
    # IPv4
    ("0.0.0.0/8", "'this network' (RFC 791); 0.0.0.0 reaches the local host on Linux"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local, cloud metadata services (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890), DS-Lite, 192.0.0.8 dummy, NAT64 discovery"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771): not unicast"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    # IPv6
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215): where the IPv4 address sits is the network's choice"),
    ("100::/64", "discard only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928), Teredo 2001::/32 included; no exceptions (see above)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link local (RFC 4291)"),
    ("fec0::/10", "deprecated site local (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291): not unicast"),
))

# IPv6 ranges that carry an IPv4 address and reach it: such an address is exactly as public as
# the IPv4 address inside (so ::ffff:127.0.0.1 is refused and 64:ff9b::8.8.8.8 is not).
EMBEDDED_IPV4_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why) for net, why in (
        ("::ffff:0:0/96", "IPv4-mapped (RFC 4291): the low 32 bits"),
        ("64:ff9b::/96", "well-known NAT64 prefix (RFC 6052): the low 32 bits"),
        ("2002::/16", "6to4 (RFC 3056): bits 16-47"),
    )
)

# IPv6 outside these ranges is refused as well: the IANA IPv6 Address Space registry allocates
# only 2000::/3 to global unicast; the rest is reserved by the IETF or special (the table above
# names the special blocks anyway, so each refusal has a reason a reader can look up).
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address of EMBEDDED_IPV4_RANGES reaches, else None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in EMBEDDED_IPV4_RANGES[1][0]:  # NAT64
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_ip(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses, by the explicit tables above.

    An IPv6 address that carries an IPv4 address (mapped, NAT64, 6to4) is judged by the IPv4
    address inside.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public_ip(inner)
        if ip not in _GLOBAL_UNICAST_V6:
            return False
    return not any(ip in net for net, _why in REFUSED_RANGES if net.version == ip.version)


def in_networks(ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    """Is `ip` (or the IPv4 address an IPv6 wrapper reaches) inside one of `networks`?"""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
    return any(c in net for c in candidates for net in networks if net.version == c.version)


def parse_ip(text: str) -> IPAddress:
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


def normalise_host(raw: str | None) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None]:
    """Return (ascii lowercase host, IP if the host is an IP literal)."""
    invalid = UnsafeURL("That link's address is not valid.")
    if not raw:
        raise invalid
    if ":" in raw:  # urlsplit only yields a colon for a bracketed IPv6 literal
        try:
            ip = parse_ip(raw)
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


# Name resolution runs in threads of its own, so a caller can stop waiting when its deadline
# runs out (socket.getaddrinfo itself takes no timeout). At most RESOLVER_THREADS look-ups run at
# once per process: a look-up the caller gave up on keeps its thread until the system resolver
# answers, and the bound keeps a resolver outage from piling up threads. A caller waits for a
# free slot within the same deadline.
RESOLVER_THREADS = 8
_slots = threading.BoundedSemaphore(RESOLVER_THREADS)

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def _reset_after_fork() -> None:
    global _slots
    _slots = threading.BoundedSemaphore(RESOLVER_THREADS)  # threads holding slots did not fork


os.register_at_fork(after_in_child=_reset_after_fork)


class LookupTimeout(TimeoutError):
    """A name was not resolved within the time given."""


def getaddrinfo_within(host: str, port: int, timeout: float | None, family: int = 0) -> list[AddrInfo]:
    """`socket.getaddrinfo(host, port, family, SOCK_STREAM)`, waiting at most `timeout` seconds.

    Raises LookupTimeout when the answer (or a free resolver slot) takes longer, and whatever
    getaddrinfo raised otherwise. `timeout=None` waits as long as the resolver takes. An IP
    literal needs no DNS and is answered on the calling thread.
    """
    def lookup() -> list[AddrInfo]:
        # socket.getaddrinfo looked up at call time: tests (and only tests) replace it.
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)

    try:
        parse_ip(host.strip("[]"))
    except ValueError:
        pass
    else:
        return lookup()
    if timeout is None:
        return lookup()
    until = time.monotonic() + timeout
    slots = _slots
    if timeout <= 0 or not slots.acquire(timeout=timeout):
        raise LookupTimeout(host)
    done = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(lookup())
        except BaseException as exc:  # handed to the waiting caller, if it still waits
            outcome.append(exc)
        finally:
            slots.release()
            done.set()

    # A daemon thread: one stuck in the system resolver must not hold up interpreter exit.
    threading.Thread(target=run, name="netsafe-resolve", daemon=True).start()
    if not done.wait(max(0.0, until - time.monotonic())):
        raise LookupTimeout(host)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return cast(list[AddrInfo], result)


def resolve_public(host: str, port: int, *, timeout: float | None = None,
                   allowed_networks: tuple[IPNetwork, ...] = ()) -> bool:
    """Raise UnsafeURL unless `host` resolves, and every address it resolves to is public
    (or inside `allowed_networks`). Returns True when every address is inside those networks.

    With `timeout`, the look-up may take at most that many seconds; past it FetchError
    (kind="timeout") is raised.
    """
    inside = bool(allowed_networks)
    try:
        infos = getaddrinfo_within(host, port, timeout)
    except LookupTimeout:
        raise FetchError("Looking up that address took too long.", kind="timeout") from None
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise UnsafeURL("That address cannot be found.") from None
    if not infos:
        raise UnsafeURL("That address cannot be found.")
    for info in infos:
        try:
            ip = parse_ip(str(info[4][0]))
        except ValueError:
            raise UnsafeURL("That address cannot be found.") from None
        # Every answer must be public: the connection may use any of them.
        if in_networks(ip, allowed_networks):
            continue
        inside = False
        if not is_public_ip(ip):
            raise UnsafeURL("That address is private.")
    return inside
