"""Helpers for tests that need other processes: a worker, the sweep, the database they share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from demo.ports import free_port  # noqa: F401  (the one implementation; tests import it from here)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def test_database_url() -> str:
    """DATABASE_URL for a subprocess that must see the test database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "partner_site.settings_test",
        "DATABASE_URL": test_database_url(),
        "TEST_S3_PORT": str(settings.TEST_S3_PORT),
        "TEST_SANDBOX_PORT": str(settings.TEST_SANDBOX_PORT),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def start_worker(log_path: Path | None = None) -> subprocess.Popen:
    """A real task worker (django-tasks-db's db_worker) in its own process."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"],
        cwd=ROOT, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT,
    )


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
