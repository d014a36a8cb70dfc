"""Settings for bench/click_load: the demo's (the site's own settings + seed_demo), with two changes.

- Per-user throttles raised far above what one benchmark user sends (the default click rate is
  30/m): the benchmark measures the server, not the throttle. The throttle still runs on every
  click (its cache counter is part of the click's cost), it just never refuses.
- The URLs are the site's plus one route to the floor view (bench/proxyview.py), so the floor
  runs in the same server processes as the click.
"""

from __future__ import annotations

from demo.settings import *  # noqa: F403

EID_THROTTLE_RATES = {"click": "10000000/m", "landing": "10000000/m"}
ROOT_URLCONF = "bench.urls"
