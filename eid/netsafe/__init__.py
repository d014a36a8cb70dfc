"""Fetching attacker-controllable links without becoming an SSRF proxy.

A Descript share link (and the media links on its page) is input from a user, so every
request this module makes is checked three times:

1. `check_url` - syntax, scheme, host, port and path rules, then a DNS look-up that must
   return only public addresses. Nothing is fetched when this fails.
2. Every redirect is followed by hand and its Location goes through `check_url` again.
3. The connection itself: DNS can answer differently the second time (rebinding), so the
   urllib3 connection classes used by `SafeAdapter` resolve the name themselves, refuse it
   before connecting when any answer is not public (the same answer whether or not anything
   listens there), and look at the address the socket actually connected to as well.

"Public" is an explicit table of refused ranges (`addresses.REFUSED_RANGES`), not the running
Python's `ipaddress.is_global`. Every DNS look-up waits at most what is left of the fetch's
deadline: getaddrinfo has no timeout of its own, so it runs in a small bounded set of threads.

The only exception are `FetchPolicy.dev_origins`: the offline Descript sandbox that demo and
test settings run on a loopback address over plain http. An exempt origin has to match scheme,
host and port exactly.

Nothing here reads Django settings: callers build a `FetchPolicy` and pass it in.

The package, one concept a module (each imports only those listed before it):

    errors      UnsafeURL (refused, nothing fetched) and FetchError (allowed, but failed)
    policy      FetchPolicy and FetchResult; dev origins parsed into exact keys
    deadline    one time budget over a whole exchange, slow drips and DNS look-ups included
    addresses   the table of refused address ranges, host normalisation, DNS within a time
                limit to public addresses only
    urls        check_url (check 1) and redact_url
    transport   connections that check the connected peer (check 3), SafeAdapter, sessions
    fetching    fetch, open_stream and iter_chunks, following redirects by hand (check 2)
"""

from __future__ import annotations

from .addresses import resolve_public as _resolve_public  # the name tests/test_netsafe.py uses
from .errors import FetchError, UnsafeURL
from .fetching import fetch, iter_chunks, open_stream
from .policy import FetchPolicy, FetchResult
from .transport import USER_AGENT, SafeAdapter, make_session, session_for
from .urls import MAX_URL_LENGTH, check_url, redact_url

__all__ = [
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "MAX_URL_LENGTH",
    "SafeAdapter",
    "USER_AGENT",
    "UnsafeURL",
    "check_url",
    "fetch",
    "iter_chunks",
    "make_session",
    "open_stream",
    "redact_url",
    "session_for",
]
