"""Address rules: which hosts and IP addresses we will talk to.

Only globally routable unicast addresses are public, judged after looking inside IPv6
wrappers that reach an IPv4 address. Hosts are normalised the way the layers below us would
read them (IDNA, a trailing dot, and the numeric IPv4 spellings that browsers and inet_aton
accept), so what we check is what gets connected to.

`resolve_public` looks names up through `socket.getaddrinfo` at call time (tests patch it
there) and refuses a name when any of its answers is not public.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from .errors import UnsafeURL

_HOST_LABELS = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_HEX_PART = re.compile(r"^0[xX][0-9a-fA-F]*$")
# Well-known NAT64 prefix: 64:ff9b::a.b.c.d reaches the embedded IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 wrappers."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address reach that address: judge the inner one.
        if ip.ipv4_mapped is not None:
            return is_public_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_ip(ip.sixtofour):
            return False
        if ip.teredo is not None and not is_public_ip(ip.teredo[1]):
            return False
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
    )


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
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


def resolve_public(host: str, port: int) -> None:
    """Raise UnsafeURL unless `host` resolves, and every address it resolves to is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
        if not is_public_ip(ip):
            raise UnsafeURL("That address is private.")
