"""Settings for bench/jobs_tracking: the demo's (the site's own + seed_demo), with EID_JOBS_* from the environment.

The benchmark runs the jobs' cadence scaled down with the sandbox's time (EID_JOBS_POLL_*),
points the callbacks at the site or at nothing (EID_JOBS_CALLBACK_BASE), and lifts the
in-flight bounds and the rate budget out of the way. The site's settings read none of these from
the environment, so this module does: JSON when the value parses (a number, a list), else text.
"""

from __future__ import annotations

import json
import os

from demo.settings import *  # noqa: F403

for _name, _raw in list(os.environ.items()):
    if _name.startswith("EID_JOBS_"):
        try:
            globals()[_name] = json.loads(_raw)
        except ValueError:
            globals()[_name] = _raw
