"""Safe defaults of the demo partner site (issue 8): each found by probing, each tested here.

Settings that are read from the environment at start-up are tested in a fresh process (`manage.py`
or `python -c`) with a minimal environment, so nothing of the suite's own settings leaks in; what
the running site does is tested through the test client. The browser half (no CSP violation on
the pages, the button still works) is tests/test_csp_browser.py.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import clear_url_caches
from django.utils import timezone

from demo.media import wav_bytes

ROOT = Path(__file__).resolve().parent.parent
DRIVE = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"


# --- fresh processes ----------------------------------------------------------------------------


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh deployment: nothing from the suite's own (no SECRET_KEY, no
    sandbox origins, no DEBUG), a throwaway SQLite file, the production settings module."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "partner_site.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


SETTINGS_PROBE = (
    "import json, django; django.setup()\n"
    "from django.conf import settings as s\n"
    "names = ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS',\n"
    "         'SECURE_HSTS_PRELOAD', 'SECURE_PROXY_SSL_HEADER', 'CONTENT_SECURITY_POLICY',\n"
    "         'AXES_FAILURE_LIMIT', 'TRUSTED_PROXY_COUNT', 'EMAIL_HOST', 'EMAIL_BACKEND']\n"
    "out = {n: getattr(s, n, None) for n in names}\n"
    "out['AXES_COOLOFF_SECONDS'] = s.AXES_COOLOFF_TIME.total_seconds()\n"
    "print(json.dumps(out))\n"
)


def settings_under(tmp_path: Path, **env: str) -> dict:
    """The production settings module as loaded under this environment (a key is given)."""
    full = clean_env(tmp_path, SECRET_KEY="k" * 60, **env)
    done = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- 1. no SECRET_KEY, DEBUG off: the site refuses to start ---------------------------------------


def test_without_secret_key_and_debug_off_the_site_refuses_to_start_and_says_how_to_fix_it(tmp_path):
    done = manage(clean_env(tmp_path), "check")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set"), done.stderr
    assert "secrets.token_urlsafe(50)" in last  # how to make one
    # An empty value is no key either (a blank line in .env, an unset CI variable).
    assert manage(clean_env(tmp_path, SECRET_KEY=""), "check").returncode != 0
    # The WSGI entry point gunicorn imports fails the same way: no worker boots on a public key.
    wsgi = subprocess.run([sys.executable, "-c", "import partner_site.wsgi"], cwd=ROOT, env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert wsgi.returncode != 0 and "SECRET_KEY is not set" in wsgi.stderr


def test_with_a_secret_key_the_site_starts(tmp_path):
    done = manage(clean_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50)), "check")
    assert done.returncode == 0, done.stderr
    assert "System check identified" in done.stdout + done.stderr


def test_debug_on_without_a_key_runs_on_a_development_key(tmp_path):
    """A developer's `DEBUG=true manage.py runserver` needs no key (the demo sets DEBUG on)."""
    done = manage(clean_env(tmp_path, DEBUG="true"), "check")
    assert done.returncode == 0, done.stderr


def test_the_suite_and_its_subprocesses_have_their_own_key():
    assert settings.SECRET_KEY.startswith("test-secret-key")
    assert os.environ["SECRET_KEY"] == settings.SECRET_KEY  # inherited by the workers the tests start


# --- 2. logins: throttled, locked out; every password validator ---------------------------------


def test_axes_comes_first_and_its_middleware_last():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    # Last but for the pass-through that keeps the chain in one thread (partner_site.middleware).
    assert settings.MIDDLEWARE[-2:] == ["axes.middleware.AxesMiddleware", "partner_site.middleware.OneThreadPerRequest"]
    assert "axes" in settings.INSTALLED_APPS
    assert settings.AXES_ENABLED is True  # the suite runs with axes on, as production does
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_limit_and_cool_off_come_from_the_environment(tmp_path):
    default = settings_under(tmp_path)
    assert default["AXES_FAILURE_LIMIT"] == 5 and default["AXES_COOLOFF_SECONDS"] == 15 * 60
    set_ = settings_under(tmp_path, AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="60", TRUSTED_PROXY_COUNT="1")
    assert set_["AXES_FAILURE_LIMIT"] == 3 and set_["AXES_COOLOFF_SECONDS"] == 3600
    assert set_["TRUSTED_PROXY_COUNT"] == 1


def log_in(client, username, password, address="192.0.2.10"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_repeated_failures_lock_the_login_out_with_a_plain_429_page(client, alice, bob):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = log_in(client, "alice", "wrong-password")
        assert response.status_code == 200
        assert "do not match" in response.content.decode()

    locked = log_in(client, "alice", "wrong-password")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins" in html and f"{limit} times in a row" in html and "15 minutes" in html
    assert "Traceback" not in html
    assert locked["Retry-After"] == str(15 * 60)
    assert locked["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in locked  # the lockout page is a page like any other

    # The right password no longer helps, from the same address.
    right = log_in(client, "alice", "alice-pass-1234")
    assert right.status_code == 429 and "_auth_user_id" not in client.session

    # Per (username, address): bob at the same address and alice elsewhere are not locked out.
    assert log_in(client, "bob", "bob-pass-1234").status_code == 302
    client.logout()
    assert log_in(client, "alice", "alice-pass-1234", address="198.51.100.7").status_code == 302


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off(client, alice):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "alice", "wrong-password")
    assert log_in(client, "alice", "alice-pass-1234").status_code == 429
    # The cool-off has passed (moving the attempts back is the only way short of waiting).
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert log_in(client, "alice", "alice-pass-1234").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_clears_the_count(client, alice):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "alice", "typo")
    assert log_in(client, "alice", "alice-pass-1234").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "alice", "typo").status_code == 200


@pytest.mark.django_db
def test_the_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-pass-1234")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/admin/login/", {"username": "root", "password": "nope"}, REMOTE_ADDR="192.0.2.20")
    assert response.status_code == 429


def test_client_address_behind_trusted_proxies(rf, settings):
    from partner_site.security import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.23")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.5"  # no proxy: X-Forwarded-For is the client's own words
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "198.51.100.23"  # what our one proxy saw; the rest can be forged
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.66"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(rf.get("/", REMOTE_ADDR="10.0.0.5")) == "10.0.0.5"


def test_all_four_password_validators():
    names = {v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names == {"UserAttributeSimilarityValidator", "MinimumLengthValidator",
                     "CommonPasswordValidator", "NumericPasswordValidator"}
    for weak in ("short1", "password123", "83726451920"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct horse battery staple 7")


# --- 3. Content-Security-Policy ------------------------------------------------------------------


def csp_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


@pytest.mark.django_db
def test_every_page_has_the_strict_policy(client, alice_client, make_recording, alice, sandbox):
    recording = make_recording(alice, "Policy", mix=("alice/policy.wav", wav_bytes(0.2), "audio/wav"))
    share = sandbox.create_share(partner=DRIVE, source=str(recording.source_id), media_bytes=1000)
    pages = {
        "library": alice_client.get("/"),
        "recording": alice_client.get(f"/recordings/{recording.pk}/"),
        "landing": alice_client.get("/descript/import/new", {"url": share["share_url"], "title": "Cut"}),
        "not found": alice_client.get("/recordings/999999/"),
        "login": client.get("/accounts/login/"),
        "admin login": client.get("/admin/login/"),
    }
    for name, response in pages.items():
        policy = csp_of(response)
        assert policy["default-src"] == ["'self'"], name
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], name
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], name
        assert policy["form-action"][0] == "'self'", name
        assert "https://web.descript.com" in policy["form-action"], name
        assert not any("unsafe" in source or source.startswith("data:") or source == "*"
                       for sources in policy.values() for source in sources), name
    assert pages["not found"].status_code == 404


def test_form_action_lists_descript_import_links_and_the_sandbox_only_when_set(tmp_path):
    policy = settings_under(tmp_path)["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert policy["form-action"] == ["'self'", "https://web.descript.com"]
    policy = settings_under(tmp_path, CSP_FORM_ACTION_EXTRA="https://web.descript.com,https://eu.descript.example",
                            DESCRIPT_SANDBOX_ORIGINS="http://127.0.0.1:8001")["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert policy["form-action"] == ["'self'", "https://web.descript.com", "https://eu.descript.example",
                                     "http://127.0.0.1:8001"]


TEMPLATE_DIRS = [ROOT / "templates", ROOT / "eid" / "templates"]
INLINE = [
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_has_inline_script_or_style():
    templates = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(templates) >= 10
    found = [f"{p.relative_to(ROOT)}: {what}" for p in templates for rx, what in INLINE if rx.search(p.read_text())]
    assert found == []


@pytest.mark.django_db
def test_the_pages_load_their_styles_from_a_static_file(client):
    page = client.get("/accounts/login/").content.decode()
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', page).group(1)
    assert href.endswith("library/site.css")
    css = client.get(href)
    assert css.status_code == 200 and css["Content-Type"].startswith("text/css")
    assert b".btn-descript" in b"".join(css.streaming_content if css.streaming else [css.content])


# --- 4. HTTPS: HSTS and the redirect, by environment; private pages -----------------------------


def test_https_settings_come_from_the_environment_under_djangos_names(tmp_path):
    default = settings_under(tmp_path)
    assert default["SECURE_SSL_REDIRECT"] is False and default["SECURE_HSTS_SECONDS"] == 0
    assert default["SECURE_PROXY_SSL_HEADER"] is None
    set_ = settings_under(tmp_path, SECURE_SSL_REDIRECT="true", SECURE_HSTS_SECONDS="31536000",
                          SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="true",
                          SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https")
    assert set_["SECURE_SSL_REDIRECT"] is True and set_["SECURE_HSTS_SECONDS"] == 31536000
    assert set_["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and set_["SECURE_HSTS_PRELOAD"] is True
    assert set_["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # Django's own META form is accepted as it is.
    meta = settings_under(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert meta["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_malformed_proxy_header_setting_stops_the_start(tmp_path):
    done = manage(clean_env(tmp_path, SECRET_KEY="k" * 60, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"), "check")
    assert done.returncode != 0 and '"X-Forwarded-Proto,https"' in done.stderr


@pytest.mark.django_db
def test_redirect_to_https_and_hsts_when_set(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    behind_proxy = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 200
    assert behind_proxy["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def cache_directives(response) -> set[str]:
    return {d.strip().lower() for d in response.get("Cache-Control", "").split(",") if d.strip()}


@pytest.mark.django_db
def test_pages_that_show_a_users_library_are_private_and_never_stored(alice_client, make_recording, alice):
    recording = make_recording(alice, "Private", mix=("alice/private.wav", wav_bytes(0.2), "audio/wav"))
    for url in ("/", f"/recordings/{recording.pk}/"):
        response = alice_client.get(url)
        assert response.status_code == 200
        assert {"private", "no-store"} <= cache_directives(response), url
    download = alice_client.get(f"/files/{recording.files.get().pk}/download/")
    assert download.status_code == 302 and {"private", "no-store"} <= cache_directives(download)


# --- 5. password reset only with an email server ------------------------------------------------


@pytest.mark.django_db
def test_without_email_password_reset_is_not_routed_but_login_logout_and_change_are(client, alice_client):
    assert not settings.EMAIL_HOST
    for url in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/",
                "/accounts/reset/MQ/set-password/"):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"email": "alice@example.com"}).status_code == 404, url
    assert client.get("/accounts/login/").status_code == 200
    assert alice_client.get("/accounts/password_change/").status_code == 200
    assert alice_client.post("/accounts/logout/").status_code == 302


@pytest.fixture
def urls_with_email():
    """partner_site.urls as loaded with EMAIL_HOST set; reloaded as it was afterwards."""
    import partner_site.urls

    with override_settings(EMAIL_HOST="smtp.example.test"):
        importlib.reload(partner_site.urls)
        clear_url_caches()
        yield
    importlib.reload(partner_site.urls)
    clear_url_caches()


@pytest.mark.django_db
def test_with_an_email_server_password_reset_sends_a_working_link(client, django_user_model, urls_with_email):
    # pytest-django swaps in the in-memory mail backend; production gets SMTP from EMAIL_HOST.
    django_user_model.objects.create_user("carol", email="carol@example.com", password="carol-pass-1234")
    assert client.get("/accounts/password_reset/").status_code == 200
    sent = client.post("/accounts/password_reset/", {"email": "carol@example.com"})
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()


def test_email_settings_follow_email_host(tmp_path):
    assert settings_under(tmp_path)["EMAIL_HOST"] == ""
    assert settings_under(tmp_path, EMAIL_HOST="smtp.example.test")["EMAIL_BACKEND"] == (
        "django.core.mail.backends.smtp.EmailBackend")


# --- 6. the site's views answer only the methods they serve -------------------------------------


@pytest.mark.django_db
def test_the_sites_views_answer_get_and_head_only(alice_client, make_recording, alice):
    recording = make_recording(alice, "Methods", mix=("alice/methods.wav", wav_bytes(0.2), "audio/wav"))
    media = recording.files.get()
    for url in ("/", f"/recordings/{recording.pk}/", f"/files/{media.pk}/download/"):
        assert alice_client.head(url).status_code in (200, 302), url
        for method in ("post", "put", "patch", "delete"):
            response = getattr(alice_client, method)(url)
            assert response.status_code == 405, (method, url)
            assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}, (method, url)


@pytest.mark.django_db
def test_the_method_is_refused_before_the_login_is_asked_for(client):
    assert client.post("/").status_code == 405


# --- 7. check --deploy with the documented production environment -------------------------------

# The production environment the README documents (values are examples; the key is made fresh).
PRODUCTION_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "studio.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://studio.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "TRUSTED_PROXY_COUNT": "1",
    "DESCRIPT_API_TOKEN": "descript-token-for-the-check",
    "DESCRIPT_PARTNER_DRIVE_ID": DRIVE,
    "EID_JOBS_CALLBACK_BASE": "https://studio.example.com",
}


def test_check_deploy_with_the_documented_production_environment_is_clean(tmp_path):
    env = clean_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION_ENV)
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_check_deploy_names_what_is_missing_without_it(tmp_path):
    """The same check does warn on the bare defaults: it is the guard, not a formality."""
    done = manage(clean_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50)), "check", "--deploy")
    out = done.stdout + done.stderr
    for warning in ("security.W004", "security.W008", "eid.W001"):
        assert warning in out, out
