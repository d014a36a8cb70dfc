"""Settings for the partner site, read from the environment (django-environ).

Every name here is one operators and scripts rely on; defaults are embedded so that a fresh
clone runs on SQLite with nothing configured. Production sets DEBUG=False, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL, the Descript token and drive id, and the bucket.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        # A public key signs sessions, password-reset links and CSRF tokens anyone can forge.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set, and DEBUG is off: the site will not start on a public development key. "
            "Set SECRET_KEY in the environment (or in .env beside manage.py) to a long random value, "
            "for example the output of: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = "insecure-dev-key-for-debug-only-0123456789abcdefghijklmnop"  # DEBUG on: this machine only
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_tasks",
    "django_tasks_db",
    "axes",  # login throttling and lockout (AXES_* below)
    "csp",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "partner_site.library",
    "eid",
    "eid.api",  # the REST API for pipelines (service tokens, import links; REST_FRAMEWORK below)
    "eid.webhooks",  # webhooks out to storage pipelines (EID_WEBHOOK_* below)
    "eid.jobs",  # Descript's jobs API: auto-edits (import, Underlord, publish; EID_JOBS_* below)
    "drf_spectacular",  # its OpenAPI document (/api/schema/)
    "drf_spectacular_sidecar",  # Swagger UI's files, served from our static files (/api/docs/)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from the app server (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into the lockout page (AXES_LOCKOUT_CALLABLE).
    "axes.middleware.AxesMiddleware",
    # Sync-only and last: the chain runs in the request's thread, one hop from the event loop.
    "partner_site.middleware.OneThreadPerRequest",
]

ROOT_URLCONF = "partner_site.urls"
WSGI_APPLICATION = "partner_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Parallel clicks and a worker share one file: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock up front (no upgrade deadlocks), and the busy timeout
    # makes a writer wait instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DB_POOL", default=True):
    # A pool per process (psycopg_pool): under ASGI every request runs in its own thread, so
    # thread-local persistent connections would mean a connection per concurrent request.
    # Code that waits on Descript hands its connection back first (eid.waiting), so a few
    # connections serve many waiting requests. DB_POOL_MAX_SIZE x processes must stay under
    # PostgreSQL's max_connections.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not as well
else:
    # Persistent connections, SQLite included: opening one (and running the PRAGMAs above) on
    # every request cost a click about 3 ms of its overhead over Descript's own answer time.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (the demo, the tests) serve straight from the apps' static folders.
WHITENOISE_USE_FINDERS = True
# WhiteNoise hands Django a synchronous file iterator; under ASGI Django reads it in a thread and
# warns on every static file. That is the intended cost here (static files are few and small).
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# HTTPS, under Django's own names. Off by default: a site behind a TLS-terminating proxy that
# redirects without SECURE_PROXY_SSL_HEADER loops forever, and HSTS cannot be taken back.
# `check --deploy` warns until production sets them (README: Running it for real).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy that sets it (and strips it from clients): "X-Forwarded-Proto,https", the header
# and the value that means the client used https (Django's HTTP_X_FORWARDED_PROTO form works too).
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            'SECURE_PROXY_SSL_HEADER is "<header>,<value>", for example "X-Forwarded-Proto,https"'
        )
    _header = _proxy_ssl_header[0].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (_header if _header.startswith("HTTP_") else f"HTTP_{_header}",
                               _proxy_ssl_header[1].strip())

# The task queue. The default is the database queue (django-tasks-db, `manage.py db_worker`):
# nothing more to run. TASKS_BACKEND=django_tasks_rq.RQBackend keeps the tasks in Redis
# (REDIS_URL) for RQ's workers instead: `manage.py rqworker --with-scheduler` (the scheduler moves
# delayed re-checks onto the queue when due) and one `manage.py rqcron eid.rq_cron` for the sweep.
TASKS_BACKEND = env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND}}
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# RQ stops a job that runs longer than this. eid's tasks are short (a copy runs on the worker's
# copy slots, under eid's own deadlines); the default is generous on purpose.
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env.int("RQ_JOB_TIMEOUT", default=6 * 3600)}}
# django-tasks-rq's job class runs the Task; eid's SimpleWorker runs each job in the worker's own
# process (no fork per job): a killed worker takes its job with it, as db_worker does, and the
# sweep hands the import on; per-process state (the database pool) lasts across jobs.
RQ = {"JOB_CLASS": "django_tasks_rq.Job", "WORKER_CLASS": "eid.rq_worker.DjangoSimpleWorker"}
if TASKS_BACKEND.startswith("django_tasks_rq."):
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]  # rqworker, rqcron; the backend's checks
# The cache holds the per-user throttles' counts (eid.throttle). In memory it is per process, so
# with several processes a user gets that many times the limit; CACHE_URL=redis://... shares it.
CACHE_URL = env.str("CACHE_URL", default="")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
# Per user: clicks on "Edit in Descript", landings from Descript and auto-edits started ("N/m"; empty turns one off).
EID_THROTTLE_RATES = {
    "click": env.str("EID_THROTTLE_CLICK", default="30/m"),
    "landing": env.str("EID_THROTTLE_LANDING", default="60/m"),
    "auto_edit": env.str("EID_THROTTLE_AUTO_EDIT", default="10/m"),  # auto-edits started from recording pages
}
# How often RQ's cron runs the stale-import sweep (eid.rq_cron); `eid_sweep --every N` on the
# database queue takes its period on the command line.
EID_SWEEP_SECONDS = env.int("EID_SWEEP_SECONDS", default=60)

# Auto-edits (eid.jobs). Descript POSTs each job's end to EID_JOBS_CALLBACK_BASE (this site's
# public https origin; empty: no callbacks, polling alone). The rest: eid.conf's defaults.
EID_JOBS_CALLBACK_BASE = env.str("EID_JOBS_CALLBACK_BASE", default="")
EID_JOBS_RATE_PER_MINUTE = env.int("EID_JOBS_RATE_PER_MINUTE", default=300)  # one budget per token, all processes
EID_JOBS_MAX_IN_FLIGHT = env.int("EID_JOBS_MAX_IN_FLIGHT", default=20)  # auto-edits at Descript at once
EID_JOBS_BATCH_IN_FLIGHT = env.int("EID_JOBS_BATCH_IN_FLIGHT", default=10)  # a batch's default share of them
EID_JOBS_FOLDER = env.str("EID_JOBS_FOLDER", default="Edit in Descript")  # the Descript folder of their projects
EID_JOBS_TEAM_ACCESS = env.str("EID_JOBS_TEAM_ACCESS", default="")
EID_JOBS_LANGUAGE = env.str("EID_JOBS_LANGUAGE", default="")
# Polling, Descript's documented cadence: the first poll of a job this long after its submit...
EID_JOBS_POLL_FIRST_SECONDS = env.float("EID_JOBS_POLL_FIRST_SECONDS", default=5.0)
# ...then every low to high seconds ("10,15"), spread so that a batch's polls do not come in waves...
EID_JOBS_POLL_SECONDS = env.tuple("EID_JOBS_POLL_SECONDS", cast=float, default=(10.0, 15.0))
if len(EID_JOBS_POLL_SECONDS) != 2 or not 0 < EID_JOBS_POLL_SECONDS[0] <= EID_JOBS_POLL_SECONDS[1]:
    raise ImproperlyConfigured('EID_JOBS_POLL_SECONDS is "<low>,<high>" seconds between polls of a job, for '
                               'example "10,15" (Descript\'s cadence), low > 0 and not above high')
# ...never two polls of one job closer than this, whatever asked for them (Descript's floor: 3 s)...
EID_JOBS_POLL_MIN_SECONDS = env.float("EID_JOBS_POLL_MIN_SECONDS", default=3.0)
# ...and with callbacks on, a poll this often only in case a callback is lost.
EID_JOBS_POLL_WITH_CALLBACKS_SECONDS = env.float("EID_JOBS_POLL_WITH_CALLBACKS_SECONDS", default=60.0)
EID_JOBS_GIVE_UP_SECONDS = env.float("EID_JOBS_GIVE_UP_SECONDS", default=6 * 3600.0)  # a step that never stops fails
EID_JOBS_STALE_SECONDS = env.float("EID_JOBS_STALE_SECONDS", default=120.0)  # no worker moved it: the sweep nudges it

# The API (/api/v1/): service tokens only (no session or cookie: the pages' logins are Django's
# own, not DRF's), JSON only, one error shape, per-token throttles. Scopes: api_read (GET),
# api_write (other methods), or a view's own throttle_scope.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["eid.api.auth.ServiceTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["eid.api.permissions.HasServiceToken", "eid.api.permissions.TokenMayWrite"],
    "DEFAULT_THROTTLE_CLASSES": ["eid.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_read": env.str("API_THROTTLE_READ", default="600/min"),
        "api_write": env.str("API_THROTTLE_WRITE", default="120/min"),
        "import_links": env.str("API_THROTTLE_IMPORT_LINKS", default="60/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "eid.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Edit in Descript: partner API",
    "DESCRIPTION": (
        "For a partner's storage pipeline. Every request but this document carries a service token: "
        "`Authorization: Bearer <token>` (made with `manage.py create_api_token` or in the admin). "
        "Every error is JSON: `{\"code\": ..., \"detail\": ...}`, plus `errors` (per field) on a 400."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The API document's name for the auto-edits' states (three of eid's fields are called "state").
    "ENUM_NAME_OVERRIDES": {"AutoEditStateEnum": "eid.jobs.models.AutoEdit.State"},
}

# --- Descript (eid) -------------------------------------------------------------------------
# The door between eid and the library's content (eid.content.ContentAdapter).
EID_CONTENT_ADAPTER = env.str("EID_CONTENT_ADAPTER", default="partner_site.library.adapter.LibraryContent")
DESCRIPT_API_BASE = env.str("DESCRIPT_API_BASE", default="https://descriptapi.com/v1").rstrip("/")
DESCRIPT_API_TOKEN = env.str("DESCRIPT_API_TOKEN", default="")
DESCRIPT_PARTNER_DRIVE_ID = env.str("DESCRIPT_PARTNER_DRIVE_ID", default="")
DESCRIPT_HELP_URL = env.str(
    "DESCRIPT_HELP_URL",
    default="https://help.descript.com/hc/en-us/articles/10164098416909-Supported-file-types",
)
# Time budget for one click's call to Descript, waits for Retry-After included.
DESCRIPT_CLICK_BUDGET_SECONDS = env.float("DESCRIPT_CLICK_BUDGET_SECONDS", default=10.0)
DESCRIPT_CONNECT_TIMEOUT = env.float("DESCRIPT_CONNECT_TIMEOUT", default=3.0)
DESCRIPT_READ_TIMEOUT = env.float("DESCRIPT_READ_TIMEOUT", default=8.0)
# Hosts whose share pages may come back to us.
DESCRIPT_SHARE_HOSTS = env.list("DESCRIPT_SHARE_HOSTS", default=["share.descript.com"])
# Origins of the offline Descript sandbox (e.g. http://127.0.0.1:8001): trusted over plain
# http on a loopback address, for import links and share pages. Set only by `make demo` and the
# tests; production leaves it empty, and a system check warns when it is set without DEBUG.
DESCRIPT_SANDBOX_ORIGINS = env.list("DESCRIPT_SANDBOX_ORIGINS", default=[])

# --- Storage --------------------------------------------------------------------------------
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="recordings")
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="us-east-1")
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
EID_PRESIGN_TTL_SECONDS = env.int("EID_PRESIGN_TTL_SECONDS", default=172800)
# The library's own download links are short-lived: they are for the person clicking now.
LIBRARY_DOWNLOAD_TTL_SECONDS = env.int("LIBRARY_DOWNLOAD_TTL_SECONDS", default=900)

# --- The way back ---------------------------------------------------------------------------
EID_SHARE_PAGE_TIMEOUT = env.float("EID_SHARE_PAGE_TIMEOUT", default=10.0)
EID_EXPORT_POLL_SECONDS = env.float("EID_EXPORT_POLL_SECONDS", default=45.0)
EID_EXPORT_GIVE_UP_SECONDS = env.float("EID_EXPORT_GIVE_UP_SECONDS", default=3 * 3600.0)
# While copying, progress and liveness are written this often; a row whose heartbeat is older
# than EID_EXPORT_STALE_SECONDS is taken to be abandoned by a dead worker.
EID_EXPORT_HEARTBEAT_SECONDS = env.float("EID_EXPORT_HEARTBEAT_SECONDS", default=5.0)
EID_EXPORT_STALE_SECONDS = env.float("EID_EXPORT_STALE_SECONDS", default=120.0)
EID_EXPORT_MAX_MEDIA_BYTES = env.int("EID_EXPORT_MAX_MEDIA_BYTES", default=20 * 1024**3)
# A worker copies up to EID_WORKER_COPY_SLOTS imports at once, each on its own thread, and goes
# on taking tasks meanwhile; an import that finds every slot busy is queued again this much later.
EID_WORKER_COPY_SLOTS = env.int("EID_WORKER_COPY_SLOTS", default=4)
EID_WORKER_BUSY_RETRY_SECONDS = env.float("EID_WORKER_BUSY_RETRY_SECONDS", default=5.0)
EID_WORKER_STOP_GRACE_SECONDS = env.float("EID_WORKER_STOP_GRACE_SECONDS", default=5.0)
# A media copy averaging under the minimum rate over the window, or past base + size / minimum
# rate overall, is stopped and tried again after EID_EXPORT_SLOW_RETRY_SECONDS (doubled each time).
EID_EXPORT_MIN_BYTES_PER_SECOND = env.int("EID_EXPORT_MIN_BYTES_PER_SECOND", default=64 * 1024)
EID_EXPORT_RATE_WINDOW_SECONDS = env.float("EID_EXPORT_RATE_WINDOW_SECONDS", default=30.0)
EID_EXPORT_DEADLINE_BASE_SECONDS = env.float("EID_EXPORT_DEADLINE_BASE_SECONDS", default=120.0)
EID_EXPORT_SLOW_RETRY_SECONDS = env.float("EID_EXPORT_SLOW_RETRY_SECONDS", default=300.0)

# --- Webhooks out (eid.webhooks) ------------------------------------------------------------
# One attempt's time limit; the waits after each failed attempt (seconds, each +/- the jitter
# fraction; past the last the delivery is given up); how long a rotated-out secret keeps signing.
# Receivers must be https on a public address, unless inside EID_WEBHOOK_ALLOWED_NETWORKS
# (CIDR ranges, e.g. 10.20.0.0/16, for a receiver on your own private network).
EID_WEBHOOK_TIMEOUT = env.float("EID_WEBHOOK_TIMEOUT", default=10.0)
EID_WEBHOOK_RETRY_SCHEDULE = env.list(
    "EID_WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200])
EID_WEBHOOK_RETRY_JITTER = env.float("EID_WEBHOOK_RETRY_JITTER", default=0.2)
EID_WEBHOOK_SECRET_OVERLAP_SECONDS = env.float("EID_WEBHOOK_SECRET_OVERLAP_SECONDS", default=24 * 3600.0)
EID_WEBHOOK_ALLOWED_NETWORKS = env.list("EID_WEBHOOK_ALLOWED_NETWORKS", default=[])

# --- Logins ---------------------------------------------------------------------------------
# django-axes: after AXES_FAILURE_LIMIT failed logins for one username from one address, that
# pair is locked out for AXES_COOLOFF_MINUTES (a 429 page, partner_site/security.py); a success
# clears the count. Per pair, so nobody can lock another person out from elsewhere, and one
# office behind one address is not locked out by one person's typos.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "partner_site.security.locked_out"
# The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies that append to
# X-Forwarded-For, the address the outermost of them saw (partner_site/security.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "partner_site.security.client_ip"

# Password reset mails a link: routed only when an SMTP server is configured (partner_site/urls.py).
EMAIL_HOST = env.str("EMAIL_HOST", default="")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
    DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# No inline script or style anywhere: the pages load site.css and eid.js from /static/.
# form-action also governs where a form's redirect may go (Chromium blocks a POST answered by a
# 302 to an origin it does not list): the click's 302 goes to Descript's import link, on
# web.descript.com (not DESCRIPT_API_BASE's host), or to the sandbox in the demo and the tests.
CSP_FORM_ACTION_EXTRA = env.list("CSP_FORM_ACTION_EXTRA", default=["https://web.descript.com"])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *CSP_FORM_ACTION_EXTRA, *DESCRIPT_SANDBOX_ORIGINS],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "eid.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # urllib3 logs full request lines at DEBUG, presigned query strings included.
        # No handlers of its own: Django's default console handler printed every request warning
        # a second time. Records still propagate to the root's (redacting) handler.
        "django": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
    },
}
CSRF_FAILURE_VIEW = "partner_site.library.views.csrf_failure"
