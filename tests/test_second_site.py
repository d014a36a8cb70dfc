"""A second partner site, wired to eid only through the four documented steps, does the round trip.

tests/second_site is a different content model (an Episode with one audio key, no tracks;
edits come back as Cuts), with its own settings, URLs, templates and database, run in its own
processes: `runserver` for the pages and `db_worker` for the way back. It talks to the suite's
Descript sandbox and moto's S3 over real HTTP. If this site needed anything of partner_site,
eid's door would be in the wrong place.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from django.conf import settings

from demo.media import wav_bytes
from support import ARTIFACTS, ROOT, free_port, wait_until

HERE = Path(__file__).resolve().parent


@pytest.fixture
def second_site(tmp_path, sandbox_server, sandbox, s3):
    """The second site's database, web process and worker; yields (base url, run_django, db path)."""
    db = tmp_path / "second.sqlite3"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(HERE),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "second_site.settings",
        "SECOND_SITE_DB": str(db),
        "SECOND_SITE_DESCRIPT_TOKEN": settings.DESCRIPT_API_TOKEN,
        "SECOND_SITE_DRIVE_ID": settings.DESCRIPT_PARTNER_DRIVE_ID,
        "SECOND_SITE_BUCKET": settings.AWS_STORAGE_BUCKET_NAME,
        "TEST_S3_PORT": str(settings.TEST_S3_PORT),
        "TEST_SANDBOX_PORT": str(settings.TEST_SANDBOX_PORT),
    }

    def run_django(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run_django("migrate", "--no-input", "-v", "0")
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "second-site.log", "ab")
    procs = [
        subprocess.Popen([sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "django", "db_worker", "--interval", "0.1", "--no-startup-delay"],
                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
    ]
    base = f"http://127.0.0.1:{port}"
    previous_import_url = sandbox_server.config.partner_import_url
    sandbox_server.config.partner_import_url = f"{base}/descript/import/new"
    try:
        wait_until(lambda: _answers(base), timeout=30, message="the second site to start")
        yield base, run_django, db
    finally:
        sandbox_server.config.partner_import_url = previous_import_url
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/login/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/login/", timeout=10)
    answer = session.post(f"{base}/login/", data={"username": username, "password": password,
                                                  "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                          headers={"Referer": f"{base}/login/"}, timeout=10)
    assert answer.status_code == 200 and "<h1>Episodes</h1>" in answer.text
    return session


def _post(session: requests.Session, base: str, path: str, data: dict | None = None, **kwargs):
    data = dict(data or {}, csrfmiddlewaretoken=session.cookies["csrftoken"])
    return session.post(urljoin(base, path), data=data, headers={"Referer": urljoin(base, path)}, timeout=30,
                        **kwargs)


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _settled(session: requests.Session, status_url: str) -> dict | None:
    state = session.get(status_url, params={"format": "json"}, timeout=10).json()
    return state if state["state"] in ("done", "failed") else None


def test_a_second_site_does_the_click_and_the_way_back_through_the_adapter(second_site, sandbox, s3):
    base, run_django, db = second_site
    original = wav_bytes(0.5, 550)
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    s3.put_object(Bucket=bucket, Key="shows/ep7.wav", Body=original, ContentType="audio/wav")
    run_django("shell", "-c", (
        "from django.contrib.auth.models import User; from second_site.podcasts.models import Episode; "
        "u = User.objects.create_user('host', password='host-pass-1234'); "
        "Episode.objects.create(slug='ep-7', owner=u, title='Episode Seven', audio_key='shows/ep7.wav'); "
        "Episode.objects.create(slug='notes', owner=u, title='Show notes', audio_key='shows/notes.txt')"))
    (source_uuid,) = _rows(db, "SELECT source_uuid FROM podcasts_episode WHERE slug = 'ep-7'")[0]
    browser = _login(base, "host", "host-pass-1234")

    # Step 4: the tag renders the button beside the audio, and nothing for what Descript cannot import.
    page = browser.get(f"{base}/", timeout=10).text
    assert 'action="/descript/edit/ep-7/audio/"' in page
    assert "/descript/edit/notes/" not in page

    # The click: the adapter's files and source id reach Descript, and the user goes to the import link.
    click = _post(browser, base, "/descript/edit/ep-7/audio/", allow_redirects=False)
    assert click.status_code == 302, click.text
    (sent,) = [r["json"] for r in sandbox.requests("/v1/edit_in_descript/schema") if r["method"] == "POST"]
    schema = sent["project_schema"]
    assert schema["source_id"] == str(uuid.UUID(source_uuid))  # SQLite keeps 32 hex digits
    assert [f["name"] for f in schema["files"]] == ["Episode Seven (audio)"]
    assert "start_offset" not in schema["files"][0]  # one file: no multitrack offsets
    imported = requests.get(click.headers["Location"], timeout=30)
    assert re.search(r'data-sha256="%s"' % hashlib.sha256(original).hexdigest(), imported.text)
    assert _rows(db, "SELECT item_ref, item_title, outcome FROM eid_handoff") == [("ep-7", "Episode Seven", "ok")]

    # The way back: publish, land on the second site, confirm; its worker copies and the adapter stores a cut.
    action = re.search(r'<form[^>]*action="([^"]*/publish)"', imported.text).group(1)
    published = requests.post(urljoin(click.headers["Location"], action), data={"title": "Tighter"}, timeout=30)
    send = unescape(re.search(r'id="send-to-partner" href="([^"]+)"', published.text).group(1))
    assert send.startswith(f"{base}/descript/import/new?")
    landing = browser.get(send, timeout=30)
    assert landing.status_code == 200 and "Edited version of" in landing.text and "Episode Seven" in landing.text
    url = unescape(re.search(r'name="url" value="([^"]+)"', landing.text).group(1))
    confirmed = _post(browser, base, "/descript/import/new", {"url": url, "title": "Tighter"})
    assert "/descript/imports/" in confirmed.url
    state = wait_until(lambda: _settled(browser, confirmed.url), timeout=60, message="the import to settle")
    assert state["state"] == "done", state["reason"]
    assert (state["version"], state["item_title"], state["item_url"]) == (1, "Episode Seven", "/#ep-7")
    ((cut_key, cut_size),) = _rows(db, "SELECT audio_key, size FROM podcasts_cut")
    assert s3.get_object(Bucket=bucket, Key=cut_key)["Body"].read() == original and cut_size == len(original)
    assert "Cut 1: Tighter" in browser.get(f"{base}/", timeout=10).text

    # De-duplication: the same share page again is the same import, not a second cut.
    again = browser.get(send, timeout=30)
    assert again.url == confirmed.url
    assert _rows(db, "SELECT count(*) FROM eid_returnedexport") == [(1,)]

    # A share page with no partner tags becomes a new episode of this user, through the same adapter.
    untagged = sandbox.create_share(title="Fresh take", media_bytes=3000, seed="untagged")
    confirmed = _post(browser, base, "/descript/import/new", {"url": untagged["share_url"], "title": "Fresh take"})
    state = wait_until(lambda: _settled(browser, confirmed.url), timeout=60, message="the second import")
    assert (state["state"], state["version"], state["item_title"]) == ("done", None, "Fresh take")
    assert _rows(db, "SELECT count(*) FROM podcasts_cut") == [(1,)]
    (new_key,) = _rows(db, "SELECT audio_key FROM podcasts_episode WHERE title = 'Fresh take'")[0]
    stored = s3.get_object(Bucket=bucket, Key=new_key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == untagged["media_sha256"]

