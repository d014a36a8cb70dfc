"""Settings for the auto-edit tests' worker processes: the test settings, plus what the test says.

The tests start workers with DJANGO_SETTINGS_MODULE=autoedit_settings (tests/ on PYTHONPATH) and
EID_TEST_SETTINGS holding a JSON object of settings (fast polls, a callback base, short stale
times), so the worker runs with the same EID_JOBS_* values as the test's own process.
"""

import json
import os

from partner_site.settings_test import *  # noqa: F403

for _name, _value in json.loads(os.environ.get("EID_TEST_SETTINGS") or "{}").items():
    globals()[_name] = tuple(_value) if _name == "EID_JOBS_POLL_SECONDS" else _value
