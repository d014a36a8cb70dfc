"""Test settings: the base settings pointed at the in-process moto server and Descript sandbox.

Ports are picked here, once per test run, and the conftest starts the servers on them. The
sandbox's origin is trusted here (and in `make demo`), never in the base settings.
"""

from __future__ import annotations

import json
import os

from demo.ports import free_port

# The base settings refuse to load without a key when DEBUG is off: the suite brings its own
# (subprocesses started with this module inherit it through the environment).
os.environ.setdefault("SECRET_KEY", "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")

from .settings import *  # noqa: E402, F403

TEST_S3_PORT = int(os.environ.get("TEST_S3_PORT") or free_port())
TEST_SANDBOX_PORT = int(os.environ.get("TEST_SANDBOX_PORT") or free_port())
os.environ["TEST_S3_PORT"], os.environ["TEST_SANDBOX_PORT"] = str(TEST_S3_PORT), str(TEST_SANDBOX_PORT)
SANDBOX_ORIGIN = f"http://127.0.0.1:{TEST_SANDBOX_PORT}"

# The demo's app (its seed_demo command) is tested too; the site's own settings never install it.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

DESCRIPT_API_BASE = f"{SANDBOX_ORIGIN}/v1"
DESCRIPT_API_TOKEN = "sandbox-token-tests-7Hq2LmZ9"
DESCRIPT_PARTNER_DRIVE_ID = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"
DESCRIPT_SANDBOX_ORIGINS = [SANDBOX_ORIGIN]
# The click's 302 goes to the sandbox's import page: the base settings put DESCRIPT_SANDBOX_ORIGINS
# from the environment into form-action; this one is set here, so it is added here.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(SANDBOX_ORIGIN)  # noqa: F405
DESCRIPT_HELP_URL = "https://help.example.test/edit-in-descript"
DESCRIPT_CLICK_BUDGET_SECONDS = 4.0
DESCRIPT_READ_TIMEOUT = 2.0

AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{TEST_S3_PORT}"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing-secret"
AWS_STORAGE_BUCKET_NAME = "recordings-test"

EID_EXPORT_POLL_SECONDS = 0.3
EID_EXPORT_STALE_SECONDS = 3.0

EID_SHARE_PAGE_TIMEOUT = 2.0
EID_EXPORT_HEARTBEAT_SECONDS = 0.2

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # One file per run: two test runs on one machine must not share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}  # noqa: F405

# What a test changed for the worker processes it starts (tests/support.py start_worker(overrides=...)):
# they cannot see the test's `settings` fixture. EID_TEST_SETTINGS is a JSON object of any settings,
# applied last; JSON has no tuples, so a list becomes one where the setting above is a tuple
# (EID_JOBS_POLL_SECONDS).
for _name, _value in json.loads(os.environ.get("EID_TEST_SETTINGS") or "{}").items():
    globals()[_name] = tuple(_value) if isinstance(globals().get(_name), tuple) else _value
