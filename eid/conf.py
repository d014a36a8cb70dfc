"""eid's settings, with the defaults a partner gets when its settings module leaves a name out.

Read them as `from eid.conf import eid_settings` then `eid_settings.DESCRIPT_API_TOKEN`: every
read goes to Django's settings first, so `override_settings` in tests and a site's own values
win, and a site that names none of them still passes `manage.py check` (with a warning that
the connection to Descript is not set up).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # The door to the partner's content (see eid.content).
    "EID_CONTENT_ADAPTER": "",
    # Descript
    "DESCRIPT_API_BASE": "https://descriptapi.com/v1",
    "DESCRIPT_API_TOKEN": "",
    "DESCRIPT_PARTNER_DRIVE_ID": "",
    "DESCRIPT_HELP_URL": "https://help.descript.com/hc/en-us/articles/10164098416909-Supported-file-types",
    "DESCRIPT_CLICK_BUDGET_SECONDS": 10.0,
    "DESCRIPT_CONNECT_TIMEOUT": 3.0,
    "DESCRIPT_READ_TIMEOUT": 8.0,
    "DESCRIPT_SHARE_HOSTS": ["share.descript.com"],
    "DESCRIPT_SANDBOX_ORIGINS": [],
    # Storage
    "AWS_S3_ENDPOINT_URL": None,
    "AWS_STORAGE_BUCKET_NAME": "",
    "AWS_S3_REGION_NAME": "us-east-1",
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "EID_PRESIGN_TTL_SECONDS": 172800,
    # The way back
    "EID_SHARE_PAGE_TIMEOUT": 10.0,
    "EID_EXPORT_POLL_SECONDS": 45.0,
    "EID_EXPORT_GIVE_UP_SECONDS": 3 * 3600.0,
    "EID_EXPORT_HEARTBEAT_SECONDS": 5.0,
    "EID_EXPORT_STALE_SECONDS": 120.0,
    "EID_EXPORT_MAX_MEDIA_BYTES": 20 * 1024**3,
    # Imports in a worker (eid.copyslots, eid.ingest): copies at once per worker process (0:
    # in the task itself), how soon an import that found every slot busy is tried again, and
    # how long a stopping worker waits for its copies to let go of their imports.
    "EID_WORKER_COPY_SLOTS": 4,
    "EID_WORKER_BUSY_RETRY_SECONDS": 5.0,
    "EID_WORKER_STOP_GRACE_SECONDS": 5.0,
    # A media copy slower than this on average over the window, or slower overall than the
    # deadline (base + size / minimum rate) allows, is stopped and tried again after
    # EID_EXPORT_SLOW_RETRY_SECONDS, doubled each time (0 as the rate: never stopped).
    "EID_EXPORT_MIN_BYTES_PER_SECOND": 64 * 1024,
    "EID_EXPORT_RATE_WINDOW_SECONDS": 30.0,
    "EID_EXPORT_DEADLINE_BASE_SECONDS": 120.0,
    "EID_EXPORT_SLOW_RETRY_SECONDS": 300.0,
    # Per-user limits (eid.throttle): scope -> "N/period"; an empty value turns a scope off.
    "EID_THROTTLE_RATES": {"click": "30/m", "landing": "60/m", "auto_edit": "10/m"},
    "EID_THROTTLE_CACHE": "default",
    # Webhooks out (eid.webhooks): one attempt's time limit; the waits after each failed attempt
    # (then given up: about 22.7 hours in all), each +/- the jitter fraction of itself; how long
    # the previous secret keeps signing after a rotation; how long past due a pending delivery
    # waits before the sweep nudges it again; private ranges (CIDR) receivers may be on.
    "EID_WEBHOOK_TIMEOUT": 10.0,
    "EID_WEBHOOK_RETRY_SCHEDULE": [5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600],
    "EID_WEBHOOK_RETRY_JITTER": 0.2,
    "EID_WEBHOOK_SECRET_OVERLAP_SECONDS": 24 * 3600,
    "EID_WEBHOOK_STALE_SECONDS": 120.0,
    "EID_WEBHOOK_ALLOWED_NETWORKS": [],
    # The API (eid.api.idempotency): how long an Idempotency-Key and its answer are kept, and
    # after how long a request still marked running is taken to have died.
    "EID_API_IDEMPOTENCY_TTL_SECONDS": 24 * 3600,
    "EID_API_IDEMPOTENCY_RUNNING_SECONDS": 600,
    # Descript's jobs API and auto-edits (eid.jobs). Callbacks: Descript POSTs to
    # <EID_JOBS_CALLBACK_BASE>/descript/jobs/callback/<token> when a job stops; empty means no
    # callbacks (polling alone). Polls: the first after POLL_FIRST seconds, then every POLL
    # (low, high) seconds, never closer than POLL_MIN for one job; with callbacks, every
    # POLL_WITH_CALLBACKS (a fallback). One budget per token: at most RATE_PER_MINUTE calls
    # a minute from all processes together. At most MAX_IN_FLIGHT auto-edits at Descript at
    # once (a batch's own limit is lower or equal); a step that never stops is given up
    # after GIVE_UP seconds; an auto-edit no worker moved for STALE seconds is nudged again.
    "EID_JOBS_CALLBACK_BASE": "",
    "EID_JOBS_POLL_FIRST_SECONDS": 5.0,
    "EID_JOBS_POLL_SECONDS": (10.0, 15.0),
    "EID_JOBS_POLL_MIN_SECONDS": 3.0,
    "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 60.0,
    "EID_JOBS_RATE_PER_MINUTE": 300,
    "EID_JOBS_MAX_IN_FLIGHT": 20,
    "EID_JOBS_BATCH_IN_FLIGHT": 10,
    "EID_JOBS_GIVE_UP_SECONDS": 6 * 3600.0,
    "EID_JOBS_STALE_SECONDS": 120.0,
    "EID_JOBS_FOLDER": "Edit in Descript",
    "EID_JOBS_TEAM_ACCESS": "",
    "EID_JOBS_LANGUAGE": "",
}


class _EidSettings:
    """Attribute access to Django's settings with eid's defaults underneath."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{name} is not an eid setting")
        return getattr(settings, name, DEFAULTS[name])


eid_settings = _EidSettings()
