"""A second partner site, wired to eid only through the four documented steps, does the round trip.

tests/second_site is a different content model (an Episode with one audio key, no tracks;
edits come back as Cuts), with its own settings, URLs, templates and database, run in its own
processes: `runserver` for the pages and `db_worker` for the way back and the auto-edits
(eid.jobs). It talks to the suite's Descript sandbox and moto's S3 over real HTTP, and the
sandbox's job callbacks come to its own runserver. If this site needed anything of partner_site,
eid's door would be in the wrong place.
"""

from __future__ import annotations

import hashlib
import json
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
# Auto-edits on this site: quick polls where they are the fallback, but slow enough with callbacks
# (30 s) that an auto-edit finishing in seconds shows the callbacks reached this site's own URLs.
JOBS_SETTINGS = {
    "EID_JOBS_POLL_FIRST_SECONDS": 0.5,
    "EID_JOBS_POLL_SECONDS": [0.5, 0.7],
    "EID_JOBS_POLL_MIN_SECONDS": 0.3,
    "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": 30.0,
    "EID_JOBS_STALE_SECONDS": 2.0,
}
QUICK_JOBS = {"queued_seconds": 0.0, "import_seconds": 0.3, "agent_seconds": 0.3, "publish_seconds": 0.3,
              "callbacks": True}
SANDBOX_API = settings.DESCRIPT_API_BASE


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
    env["SECOND_SITE_ORIGIN"] = f"http://127.0.0.1:{port}"  # Descript's job callbacks come here
    env["EID_TEST_SETTINGS"] = json.dumps(JOBS_SETTINGS)
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



def _auto_edit_settled(session: requests.Session, base: str, auto_edit_id: str) -> dict | None:
    state = session.get(f"{base}/auto-edits/{auto_edit_id}/status", timeout=10).json()
    return state if state["final"] else None


def _published_bytes(job_id: str) -> bytes:
    auth = {"Authorization": f"Bearer {settings.DESCRIPT_API_TOKEN}"}
    job = requests.get(f"{SANDBOX_API}/jobs/{job_id}", headers=auth, timeout=10).json()
    return requests.get(job["result"]["download_url"], timeout=10).content


def test_a_second_site_runs_auto_edits_through_eid_jobs_and_gets_cuts_back(second_site, sandbox, s3):
    base, run_django, db = second_site
    sandbox.configure_jobs(**QUICK_JOBS)
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    for key, freq in (("shows/ep7.wav", 550), ("shows/ep8.wav", 660)):
        s3.put_object(Bucket=bucket, Key=key, Body=wav_bytes(0.5, freq), ContentType="audio/wav")
    run_django("shell", "-c", (
        "from django.contrib.auth.models import User; from second_site.podcasts.models import Episode; "
        "u = User.objects.create_user('host', password='host-pass-1234'); "
        "Episode.objects.create(slug='ep-7', owner=u, title='Episode Seven', audio_key='shows/ep7.wav'); "
        "Episode.objects.create(slug='ep-8', owner=u, title='Episode Eight', audio_key='shows/ep8.wav')"))
    browser = _login(base, "host", "host-pass-1234")

    # Step 6: the panel on the episode's page starts an auto-edit of it, named by the adapter's ref (a slug).
    page = browser.get(f"{base}/episodes/ep-7/", timeout=10).text
    assert 'action="/auto-edits/start/ep-7/"' in page and 'data-ref="ep-7"' in page
    started = _post(browser, base, "/auto-edits/start/ep-7/", {"prompt": "Remove the ums", "media_type": "Audio"},
                    allow_redirects=False)
    assert started.status_code == 302, started.text
    auto_edit_id = re.fullmatch(r"/auto-edits/([0-9a-f-]{36})/", started.headers["Location"]).group(1)
    status_page = browser.get(urljoin(base, started.headers["Location"]), timeout=10)
    assert status_page.status_code == 200 and "Automatic edit of" in status_page.text
    assert "Episode Seven" in status_page.text

    # This site's own worker runs it at the sandbox; callbacks to this site's URL move it along.
    state = wait_until(lambda: _auto_edit_settled(browser, base, auto_edit_id), timeout=25, interval=0.3,
                       message="the auto-edit to end")
    assert state["state"] == "done", state["reason"]
    assert (state["result_ref"], state["version_number"], state["option"]) == ("ep-7", 1, "audio")
    assert [(s["kind"], s["state"]) for s in state["steps"]] == [
        ("import", "succeeded"), ("agent", "succeeded"), ("publish", "succeeded")]
    assert all(s["callbacks"] >= 1 for s in state["steps"]), state["steps"]

    # What Descript received: the adapter's one file (no multitrack sequence), the prompt.
    [imported] = [r["json"] for r in sandbox.requests("/v1/jobs/import/project_media") if r["method"] == "POST"]
    [(name, media)] = imported["add_media"].items()
    assert name == "Episode Seven (audio)" and "tracks" not in media and "/shows/ep7.wav" in media["url"]
    [agent] = [r["json"] for r in sandbox.requests("/v1/jobs/agent") if r["method"] == "POST"]
    assert agent["prompt"] == "Remove the ums"

    # Home as this site's own kind of edit: a cut of the episode, with the bytes Descript published.
    ((cut_key, cut_size),) = _rows(db, "SELECT audio_key, size FROM podcasts_cut")
    published = _published_bytes(state["steps"][2]["job_id"])
    assert s3.get_object(Bucket=bucket, Key=cut_key)["Body"].read() == published and cut_size == len(published)
    episode_page = browser.get(f"{base}/episodes/ep-7/", timeout=10).text
    assert 'data-cut="1"' in episode_page and "(version 1)" in episode_page

    # The command line in the second site's process: a batch of the other episode, watched to its end.
    out = run_django("descript", "batch", "ep-8", "--user", "host", "--prompt", "Tighten the intro", "--wait",
                     "--json")
    final = [json.loads(line) for line in out.splitlines() if '"final"' in line][-1]
    [(ref, state_of, version)] = [(d["item_ref"], d["state"], d["version_number"]) for d in final["auto_edits"]]
    assert (ref, state_of, version) == ("ep-8", "done", 1)
    assert _rows(db, "SELECT e.slug, c.number FROM podcasts_cut c JOIN podcasts_episode e ON e.id = c.episode_id "
                     "ORDER BY e.slug") == [("ep-7", 1), ("ep-8", 1)]
    assert _rows(db, "SELECT via, state FROM eid_jobs_autoedit ORDER BY created_at") == [("page", "done"),
                                                                                          ("cli", "done")]
