"""Link rules: `check_url` decides whether a link may be fetched, `redact_url` how it is shown.

`check_url` is the first of the three checks (see the package docstring): syntax, scheme,
host, port and path rules, then a DNS look-up that must return only public addresses. It
returns the normalised parts, so the request goes where we checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from .addresses import in_networks, is_public_ip, normalise_host, resolve_public
from .deadline import current_deadline
from .errors import FetchError, UnsafeURL
from .policy import DEFAULT_PORTS, FetchPolicy

MAX_URL_LENGTH = 2048
# Whitespace, control characters and backslashes: browsers and urllib disagree about what they
# mean inside a URL (`https://a\@b/`), and a share link never needs them.
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def redact_url(url: str | SplitResult) -> str:
    """scheme://host[:port]/path only: no user info, and no query string (it may be signed)."""
    try:
        parts = url if isinstance(url, SplitResult) else urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return f"{parts.scheme}://{host}{parts.path}"
    except ValueError:
        return "(an invalid link)"


def _hosts_phrase(hosts: Iterable[str]) -> str:
    names = sorted(hosts)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_url(url: str, policy: FetchPolicy, *, path_pattern: re.Pattern[str] | None = None) -> SplitResult:
    """Validate a link against `policy` without fetching it (DNS is the only network use).

    Raises UnsafeURL. The DNS look-up waits at most `policy.timeout` seconds (UnsafeURL past
    it); inside `fetch` or `open_stream` it waits at most what is left of their deadline, and
    running out is their FetchError(kind="timeout").

    Returns the normalised parts (ascii lowercase host, default port dropped, fragment
    dropped): fetch that, not the original string, so the request goes where we checked.
    """
    if not isinstance(url, str):
        raise UnsafeURL("That is not a link.")
    url = url.strip()
    if not url:
        raise UnsafeURL("That is not a link.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL("That link is too long.")
    if _BAD_URL_CHARS.search(url):
        raise UnsafeURL("That link contains characters that are not allowed.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise UnsafeURL("Only https links are accepted.")
        if "@" in parts.netloc:  # user:pass@host, and share.descript.com@evil.example
            raise UnsafeURL("Links with a user name or password are not accepted.")
        try:
            port = parts.port
        except ValueError:
            raise UnsafeURL("That link's port is not valid.") from None
        host, ip = normalise_host(parts.hostname)
    except UnsafeURL:
        raise
    except ValueError:  # urlsplit's own complaints, e.g. a malformed [IPv6] literal
        raise UnsafeURL("That link is not valid.") from None

    effective_port = port if port is not None else DEFAULT_PORTS[scheme]
    is_dev = (scheme, host, effective_port) in policy._dev_keys
    # Inside the policy's allowed networks, http and any port are allowed too (for a name, only
    # when every address it resolves to is inside: decided after the look-up below).
    inside = ip is not None and in_networks(ip, policy._networks)
    plain = _plain_reason(scheme, effective_port)
    if not is_dev:
        if plain and not inside and (ip is not None or not policy._networks):
            raise UnsafeURL(plain)
        if policy.allowed_hosts and host not in policy.allowed_hosts:
            raise UnsafeURL(f"That link is not on {_hosts_phrase(policy.allowed_hosts)}.")
        if ip is not None and not is_public_ip(ip) and not inside:
            raise UnsafeURL("That address is private.")
        if (host == "localhost" or host.endswith(".localhost")) and not policy._networks:
            raise UnsafeURL("That address is private.")

    path = parts.path or "/"
    # fullmatch: a `$` in the caller's pattern would otherwise accept a trailing newline.
    if path_pattern is not None and not path_pattern.fullmatch(path):
        raise UnsafeURL("That link does not lead to a page we can use.")

    netloc = f"[{host}]" if ":" in host else host
    if effective_port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{effective_port}"
    checked = SplitResult(scheme, netloc, path, parts.query, "")

    if not is_dev and ip is None:
        # The look-up counts against the deadline of the fetch in progress (if any), and is
        # otherwise bounded by the policy's timeout.
        deadline = current_deadline()
        try:
            all_inside = resolve_public(host, effective_port,
                                        timeout=policy.timeout if deadline is None else deadline.remaining(),
                                        allowed_networks=policy._networks)
        except FetchError:
            if deadline is None:  # a check on its own refuses, as for a name that is not found
                raise UnsafeURL("Looking up that address took too long.") from None
            raise FetchError(f"{redact_url(checked)} took too long to answer.", kind="timeout") from None
        if plain and not all_inside:
            raise UnsafeURL(plain)
    return checked


def _plain_reason(scheme: str, port: int) -> str:
    """Why http or another port is refused outside dev origins and allowed networks ("" when it is https on 443)."""
    if scheme != "https":
        return "Only https links are accepted."
    if port != 443:
        return "Only links on the standard https port are accepted."
    return ""
