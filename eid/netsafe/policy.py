"""What a caller allows for one kind of link (`FetchPolicy`), and what a fetch returns.

Nothing in this package reads Django settings: callers build a `FetchPolicy` from them and
pass it in. Dev origins are parsed here once, into (scheme, host, port) keys that `check_url`
and the transport match exactly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse_origin(origin: str) -> tuple[str, str, int]:
    """'http://127.0.0.1:8001' -> ('http', '127.0.0.1', 8001); anything more than an origin is an error."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"not an http(s) origin: {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an origin has no path, query or fragment: {origin!r}")
    port = parts.port or DEFAULT_PORTS[scheme]
    return scheme, parts.hostname.rstrip(".").lower(), port


def _format_origin(key: tuple[str, str, int]) -> str:
    scheme, host, port = key
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class FetchPolicy:
    """What one kind of link may point at, and how much we will read from it.

    allowed_hosts: exact lowercase host names (no wildcards); None or empty means any public host.
    dev_origins: origins (scheme://host:port) exempt from the https, port, public-address and
        allowed-host rules - only for the offline sandbox in demo and test settings.
    max_bytes: body limit for `fetch` (and the declared length for `open_stream`); None = no limit.
    timeout: seconds. For `fetch` a deadline over the whole exchange (connect, redirects,
        headers, body); for `open_stream` the budget up to the headers, then a per-read timeout.
    allowed_content_types: media types (without parameters) accepted; None = any.
    allowed_networks: address ranges (CIDR) treated as public for this policy, set by an operator
        for receivers on a private network (webhooks); a link whose host is inside them (an IP
        literal, or a name every answer of which is) may also use http and any port. The
        connected peer is still checked: inside them, or public.
    """

    allowed_hosts: frozenset[str] | None
    dev_origins: frozenset[str] = frozenset()
    max_bytes: int | None = 2_000_000
    timeout: float = 10.0
    max_redirects: int = 3
    allowed_content_types: tuple[str, ...] | None = None
    allowed_networks: frozenset[str] = frozenset()
    # (scheme, host, port) of the dev origins, derived once; not part of equality or hashing.
    _dev_keys: frozenset[tuple[str, str, int]] = field(init=False, repr=False, compare=False, default=frozenset())
    # The allowed networks, parsed once (sorted, so equal policies share a session).
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # Normalise whatever iterable the caller built from settings, so comparisons are exact.
        hosts = frozenset(h.strip().rstrip(".").lower() for h in (self.allowed_hosts or ()) if h and h.strip())
        keys = frozenset(_parse_origin(o) for o in (self.dev_origins or ()))
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "dev_origins", frozenset(_format_origin(k) for k in keys))
        object.__setattr__(self, "_dev_keys", keys)
        networks = sorted({ipaddress.ip_network(str(n).strip(), strict=False) for n in (self.allowed_networks or ())
                           if str(n).strip()}, key=lambda n: (n.version, n))
        object.__setattr__(self, "allowed_networks", frozenset(str(n) for n in networks))
        object.__setattr__(self, "_networks", tuple(networks))
        if self.allowed_content_types is not None:
            types = tuple(t.split(";", 1)[0].strip().lower() for t in self.allowed_content_types)
            object.__setattr__(self, "allowed_content_types", types)
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive or None")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL, after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes  # b"" when the body went to `stream_to`
    content_type: str | None  # the raw Content-Type header, parameters included
