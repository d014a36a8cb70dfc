"""Helpers for tests that need other processes: a worker, the sweep, the database they share."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
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


def start_worker(log_path: Path | None = None, queue: str = "db",
                 overrides: Mapping[str, Any] | None = None) -> subprocess.Popen:
    """A real task worker in its own process (and process group): django-tasks-db's db_worker, or
    with queue="redis" RQ's worker with its scheduler (use_redis_queue first: it sets the env).

    `overrides`: settings the worker runs with on top of the test settings (a test's `settings`
    fixture stays in its own process); passed as EID_TEST_SETTINGS, read by partner_site/settings_test.py.
    """
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    if queue == "redis":
        command = ["rqworker", "--with-scheduler", "default"]
    else:
        command = ["db_worker", "--interval", "0.1", "--no-startup-delay"]
    env = subprocess_env(EID_TEST_SETTINGS=json.dumps(dict(overrides or {})))
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process started in its own group, and whatever it forked (RQ's scheduler)."""

    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    signal_group(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    signal_group(signal.SIGKILL)  # whatever is left of the group
    proc.wait(timeout=timeout)


# --- Redis: the task queue on RQ (django-tasks-rq) ---------------------------------------------

REDIS_BACKEND = "django_tasks_rq.RQBackend"
REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
REDIS_CLAIM_KEY = "eid-test-run"
_redis_unreachable: list[str] = []  # the reason, once found


def redis_unreachable() -> str | None:
    """Why Redis cannot be used for the Redis cases (None: it can). Asked once per test run."""
    if not _redis_unreachable:
        import redis

        try:
            redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=1, socket_timeout=2).ping()
            _redis_unreachable.append("")
        except (redis.RedisError, OSError) as exc:
            _redis_unreachable.append(f"Redis is not reachable at {REDIS_SERVER} ({type(exc).__name__}: {exc})")
    return _redis_unreachable[0] or None


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of this test's own, emptied afterwards; skips the test without Redis.

    Parallel test runs share the server: each claims a free database number (1 to 15; 0 is left
    to whatever else uses this Redis) with SET NX, and flushes it when done. With
    EID_REQUIRE_REDIS=1 (set by .ci/run when Redis answered there) a missing Redis fails instead.
    """
    import redis

    reason = redis_unreachable()
    if reason:
        if os.environ.get("EID_REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason}, and EID_REQUIRE_REDIS=1")
        pytest.skip(reason)
    owner = f"{socket.gethostname()}:{os.getpid()}:{time.time()}"
    for db in range(1, 16):
        client = redis.Redis.from_url(REDIS_SERVER, db=db, socket_connect_timeout=2)
        if client.set(REDIS_CLAIM_KEY, owner, nx=True, ex=3600):
            break
    else:
        pytest.fail(f"no free Redis database on {REDIS_SERVER}: 15 test runs at once?")
    try:
        for key in client.scan_iter():  # what a crashed run left behind
            if key != REDIS_CLAIM_KEY.encode():
                client.delete(key)
        yield f"{REDIS_SERVER}/{db}"
    finally:
        client.flushdb()
        client.close()


def use_redis_queue(settings, monkeypatch, url: str) -> None:
    """Switch this test's tasks to Redis: the site in this process (the live server included)
    enqueues there, and every process started with subprocess_env() works from it."""
    monkeypatch.setenv("TASKS_BACKEND", REDIS_BACKEND)
    monkeypatch.setenv("REDIS_URL", url)
    settings.TASKS = {"default": {"BACKEND": REDIS_BACKEND}}
    settings.RQ_QUEUES = {"default": {**settings.RQ_QUEUES["default"], "URL": url}}


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(params=["db", "redis"])
def task_queue(request, settings, monkeypatch) -> str:
    """Run a test on each task queue: the database queue, and Redis (RQ) when it is reachable."""
    if request.param == "redis":
        use_redis_queue(settings, monkeypatch, request.getfixturevalue("redis_url"))
    return request.param


def bearer(key: str) -> dict[str, str]:
    """The test client's header for a service token."""
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


class ManualClock:
    """An injectable clock (the sandbox's `app.clock`): starts at real time, moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
