"""Tests for the Descript sandbox, over real HTTP (plain pytest, no Django).

Run: .venv/bin/python -m pytest -p no:django -p no:cacheprovider tests/test_sandbox_server.py -q
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
import wave
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also work when pytest is started from elsewhere
    sys.path.insert(0, str(ROOT))

from sandbox import (  # noqa: E402
    SandboxConfig,
    SandboxServer,
    make_vtt,
    make_wav,
    synthetic_chunks,
    synthetic_sha256,
)
from sandbox.app import presigned_hours_left  # noqa: E402
from support import ManualClock, free_port  # noqa: E402

TOKEN = "sandbox-test-token"
DRIVE_ID = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"
PARTNER_IMPORT = "http://127.0.0.1:8000/descript/import/new"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# --------------------------------------------------------------------------- helpers


class PageParser(HTMLParser):
    """Collects meta tags, file rows, the import result and elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self.by_id: dict[str, dict[str, str]] = {}
        self.forms: list[dict[str, str]] = []
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and "property" in a:
            self.meta[a["property"]] = a.get("content", "")
        if tag == "tr" and a.get("class") == "file":
            self.rows.append(a)
        if "id" in a:
            self.by_id[a["id"]] = a
        if tag == "form":
            self.forms.append(a)
        if tag == "input":
            self.inputs.append(a)
        if tag == "button":
            self._in_button = True
            self.buttons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.buttons[-1] += data


def parse(html_text: str) -> PageParser:
    p = PageParser()
    p.feed(html_text)
    return p


def schema_body(files: list[dict], source_id: str | None = "ep-42", drive: str = DRIVE_ID) -> dict:
    schema: dict = {"schema_version": "1.0.0", "files": files}
    if source_id is not None:
        schema["source_id"] = source_id
    return {"partner_drive_id": drive, "project_schema": schema}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(clock: ManualClock):
    config = SandboxConfig(
        api_token=TOKEN, drive_id=DRIVE_ID, partner_import_url=PARTNER_IMPORT,
        render_seconds=5.0, fetch_timeout=10.0,
    )
    with SandboxServer(config) as srv:
        srv.app.clock = clock
        yield srv


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a real port, plus a boto3 client pointed at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()  # ThreadedMotoServer does not support port 0 everywhere
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket="partner-media")
    try:
        yield client
    finally:
        moto.stop()


def upload(s3, key: str, data: bytes, content_type: str, expires: int) -> str:
    s3.put_object(Bucket="partner-media", Key=key, Body=data, ContentType=content_type)
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": "partner-media", "Key": key}, ExpiresIn=expires
    )


def post_schema(server: SandboxServer, body: dict, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/edit_in_descript/schema",
        json=body, headers=AUTH if headers is None else headers, timeout=10,
    )


# --------------------------------------------------------------------------- the round trip


def test_round_trip_with_presigned_s3_file(server: SandboxServer, clock: ManualClock, s3) -> None:
    wav = make_wav(1.0, 440.0)
    presigned = upload(s3, "ep-42/host.wav", wav, "audio/wav", expires=48 * 3600)

    r = post_schema(server, schema_body([{"uri": presigned, "name": "Host", "start_offset": {"seconds": 0}}]))
    assert r.status_code == 201, r.text
    import_url = r.json()["url"]
    assert set(r.json()) == {"url"}
    parts = urlsplit(import_url)
    assert import_url.startswith(f"{server.url}/import?nonce=")
    uuid.UUID(parse_qs(parts.query)["nonce"][0])

    # The import page fetches the presigned URL and reports the exact bytes.
    page = requests.get(import_url, timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    doc = parse(page.text)
    assert "Descript sandbox — import" in page.text
    assert len(doc.rows) == 1
    row = doc.rows[0]
    assert row["data-name"] == "Host"
    assert row["data-status"] == "ok", row
    assert row["data-http-status"] in ("200", "206")
    assert int(row["data-bytes"]) == len(wav)
    assert row["data-sha256"] == hashlib.sha256(wav).hexdigest()
    assert 47 < float(row["data-hours-left"]) <= 48
    assert doc.by_id["import-result"]["data-ok"] == "true"
    assert doc.buttons == ["Publish"]
    title_input = next(i for i in doc.inputs if i.get("name") == "title")
    assert title_input["value"] == "Edited: Host"
    action = doc.forms[0]["action"]

    # The link works once.
    again = requests.get(import_url, timeout=10)
    assert again.status_code == 410
    assert "already used" in again.text

    # Publish -> 303 to the share page.
    pub = requests.post(action, data={"title": "Episode 42: édition"}, allow_redirects=False, timeout=10)
    assert pub.status_code == 303
    share_url = pub.headers["Location"]
    assert share_url.startswith(f"{server.url}/view/")
    share_id = share_url.rsplit("/", 1)[1]
    assert len(share_id) == 11 and share_id.isalnum()

    view = requests.get(share_url, timeout=10)
    assert view.status_code == 200
    assert view.headers["Content-Type"] == "text/html; charset=utf-8"
    doc = parse(view.text)
    media = f"{server.url}/media/{share_id}"
    assert doc.meta["og:title"] == "Episode 42: édition"
    assert doc.meta["descript:partner"] == DRIVE_ID
    assert doc.meta["descript:source"] == "ep-42"
    assert doc.meta["descript:audio"] == f"{media}/audio.m4a"
    assert doc.meta["descript:subtitles"] == f"{media}/subtitles.vtt"
    assert doc.meta["descript:transcript"] == f"{media}/transcript.json"
    assert "descript:video" not in doc.meta  # a WAV import publishes audio
    send = urlsplit(doc.by_id["send-to-partner"]["href"])
    assert f"{send.scheme}://{send.netloc}{send.path}" == PARTNER_IMPORT
    assert parse_qs(send.query) == {"title": ["Episode 42: édition"], "url": [share_url]}

    # Still rendering: media 404, API 409.
    assert requests.get(f"{media}/audio.m4a", timeout=10).status_code == 404
    assert requests.get(f"{media}/subtitles.vtt", timeout=10).status_code == 404
    meta_api = f"{server.url}/v1/published_projects/{share_id}"
    busy = requests.get(meta_api, headers=AUTH, timeout=10)
    assert busy.status_code == 409
    assert busy.json() == {"error": "conflict", "message": "Published in invalid state", "state": "processing"}

    clock.advance(5.0)
    audio = requests.get(f"{media}/audio.m4a", timeout=10)
    assert audio.status_code == 200
    assert audio.content == wav
    assert audio.headers["Content-Type"] == "audio/mp4"
    assert audio.headers["Accept-Ranges"] == "bytes"
    assert int(audio.headers["Content-Length"]) == len(wav)

    part = requests.get(f"{media}/audio.m4a", headers={"Range": "bytes=10-99"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(wav)}"
    assert part.content == wav[10:100]
    tail = requests.get(f"{media}/audio.m4a", headers={"Range": "bytes=-16"}, timeout=10)
    assert tail.status_code == 206 and tail.content == wav[-16:]
    bad = requests.get(f"{media}/audio.m4a", headers={"Range": f"bytes={len(wav) + 10}-"}, timeout=10)
    assert bad.status_code == 416
    assert bad.headers["Content-Range"] == f"bytes */{len(wav)}"
    assert requests.get(f"{media}/video.mp4", timeout=10).status_code == 404

    vtt = requests.get(f"{media}/subtitles.vtt", timeout=10)
    assert vtt.status_code == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT") and "Episode 42: édition" in vtt.text
    transcript = requests.get(f"{media}/transcript.json", timeout=10)
    assert transcript.headers["Content-Type"] == "application/json"
    tj = transcript.json()
    assert tj["title"] == "Episode 42: édition" and tj["segments"][0]["start"] == 0.0

    done = requests.get(meta_api, headers=AUTH, timeout=10)
    assert done.status_code == 200
    body = done.json()
    assert body["publish_type"] == "audio"
    assert body["privacy"] == "unlisted"
    uuid.UUID(body["project_id"])
    assert body["project_id"] == doc_project_id_from(page.text)
    assert body["metadata"]["title"] == "Episode 42: édition"
    assert body["metadata"]["duration_seconds"] == pytest.approx(1.0)
    assert body["metadata"]["duration_formatted"] == "00:00:01"
    assert body["metadata"]["published_at"].endswith("Z")
    assert set(body["metadata"]["published_by"]) == {"first_name", "last_name"}
    assert body["subtitles"].startswith("WEBVTT")
    assert body["download_url"] == f"{media}/audio.m4a"
    assert body["download_url_expires_at"].endswith("Z")


def doc_project_id_from(page_text: str) -> str:
    return parse(page_text).by_id["project"]["data-project-id"]


def test_import_fetches_like_descriptbot_and_publishes_video(server: SandboxServer) -> None:
    # The partner's "storage" here is the sandbox's own synthetic media, so the
    # recorded requests show exactly how the import fetched it.
    made = server.app.create_share(title="raw", media_bytes=300_000, seed="cam", video=True)
    uri = f"{server.url}/media/{made['share_id']}/video.mp4"
    r = post_schema(server, schema_body([{"uri": uri, "name": "Camera A"}], source_id=None))
    assert r.status_code == 201
    page = requests.get(r.json()["url"], timeout=30)
    row = parse(page.text).rows[0]
    assert row["data-status"] == "ok"
    assert row["data-http-status"] == "206"
    assert row["data-sha256"] == made["media_sha256"]
    assert row["data-hours-left"] == "unknown"  # not presigned: validity unknown, not a failure
    assert row["data-content-type"] == "video/mp4"

    fetches = server.app.requests(f"/media/{made['share_id']}/")
    assert len(fetches) == 1
    assert fetches[0]["user_agent"].startswith("Descriptbot/")
    assert fetches[0]["range"] == "bytes=0-"
    assert fetches[0]["method"] == "GET"

    # JSON publish body, no title: defaults to the first file's name.
    action = parse(page.text).forms[0]["action"]
    pub = requests.post(action, json={}, allow_redirects=False, timeout=10)
    assert pub.status_code == 303
    share_url = pub.headers["Location"]
    share_id = share_url.rsplit("/", 1)[1]
    doc = parse(requests.get(share_url, timeout=10).text)
    assert doc.meta["og:title"] == "Edited: Camera A"
    assert doc.meta["descript:video"] == f"{server.url}/media/{share_id}/video.mp4"
    assert "descript:source" not in doc.meta  # none was given at import
    server.app.clock.advance(5.0)
    body = requests.get(f"{server.url}/v1/published_projects/{share_id}", headers=AUTH, timeout=10).json()
    assert body["publish_type"] == "video"
    assert body["download_url"].endswith("/video.mp4")
    video = requests.get(body["download_url"], timeout=10)
    assert video.headers["Content-Type"] == "video/mp4"
    assert hashlib.sha256(video.content).hexdigest() == made["media_sha256"]


# --------------------------------------------------------------------------- API errors


def test_schema_auth_validation_and_permission(server: SandboxServer) -> None:
    good = schema_body([{"uri": "https://files.example/a.wav"}])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = post_schema(server, good, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized" and r.json()["message"]

    raw = requests.post(
        f"{server.url}/v1/edit_in_descript/schema", data=b"{not json", headers=AUTH, timeout=10
    )
    assert raw.status_code == 400 and raw.json()["error"] == "invalid_input"

    def bad(body: object, fragment: str) -> None:
        r = requests.post(
            f"{server.url}/v1/edit_in_descript/schema", json=body, headers=AUTH, timeout=10
        )
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "invalid_input"
        assert fragment in r.json()["message"], r.json()

    bad([], "JSON object")
    bad({"project_schema": good["project_schema"]}, "partner_drive_id")
    bad({**good, "partner_drive_id": "not-a-uuid"}, "UUID")
    bad({"partner_drive_id": DRIVE_ID}, "project_schema")
    bad(schema_body([]), "non-empty")
    bad({"partner_drive_id": DRIVE_ID, "project_schema": {"schema_version": "2.0.0", "files": [{"uri": "https://x.example/a"}]}}, "1.0.0")
    bad({"partner_drive_id": DRIVE_ID, "project_schema": {"files": [{"uri": "https://x.example/a"}]}}, "schema_version")
    bad(schema_body([{"name": "no uri"}]), "files[0].uri")
    bad(schema_body([{"uri": "ftp://x.example/a.wav"}]), "http")
    bad(schema_body([{"uri": "https://x.example/a", "start_offset": {"seconds": -1}}]), "start_offset")
    bad(schema_body([{"uri": "https://x.example/a", "start_offset": {"seconds": "3"}}]), "start_offset")
    bad(schema_body([{"uri": "https://x.example/a"}, "nope"]), "files[1]")
    bad({**good, "project_schema": {**good["project_schema"], "source_id": 5}}, "source_id")

    other = post_schema(server, schema_body([{"uri": "https://x.example/a"}], drive=str(uuid.uuid4())))
    assert other.status_code == 403 and other.json()["error"] == "forbidden"

    extra = post_schema(server, {**good, "something_new": True})
    assert extra.status_code == 201  # unknown top-level keys are ignored

    assert requests.get(f"{server.url}/v1/published_projects/nope", timeout=10).status_code == 401
    missing = requests.get(f"{server.url}/v1/published_projects/nope", headers=AUTH, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = requests.get(f"{server.url}/v1/edit_in_descript/schema", headers=AUTH, timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


def test_unexpected_error_is_a_plain_500(server: SandboxServer, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(server.app, "_ep_view", boom)
    r = requests.get(f"{server.url}/view/abc", timeout=10)
    assert r.status_code == 500
    assert r.json() == {"error": "internal", "message": "sandbox error"}
    assert "secret internals" not in r.text


def test_requests_are_recorded_without_the_token(server: SandboxServer) -> None:
    post_schema(server, schema_body([{"uri": "https://x.example/a.wav"}]))
    recorded = requests.get(f"{server.url}/_sandbox/requests", params={"path": "/v1/"}, timeout=10).json()
    assert len(recorded) == 1
    entry = recorded[0]
    assert entry["method"] == "POST" and entry["path"] == "/v1/edit_in_descript/schema"
    assert entry["authorization_present"] is True
    assert entry["json"]["partner_drive_id"] == DRIVE_ID
    assert set(entry) >= {"method", "path", "query", "user_agent", "range", "authorization_present", "json", "at"}
    assert TOKEN not in json.dumps(recorded)
    assert server.app.requests("/media/") == []


# --------------------------------------------------------------------------- import page cases


def test_short_lived_presigned_url_is_flagged(server: SandboxServer, s3) -> None:
    wav = make_wav(0.5)
    short = upload(s3, "short.wav", wav, "audio/wav", expires=3600)
    r = post_schema(server, schema_body([{"uri": short, "name": "Short"}]))
    page = requests.get(r.json()["url"], timeout=30)
    doc = parse(page.text)
    row = doc.rows[0]
    assert row["data-status"] == "failed"
    assert "expires too soon" in row["data-reason"]
    assert 0.9 < float(row["data-hours-left"]) <= 1.0
    assert int(row["data-bytes"]) == len(wav)  # fetched fine, just not valid long enough
    assert doc.by_id["import-result"]["data-ok"] == "false"


def test_presigned_validity_parsing() -> None:
    now = 1_795_324_200.0  # 2026-11-22T05:10:00Z
    url = "https://b.s3.amazonaws.com/k?X-Amz-Date=20261122T051000Z&X-Amz-Expires=172800&X-Amz-Signature=x"
    assert presigned_hours_left(url, now) == pytest.approx(48.0)
    assert presigned_hours_left(url, now + 3600) == pytest.approx(47.0)
    assert presigned_hours_left("https://cdn.example/a.wav", now) is None
    sigv2 = f"https://b.s3.amazonaws.com/k?AWSAccessKeyId=A&Expires={int(now) + 7200}&Signature=s"
    assert presigned_hours_left(sigv2, now) == pytest.approx(2.0)


def test_failed_files_and_unknown_or_expired_links(server: SandboxServer, clock: ManualClock) -> None:
    missing = f"{server.url}/media/nope/audio.m4a"
    r = post_schema(server, schema_body([{"uri": missing, "name": "Gone"}]))
    page = requests.get(r.json()["url"], timeout=30)
    doc = parse(page.text)
    assert doc.rows[0]["data-status"] == "failed"
    assert doc.rows[0]["data-http-status"] == "404"
    assert doc.by_id["import-result"]["data-ok"] == "false"
    assert doc.forms == []  # nothing to publish

    unknown = requests.get(f"{server.url}/import", params={"nonce": str(uuid.uuid4())}, timeout=10)
    assert unknown.status_code == 404 and "not valid" in unknown.text

    r = post_schema(server, schema_body([{"uri": missing}]))
    clock.advance(3 * 3600 + 1)
    expired = requests.get(r.json()["url"], timeout=10)
    assert expired.status_code == 410 and "expired" in expired.text

    # Just inside the 3 hours still works.
    r = post_schema(server, schema_body([{"uri": missing}]))
    clock.advance(3 * 3600 - 5)
    assert requests.get(r.json()["url"], timeout=30).status_code == 200

    assert requests.get(f"{server.url}/view/AAAAAAAAAAA", timeout=10).status_code == 404
    assert requests.post(f"{server.url}/projects/{uuid.uuid4()}/publish", timeout=10).status_code == 404


def test_import_reports_a_failing_file_server(server: SandboxServer) -> None:
    made = server.app.create_share(media_bytes=10_000, seed="x")
    uri = f"{server.url}/media/{made['share_id']}/audio.m4a"
    server.app.add_fault(path=f"/media/{made['share_id']}/", status=503, times=1)
    r = post_schema(server, schema_body([{"uri": uri, "name": "Flaky"}, {"uri": uri, "name": "Flaky 2"}]))
    page = requests.get(r.json()["url"], timeout=30)
    doc = parse(page.text)
    statuses = sorted(row["data-status"] for row in doc.rows)
    assert statuses == ["failed", "ok"]  # the fault was used up by exactly one of the two fetches
    assert doc.by_id["import-result"]["data-ok"] == "false"
    assert doc.buttons == ["Publish"]  # one file arrived, so it can still be published


# --------------------------------------------------------------------------- faults


def test_fault_status_times_and_headers(server: SandboxServer) -> None:
    body = schema_body([{"uri": "https://x.example/a.wav"}])
    resp = requests.post(
        f"{server.url}/_sandbox/faults",
        json={"path": "/v1/edit_in_descript/schema", "method": "POST", "times": 1,
              "status": 429, "headers": {"Retry-After": "2"}},
        timeout=10,
    )
    assert resp.status_code == 201
    limited = post_schema(server, body)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json() == {"error": "rate_limit_exceeded", "message": "Too Many Requests"}
    assert post_schema(server, body).status_code == 201  # used up

    server.app.add_fault(path="/v1/", status=500, times=2)
    assert [post_schema(server, body).status_code for _ in range(3)] == [500, 500, 201]

    # A rule for another method does not match.
    server.app.add_fault(path="/v1/", method="GET", status=503)
    assert post_schema(server, body).status_code == 201
    assert requests.get(f"{server.url}/v1/published_projects/x", headers=AUTH, timeout=10).status_code == 503
    listed = requests.get(f"{server.url}/_sandbox/faults", timeout=10).json()
    assert len(listed) == 1
    cleared = requests.delete(f"{server.url}/_sandbox/faults", timeout=10)
    assert cleared.json() == {"cleared": 1}
    assert requests.get(f"{server.url}/v1/published_projects/x", headers=AUTH, timeout=10).status_code == 404

    server.app.add_fault(path="/view/", status=502, body="<h1>Bad gateway</h1>", content_type="text/html")
    r = requests.get(f"{server.url}/view/whatever", timeout=10)
    assert r.status_code == 502 and r.text == "<h1>Bad gateway</h1>"
    assert r.headers["Content-Type"].startswith("text/html")

    server.app.add_fault(path="/go", redirect_to="https://elsewhere.example/x")
    r = requests.get(f"{server.url}/go", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "https://elsewhere.example/x"

    bad = requests.post(f"{server.url}/_sandbox/faults", json={"path": "/", "sttaus": 500}, timeout=10)
    assert bad.status_code == 400 and "sttaus" in bad.json()["message"]
    with pytest.raises(ValueError):
        server.app.add_fault(path="/", status="500")


def test_fault_latency_hang_body_size_and_throttle(server: SandboxServer) -> None:
    body = schema_body([{"uri": "https://x.example/a.wav"}])
    server.app.add_fault(path="/v1/edit_in_descript/schema", latency_ms=300, times=1)
    started = time.monotonic()
    r = post_schema(server, body)
    assert r.status_code == 201  # latency only: otherwise handled normally
    assert time.monotonic() - started >= 0.3

    server.app.add_fault(path="/v1/", hang_seconds=2, times=1)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.post(f"{server.url}/v1/edit_in_descript/schema", json=body, headers=AUTH, timeout=0.5)
    assert time.monotonic() - started < 1.5

    server.app.add_fault(path="/v1/", hang_seconds=0.5, times=1)
    with pytest.raises(requests.ConnectionError):  # closed without an answer
        requests.post(f"{server.url}/v1/edit_in_descript/schema", json=body, headers=AUTH, timeout=5)

    server.app.add_fault(path="/view/", body_size=5_000_000, times=1)
    big = requests.get(f"{server.url}/view/anything", timeout=10)
    assert big.status_code == 200 and len(big.content) == 5_000_000
    assert big.headers["Content-Type"].startswith("text/html")

    made = server.app.create_share(media_bytes=100_000, seed="slow")
    server.app.add_fault(path=f"/media/{made['share_id']}/", throttle_bps=200_000)
    started = time.monotonic()
    slow = requests.get(f"{server.url}/media/{made['share_id']}/audio.m4a", timeout=10)
    elapsed = time.monotonic() - started
    assert slow.status_code == 200
    assert hashlib.sha256(slow.content).hexdigest() == made["media_sha256"]
    assert 0.4 <= elapsed < 3.0


def test_reset_clears_everything(server: SandboxServer) -> None:
    made = server.app.create_share(media_bytes=10)
    server.app.add_fault(path="/x", status=500)
    post_schema(server, schema_body([{"uri": "https://x.example/a.wav"}]))
    assert requests.post(f"{server.url}/_sandbox/reset", timeout=10).status_code == 200
    assert server.app.faults() == []
    assert server.app.requests() == []
    assert requests.get(f"{server.url}/view/{made['share_id']}", timeout=10).status_code == 404


# --------------------------------------------------------------------------- synthetic shares


def test_synthetic_share_streams_50mb_with_flat_memory(server: SandboxServer) -> None:
    size = 50 * 1024 * 1024
    r = requests.post(
        f"{server.url}/_sandbox/shares",
        json={"title": "Big one", "partner": DRIVE_ID, "source": "src-1", "media_bytes": size,
              "seed": "big", "video": False, "render_seconds": 0},
        timeout=30,
    )
    assert r.status_code == 201
    made = r.json()
    assert made["media_sha256"] == synthetic_sha256("big", size)
    assert made["share_url"] == f"{server.url}/view/{made['share_id']}"
    doc = parse(requests.get(made["share_url"], timeout=10).text)
    assert doc.meta["descript:partner"] == DRIVE_ID and doc.meta["descript:source"] == "src-1"

    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        total = 0
        with requests.get(doc.meta["descript:audio"], stream=True, timeout=30) as media:
            assert media.status_code == 200
            assert int(media.headers["Content-Length"]) == size
            for piece in media.iter_content(256 * 1024):
                digest.update(piece)
                total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert digest.hexdigest() == made["media_sha256"]
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming 50 MB"

    # A range across a block boundary matches the generator.
    start, end = (1 << 20) - 100, (1 << 20) + 100
    part = requests.get(doc.meta["descript:audio"], headers={"Range": f"bytes={start}-{end - 1}"}, timeout=10)
    assert part.status_code == 206
    assert part.content == b"".join(synthetic_chunks("big", end, start=start))

    bad = requests.post(f"{server.url}/_sandbox/shares", json={"media_bytes": "lots"}, timeout=10)
    assert bad.status_code == 400


def test_synthetic_share_render_delay(server: SandboxServer, clock: ManualClock) -> None:
    made = server.app.create_share(media_bytes=1000, render_seconds=30)
    url = f"{server.url}/media/{made['share_id']}/audio.m4a"
    assert requests.get(url, timeout=10).status_code == 404
    clock.advance(29)
    assert requests.get(url, timeout=10).status_code == 404
    clock.advance(1)
    assert requests.get(url, timeout=10).status_code == 200


# --------------------------------------------------------------------------- media helpers


def test_synthetic_chunks_are_deterministic_seekable_and_fast() -> None:
    size = 3 * (1 << 20) + 12345
    whole = b"".join(synthetic_chunks("s", size))
    assert len(whole) == size
    assert whole == b"".join(synthetic_chunks("s", size, chunk=77_777))
    assert whole != b"".join(synthetic_chunks("t", size))
    for start in (0, 1, (1 << 20) - 1, 1 << 20, size - 1):
        assert b"".join(synthetic_chunks("s", size, start=start)) == whole[start:]
    assert synthetic_sha256("s", size) == hashlib.sha256(whole).hexdigest()
    # Blocks differ from each other (the block index is mixed in).
    assert whole[: 1 << 20] != whole[1 << 20 : 2 << 20]

    total = 256 * (1 << 20)
    started = time.perf_counter()
    n = sum(len(c) for c in synthetic_chunks("speed", total))
    rate = n / (time.perf_counter() - started)
    assert rate >= 300e6, f"{rate / 1e6:.0f} MB/s"


def test_make_wav_and_vtt() -> None:
    data = make_wav(0.25, 300.0)
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getnframes() / w.getframerate() == pytest.approx(0.25)
    vtt = make_vtt(["Hello", "World --> there"])
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello\n")
    assert "World -> there" in vtt


# --------------------------------------------------------------------------- the CLI


def test_cli_serves_logs_without_token_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port),
         "--token", TOKEN, "--drive-id", DRIVE_ID, "--partner-import-url", PARTNER_IMPORT,
         "--render-seconds", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(f"{base}/_sandbox/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("sandbox CLI did not start")
        r = requests.post(
            f"{base}/v1/edit_in_descript/schema",
            json=schema_body([{"uri": "https://x.example/a.wav"}]), headers=AUTH, timeout=5,
        )
        assert r.status_code == 201 and r.json()["url"].startswith(f"{base}/import?nonce=")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "POST /v1/edit_in_descript/schema 201" in out
    assert TOKEN not in out
