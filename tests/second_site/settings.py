"""A second partner site, as small as a site that adopts eid can be.

It reaches eid only through the four documented steps: `eid` in INSTALLED_APPS, eid's URLs
included, the settings block, one adapter (podcasts.adapter) and the button tag in a template;
and automatic edits through step 6: `eid.jobs` installed, its URLs, the adapter's option_names
and the panel tag.
Nothing here imports the demo partner (partner_site). The suite runs it in its own processes
(runserver, db_worker) with its own database, against the suite's sandbox and moto server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "second-site-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "eid",
    "eid.jobs",  # step 6
    "second_site.podcasts",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "second_site.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [HERE / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("SECOND_SITE_DB", ":memory:"),
                         "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# The settings block (step 2) and the adapter (step 3).
EID_CONTENT_ADAPTER = "second_site.podcasts.adapter.EpisodeContent"
_sandbox = f"http://127.0.0.1:{os.environ.get('TEST_SANDBOX_PORT', '0')}"
DESCRIPT_API_BASE = f"{_sandbox}/v1"
DESCRIPT_API_TOKEN = os.environ.get("SECOND_SITE_DESCRIPT_TOKEN", "")
DESCRIPT_PARTNER_DRIVE_ID = os.environ.get("SECOND_SITE_DRIVE_ID", "")
DESCRIPT_SANDBOX_ORIGINS = [_sandbox]
AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{os.environ.get('TEST_S3_PORT', '0')}"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing-secret"
AWS_STORAGE_BUCKET_NAME = os.environ.get("SECOND_SITE_BUCKET", "")
EID_EXPORT_POLL_SECONDS = 0.3
EID_EXPORT_HEARTBEAT_SECONDS = 0.2

# Step 6: Descript's job callbacks come to this origin (empty: polling alone).
EID_JOBS_CALLBACK_BASE = os.environ.get("SECOND_SITE_ORIGIN", "")

# What a test changes for this site's processes (a JSON object of settings, applied last), as
# partner_site/settings_test.py reads it: faster polls and timeouts than a real site would use.
for _name, _value in json.loads(os.environ.get("EID_TEST_SETTINGS") or "{}").items():
    globals()[_name] = _value
