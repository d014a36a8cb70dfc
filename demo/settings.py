"""Settings for `make demo` and the benchmarks: the site's own, plus the `demo` app.

The `demo` app carries `manage.py seed_demo`, which creates users with published passwords and
imports the demo's media generators. The site's own settings (partner_site.settings, what the
production image runs) do not install it, and the image has no demo/ at all.
"""

from __future__ import annotations

from partner_site.settings import *  # noqa: F403
from partner_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "demo"]
