"""The round trip with every part real: the site over HTTP, the sandbox, moto, and a worker process."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from html import unescape
from urllib.parse import urljoin

import pytest
import requests
from django.conf import settings

from demo.media import wav_bytes
from eid.models import ReturnedExport
from library_rows import version_of
from partner_site.library.models import RecordingVersion

from support import ARTIFACTS, ROOT, start_worker, stop_process, subprocess_env, wait_until
from support import redis_url, task_queue  # noqa: F401  (fixtures: each test runs on both queues)

pytestmark = pytest.mark.django_db(transaction=True)


def csrf(session: requests.Session, base: str) -> str:
    return session.cookies.get("csrftoken") or ""


def login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf(session, base), "next": "/"},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    assert answer.status_code == 200 and "Your recordings" in answer.text
    return session


def post_form(session, base, path, data=None, **kwargs):
    data = dict(data or {}, csrfmiddlewaretoken=csrf(session, base))
    return session.post(urljoin(base, path), data=data, headers={"Referer": urljoin(base, path)}, timeout=30, **kwargs)


@pytest.fixture
def worker(tmp_path, task_queue):
    """Start workers of the test's queue: db_worker, or RQ's rqworker (skipped without Redis)."""
    ARTIFACTS.mkdir(exist_ok=True)
    procs = []

    def start():
        proc = start_worker(ARTIFACTS / f"worker-{task_queue}.log", queue=task_queue)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


def test_full_round_trip_over_real_http(live_server, sandbox_server, sandbox, make_recording, alice, worker, s3):
    original = wav_bytes(0.6, 330)
    recording = make_recording(alice, "Interview", mix=("alice/interview.wav", original, "audio/wav"))
    sandbox_server.config.partner_import_url = f"{live_server.url}/descript/import/new"
    sandbox_server.config.render_seconds = 1.0
    base = live_server.url
    browser = login(base, "alice", "alice-pass-1234")

    # The click: a 302 to the sandbox's one-time import page.
    click = post_form(browser, base, f"/descript/edit/{recording.pk}/mix/", allow_redirects=False)
    assert click.status_code == 302
    imported = requests.get(click.headers["Location"], timeout=30)
    assert 'data-ok="true"' in imported.text
    assert re.search(r'data-sha256="%s"' % hashlib.sha256(original).hexdigest(), imported.text)

    # Publish in "Descript", then follow its "Send to partner" link back to us.
    action = re.search(r'<form[^>]*action="([^"]*/publish)"', imported.text).group(1)
    published = requests.post(urljoin(click.headers["Location"], action), data={"title": "Tight cut"}, timeout=30)
    share_page = published.text
    send = unescape(re.search(r'id="send-to-partner" href="([^"]+)"', share_page).group(1))
    assert send.startswith(f"{base}/descript/import/new?")
    landing = browser.get(send, timeout=30)
    assert landing.status_code == 200 and "Edited version of" in landing.text and "Interview" in landing.text
    url = unescape(re.search(r'name="url" value="([^"]+)"', landing.text).group(1))
    title = unescape(re.search(r'name="title" value="([^"]*)"', landing.text).group(1))
    confirmed = post_form(browser, base, "/descript/import/new", {"url": url, "title": title})
    assert confirmed.status_code == 200 and "/descript/imports/" in confirmed.url

    worker()
    export = wait_until(
        lambda: ReturnedExport.objects.filter(state__in=["done", "failed"]).first(), timeout=60, message="import"
    )
    assert export.state == "done", export.reason
    version = RecordingVersion.objects.get(recording=recording)
    audio = version.assets.get(kind="audio")
    stored = s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=audio.key)["Body"].read()
    assert stored == original  # the sandbox publishes the media it imported from us
    status = browser.get(confirmed.url, timeout=10)
    assert "Done" in status.text and f"/recordings/{recording.pk}/" in status.text
    page = browser.get(f"{base}/recordings/{recording.pk}/", timeout=10)
    assert "Version 1: Tight cut" in page.text


def test_a_worker_killed_mid_copy_is_finished_by_another_exactly_once(
    live_server, sandbox_server, sandbox, make_recording, alice, worker, s3, client
):
    recording = make_recording(alice, "Long show", mix=("alice/long.wav", wav_bytes(0.2), "audio/wav"))
    size = 40 * 1024 * 1024
    share = sandbox.create_share(partner=settings.DESCRIPT_PARTNER_DRIVE_ID, source=str(recording.source_id),
                                 media_bytes=size, seed="killed")
    # Slow the media down so the copy is surely under way when the worker dies.
    sandbox.add_fault(path=f"/media/{share['share_id']}/audio.m4a", throttle_bps=4 * 1024 * 1024)
    client.force_login(alice)
    client.post("/descript/import/new", {"url": share["share_url"], "title": "Long cut"})
    export_id = ReturnedExport.objects.get().pk

    first = worker()
    wait_until(lambda: ReturnedExport.objects.get(pk=export_id).bytes_copied > 9 * 1024 * 1024,
               timeout=60, message="copy under way")
    os.killpg(first.pid, signal.SIGKILL)  # the worker and what it forked (RQ's scheduler), as a crash would
    first.wait(timeout=10)
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the dead worker left an upload behind"
    killed = ReturnedExport.objects.get(pk=export_id)
    assert killed.state == "copying" and killed.lease_token is not None

    sandbox.clear_faults()
    # The sweep finds the row once its heartbeat is stale, and queues it again.
    def swept():
        out = subprocess.run([sys.executable, "manage.py", "eid_sweep"], cwd=ROOT, env=subprocess_env(),
                             capture_output=True, text=True, timeout=60)
        return "re-enqueued 1" in out.stdout

    wait_until(swept, timeout=30, interval=0.5, message="the sweep to find the stale import")
    worker()
    export = wait_until(lambda: ReturnedExport.objects.filter(pk=export_id, state__in=["done", "failed"]).first(),
                        timeout=90, message="the import to finish")
    assert export.state == "done", export.reason
    assert export.attempts == 2
    assert RecordingVersion.objects.filter(recording=recording).count() == 1
    audio = version_of(export).assets.get(kind="audio")
    body = s3.get_object(Bucket=bucket, Key=audio.key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    assert digest.hexdigest() == share["media_sha256"] and audio.size == size
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
