"""The sandbox's jobs API (the third part): real HTTP against the session's sandbox server,
media in moto's S3 behind presigned URLs, callbacks to a receiver on a thread of our own.

Job durations come from the sandbox's job settings (`configure_jobs`); tests that look at
progress step an injected clock instead of sleeping.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
import requests
from django.conf import settings

from eid import storage
from sandbox.media import make_wav
from receiver import Reply, receiver  # noqa: F401  (the fixture)
from support import ManualClock, wait_until

API = settings.DESCRIPT_API_BASE
AUTH = {"Authorization": f"Bearer {settings.DESCRIPT_API_TOKEN}"}
WAV_A = make_wav(1.0, 330)
WAV_B = make_wav(0.5, 550)
CALLBACK = "/descript/jobs/callback?t=secret"
FAST = {"queued_seconds": 0.05, "import_seconds": 0.2, "agent_seconds": 0.2, "publish_seconds": 0.2}

_ISO = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"}
_RESULTS = {
    "import/project_media": {
        "oneOf": [
            {
                "type": "object",
                "required": ["status", "media_status", "media_seconds_used"],
                "properties": {
                    "status": {"enum": ["success", "partial"]},
                    "media_status": {"type": "object", "additionalProperties": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"enum": ["success", "failed"]},
                                       "duration_seconds": {"type": "number"},
                                       "error_message": {"type": "string"}},
                        "additionalProperties": False}},
                    "media_seconds_used": {"type": "integer"},
                    "created_compositions": {"type": "array", "items": {
                        "type": "object", "required": ["id", "name"], "additionalProperties": False,
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}},
                },
                "additionalProperties": False,
            },
            {"type": "object", "required": ["status", "error_message"],
             "properties": {"status": {"const": "error"}, "error_message": {"type": "string"},
                            "error_code": {"type": "string"}}, "additionalProperties": False},
        ]
    },
    "agent": {
        "oneOf": [
            {"type": "object", "required": ["status", "agent_response", "project_changed"],
             "properties": {"status": {"const": "success"}, "agent_response": {"type": "string"},
                            "project_changed": {"type": "boolean"}, "media_seconds_used": {"type": "integer"},
                            "ai_credits_used": {"type": "integer"}}, "additionalProperties": False},
            {"type": "object", "required": ["status", "error_message"],
             "properties": {"status": {"const": "error"}, "error_message": {"type": "string"},
                            "error_code": {"type": "string"}}, "additionalProperties": False},
        ]
    },
    "publish": {
        "oneOf": [
            {"type": "object", "required": ["status", "composition_id", "share_url"],
             "properties": {"status": {"const": "success"}, "composition_id": {"type": "string"},
                            "share_url": {"type": "string"}, "download_url": {"type": "string"},
                            "download_url_expires_at": _ISO}, "additionalProperties": False},
            {"type": "object", "required": ["status", "error_message"],
             "properties": {"status": {"const": "error"}, "error_message": {"type": "string"}},
             "additionalProperties": False},
        ]
    },
}


def assert_job_shape(job: dict[str, Any]) -> None:
    """openapi.yml's JobStatus for the job's type (copied here: tests never read the docs folder)."""
    schema = {
        "type": "object",
        "required": ["job_id", "job_type", "job_state", "created_at", "drive_id", "project_id", "project_url"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "job_type": {"enum": list(_RESULTS)},
            "job_state": {"enum": ["queued", "running", "stopped", "cancelled"]},
            "created_at": _ISO, "stopped_at": _ISO,
            "drive_id": {"const": settings.DESCRIPT_PARTNER_DRIVE_ID},
            "project_id": {"type": "string"}, "project_url": {"type": "string"},
            "progress": {"type": "object", "required": ["label"],
                         "properties": {"label": {"type": "string"}, "percent": {"type": "integer"},
                                        "last_update_at": _ISO, "composition_id": {"type": "string"},
                                        "share_url": {"type": "string"}},
                         "additionalProperties": False},
            "result": _RESULTS[job["job_type"]],
        },
        "additionalProperties": False,
    }
    jsonschema.validate(job, schema)
    state = job["job_state"]
    assert ("progress" in job) == (state == "running")
    assert ("stopped_at" in job) == (state in ("stopped", "cancelled"))
    assert ("result" in job) == (state == "stopped")


@pytest.fixture
def jobs(sandbox):
    """The sandbox with fast jobs."""
    sandbox.configure_jobs(**FAST)
    return sandbox


@pytest.fixture
def media(s3) -> dict[str, str]:
    """Two WAVs in the bucket behind 48-hour presigned URLs, and one URL whose object is missing."""
    storage.put_bytes("jobs/a.wav", WAV_A, "audio/wav")
    storage.put_bytes("jobs/b.wav", WAV_B, "audio/wav")
    return {
        "a": storage.presign_get("jobs/a.wav", 48 * 3600),
        "b": storage.presign_get("jobs/b.wav", 48 * 3600),
        "missing": storage.presign_get(f"jobs/{uuid.uuid4()}.wav", 48 * 3600),
    }


def post(path: str, body: Any, timeout: float = 10) -> requests.Response:
    return requests.post(f"{API}{path}", json=body, headers=AUTH, timeout=timeout)


def get(path: str, **params: Any) -> requests.Response:
    return requests.get(f"{API}{path}", params=params, headers=AUTH, timeout=10)


def wait_stopped(job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    def stopped() -> dict[str, Any] | None:
        job = get(f"/jobs/{job_id}").json()
        return job if job["job_state"] == "stopped" else None

    return wait_until(stopped, timeout=timeout, interval=0.05, message=f"job {job_id} to stop")


def imported(media: dict[str, str], **extra: Any) -> dict[str, Any]:
    """An import job run to the end: one file, one composition."""
    body = {"project_name": f"Recording {uuid.uuid4()}", "add_media": {"a.wav": {"url": media["a"]}},
            "add_compositions": [{"name": "Main", "clips": [{"media": "a.wav"}]}], **extra}
    created = post("/jobs/import/project_media", body)
    assert created.status_code == 201, created.text
    return wait_stopped(created.json()["job_id"])


# --------------------------------------------------------------------------- import


def test_import_goes_queued_running_stopped_with_rising_progress(sandbox, media):
    clock = ManualClock()
    sandbox.clock = clock
    sandbox.configure_jobs(queued_seconds=2, import_seconds=60, time_scale=10)  # 0.2 s queued, 6 s running
    body = {
        "project_name": "Panel, episode 1", "team_access": "edit", "folder_name": "Partner/Panel",
        "add_media": {
            "Host.wav": {"url": media["a"], "language": "en"},
            "Guest.wav": {"url": media["b"]},
            "Panel": {"tracks": [{"media": "Host.wav", "offset": 0}, {"media": "Guest.wav", "offset": 1.5}]},
        },
        "add_compositions": [{"name": "Main", "width": 1920, "height": 1080, "clips": [{"media": "Panel"}]}],
    }
    created = post("/jobs/import/project_media", body)
    assert created.status_code == 201
    answer = created.json()
    assert set(answer) == {"job_id", "drive_id", "project_id", "project_url"}
    assert answer["drive_id"] == settings.DESCRIPT_PARTNER_DRIVE_ID
    job_id = answer["job_id"]

    first = get(f"/jobs/{job_id}").json()
    assert first["job_state"] == "queued"
    assert_job_shape(first)

    seen = []
    for step in range(5):
        clock.advance(1.0)
        if step == 1:  # the media are fetched in the background; past this, progress follows the clock
            wait_until(lambda: sandbox.jobs()[0]["work_done_at"], timeout=5, message="the fetches")
        job = get(f"/jobs/{job_id}").json()
        assert_job_shape(job)
        assert job["job_state"] == "running"
        seen.append((job["progress"]["percent"], job["progress"]["label"]))
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[0] < percents[-1]
    assert seen[0][1] == "Downloading media"
    assert len({label for _, label in seen}) >= 2

    clock.advance(5.0)
    job = wait_stopped(job_id)
    assert_job_shape(job)
    result = job["result"]
    assert result["status"] == "success"
    assert result["media_status"]["Host.wav"] == {"status": "success", "duration_seconds": 1.0}
    assert result["media_status"]["Guest.wav"] == {"status": "success", "duration_seconds": 0.5}
    assert result["media_status"]["Panel"] == {"status": "success", "duration_seconds": 2.0}
    assert result["media_seconds_used"] == 2
    [comp] = result["created_compositions"]
    assert comp["name"] == "Main"

    project = get(f"/projects/{answer['project_id']}").json()
    assert project["name"] == "Panel, episode 1"
    assert project["media_files"] == {
        "Host.wav": {"type": "audio", "duration": 1.0},
        "Guest.wav": {"type": "audio", "duration": 0.5},
        "Panel": {"type": "sequence", "duration": 2.0},
    }
    assert project["compositions"] == [{"id": comp["id"], "name": "Main", "duration": 2.0, "media_type": "audio"}]
    listed = get("/projects", folder_path="Partner/Panel").json()
    assert [p["id"] for p in listed["data"]] == [answer["project_id"]]


def test_partial_import_names_the_file_that_failed(jobs, media):
    body = {"project_name": "Partial", "add_media": {
        "a.wav": {"url": media["a"]}, "gone.wav": {"url": media["missing"]}, "b.wav": {"url": media["b"]}}}
    jobs.configure_jobs(fail_media=["b.wav"])
    job = wait_stopped(post("/jobs/import/project_media", body).json()["job_id"])
    assert_job_shape(job)
    status = job["result"]["media_status"]
    assert job["result"]["status"] == "partial"
    assert status["a.wav"]["status"] == "success"
    assert status["gone.wav"]["status"] == "failed"
    assert "HTTP 404" in status["gone.wav"]["error_message"]
    assert status["b.wav"] == {"status": "failed",
                               "error_message": "URL is not accessible or does not support Range requests"}
    assert "duration_seconds" not in status["gone.wav"]
    assert list(get(f"/projects/{job['project_id']}").json()["media_files"]) == ["a.wav"]


def test_import_where_nothing_arrives_is_an_error(jobs, media):
    body = {"project_name": "Nothing", "add_media": {"gone.wav": {"url": media["missing"]}}}
    job = wait_stopped(post("/jobs/import/project_media", body).json()["job_id"])
    assert_job_shape(job)
    assert job["result"]["status"] == "error"
    assert "gone.wav" in job["result"]["error_message"]


def test_direct_upload_hands_out_a_url_and_imports_what_is_put(jobs):
    body = {"project_name": "Upload", "add_media": {"up.wav": {"content_type": "audio/wav", "file_size": len(WAV_B)}}}
    answer = post("/jobs/import/project_media", body).json()
    slot = answer["upload_urls"]["up.wav"]
    assert set(slot) == {"upload_url", "asset_id", "artifact_id"}
    assert requests.put(slot["upload_url"] + "x", data=WAV_B, timeout=5).status_code == 403
    put = requests.put(slot["upload_url"], data=WAV_B, headers={"Content-Type": "application/octet-stream"}, timeout=5)
    assert put.status_code == 200
    job = wait_stopped(answer["job_id"])
    assert job["result"]["media_status"]["up.wav"] == {"status": "success", "duration_seconds": 0.5}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"project_name": "x", "add_media": {"a": {"url": "ftp://example.com/a"}}}, "Invalid media URL format"),
        ({"project_name": "x", "surprise": 1}, '"surprise" is not allowed'),
        ({"project_name": "x", "add_media": {"a": {"url": "https://e.com/a", "name": "b"}}}, "is not allowed"),
        ({"project_name": "x", "add_media": {"s": {"tracks": [{"media": "nope"}]}}}, '"nope"'),
        ({"project_name": "x", "add_compositions": [{"clips": [{"media": "nope"}]}]}, '"nope"'),
        ({"project_name": "x", "team_access": "everyone"}, "team_access"),
        ({"project_id": "not-a-uuid"}, "Invalid project_id format"),
        ({"project_name": "x", "add_media": {"u": {"content_type": "video/mp4", "file_size": 2 << 30}}}, "1 GB"),
        ([], "Invalid request body"),
    ],
)
def test_import_bodies_are_checked_like_descript(jobs, body, message):
    answer = post("/jobs/import/project_media", body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_input"
    assert message in answer.json()["message"]
    assert jobs.jobs() == []


def test_import_into_an_unknown_project_is_404_and_name_conflicts_400(jobs, media):
    assert post("/jobs/import/project_media", {"project_id": str(uuid.uuid4())}).status_code == 404
    job = imported(media)
    again = post("/jobs/import/project_media",
                 {"project_id": job["project_id"], "add_media": {"a.wav": {"url": media["a"]}}})
    assert again.status_code == 400
    assert "conflicts" in again.json()["message"]


def test_no_token_is_401_everywhere(jobs):
    for method, path in [("POST", "/jobs/import/project_media"), ("POST", "/jobs/agent"), ("POST", "/jobs/publish"),
                         ("GET", "/jobs"), ("GET", f"/jobs/{uuid.uuid4()}"), ("DELETE", f"/jobs/{uuid.uuid4()}"),
                         ("GET", "/projects"), ("GET", f"/projects/{uuid.uuid4()}"), ("GET", "/status")]:
        answer = requests.request(method, f"{API}{path}", json={}, headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert answer.status_code == 401, path
        assert answer.json() == {"error": "unauthorized", "message": "Missing or invalid authentication token"}
    assert get("/status").json() == {"status": "ok"}


def test_402_and_403_on_demand(jobs, media):
    jobs.configure_jobs(media_minutes_exhausted=True, ai_credits_exhausted=True)
    answer = post("/jobs/import/project_media", {"project_name": "x", "add_media": {"a.wav": {"url": media["a"]}}})
    assert answer.status_code == 402
    assert answer.json()["error"] == "payment_required"
    assert answer.json()["message"].startswith("Insufficient media minutes to start the job (")
    answer = post("/jobs/agent", {"project_name": "x", "prompt": "add studio sound"})
    assert answer.status_code == 402
    assert answer.json()["message"].startswith("Insufficient AI credits")
    jobs.configure_jobs(media_minutes_exhausted=False, ai_credits_exhausted=False, forbidden=["agent"])
    assert post("/jobs/agent", {"project_name": "x", "prompt": "add studio sound"}).json()["error"] == "forbidden"
    assert post("/jobs/import/project_media", {"project_name": "y"}).status_code == 201
    assert len(jobs.jobs()) == 1


# --------------------------------------------------------------------------- agent and publish


def test_agent_answers_about_the_prompt(jobs, media):
    done = imported(media)
    comp_id = done["result"]["created_compositions"][0]["id"]
    created = post("/jobs/agent", {"project_id": done["project_id"], "composition_id": comp_id[:5],
                                   "prompt": "Remove filler words and add Studio Sound", "model": "default"})
    assert created.status_code == 201
    job = wait_stopped(created.json()["job_id"])
    assert_job_shape(job)
    result = job["result"]
    assert result["status"] == "success" and result["project_changed"] is True
    assert "Remove filler words and add Studio Sound" in result["agent_response"]
    assert isinstance(result["ai_credits_used"], int) and result["media_seconds_used"] == 0

    assert post("/jobs/agent", {"project_id": done["project_id"], "composition_id": "zzzzz",
                                "prompt": "x"}).status_code == 404
    assert post("/jobs/agent", {"project_id": str(uuid.uuid4()), "prompt": "x"}).status_code == 404
    assert post("/jobs/agent", {"project_id": done["project_id"], "prompt": "  "}).json()["message"] == "Prompt cannot be empty"
    assert post("/jobs/agent", {"prompt": "x"}).status_code == 400
    jobs.configure_jobs(agent_error="AI agent failed to process the request")
    failed = wait_stopped(post("/jobs/agent", {"project_id": done["project_id"], "prompt": "x"}).json()["job_id"])
    assert_job_shape(failed)
    assert failed["result"] == {"status": "error", "error_message": "AI agent failed to process the request",
                                "error_code": "agent_execution_failed"}


def test_publish_creates_a_share_and_a_download_url_with_the_bytes(jobs, media):
    done = imported(media)
    comp_id = done["result"]["created_compositions"][0]["id"]
    created = post("/jobs/publish", {"project_id": done["project_id"], "composition_id": comp_id,
                                     "media_type": "Audio", "access_level": "unlisted"})
    assert created.status_code == 201
    job = wait_stopped(created.json()["job_id"])
    assert_job_shape(job)
    result = job["result"]
    assert result["status"] == "success" and result["composition_id"] == comp_id
    download = requests.get(result["download_url"], timeout=5)
    assert download.status_code == 200 and download.content == WAV_A
    share_id = result["share_url"].rsplit("/", 1)[1]
    page = requests.get(result["share_url"], timeout=5)
    assert page.status_code == 200 and 'property="og:title" content="Main"' in page.text
    published = get(f"/published_projects/{share_id}").json()
    assert published["project_id"] == done["project_id"] and published["publish_type"] == "audio"

    # Republishing the same composition and media type reuses the share URL; Video gets its own.
    again = wait_stopped(post("/jobs/publish", {"project_id": done["project_id"], "composition_id": comp_id,
                                                "media_type": "Audio"}).json()["job_id"])
    assert again["result"]["share_url"] == result["share_url"]
    video = wait_stopped(post("/jobs/publish", {"project_id": done["project_id"], "media_type": "Video",
                                                "resolution": "1080p"}).json()["job_id"])
    assert video["result"]["share_url"] != result["share_url"]
    assert video["result"]["download_url"].split("?")[0].endswith("/video.mp4")


def test_publish_errors(jobs, media):
    done = imported(media)
    assert post("/jobs/publish", {"project_id": done["project_id"], "resolution": "8K"}).status_code == 400
    assert post("/jobs/publish", {"project_id": str(uuid.uuid4())}).status_code == 404
    assert post("/jobs/publish", {"project_id": done["project_id"], "composition_id": "nope0"}).status_code == 404
    jobs.configure_jobs(publish_error="Export failed during render")
    job = wait_stopped(post("/jobs/publish", {"project_id": done["project_id"]}).json()["job_id"])
    assert_job_shape(job)
    assert job["result"] == {"status": "error", "error_message": "Export failed during render"}


# --------------------------------------------------------------------------- reading, listing, cancelling


def test_list_filters_and_cursor_pagination_to_the_end(jobs):
    first = post("/jobs/agent", {"project_name": "One", "prompt": "p0"}).json()
    ids = [first["job_id"]]
    for i in range(1, 7):
        ids.append(post("/jobs/agent", {"project_id": first["project_id"], "prompt": f"p{i}"}).json()["job_id"])
    other = post("/jobs/import/project_media", {"project_name": "Other"}).json()

    walked, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, "type": "agent", **({"cursor": cursor} if cursor else {})}
        answer = get("/jobs", **params).json()
        pages += 1
        for job in answer["data"]:
            assert_job_shape(job)
        walked += [j["job_id"] for j in answer["data"]]
        cursor = answer["pagination"].get("next_cursor")
        if not cursor:
            break
    assert walked == ids[::-1]  # newest first, every one once
    assert pages == 3

    by_project = get("/jobs", project_id=other["project_id"]).json()
    assert [j["job_id"] for j in by_project["data"]] == [other["job_id"]]
    assert by_project["pagination"] == {}
    everything = get("/jobs").json()["data"]
    assert len(everything) == 8
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert get("/jobs", created_after=future).json()["data"] == []
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert get("/jobs", created_before=past).json()["data"] == []
    too_old = (datetime.now(timezone.utc) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for params in ({"created_after": too_old}, {"limit": 0}, {"limit": 101}, {"limit": "x"},
                   {"cursor": "not-a-cursor"}, {"type": "export"}, {"project_id": "x"},
                   {"created_after": "yesterday"}):
        answer = get("/jobs", **params)
        assert answer.status_code == 400, params
        assert answer.json()["error"] == "invalid_input"


def test_jobs_older_than_the_default_week_are_listed_only_when_asked(jobs):
    clock = ManualClock()
    jobs.clock = clock
    old = post("/jobs/agent", {"project_name": "Old", "prompt": "x"}).json()["job_id"]
    clock.advance(8 * 86400)
    assert get("/jobs").json()["data"] == []
    since = datetime.fromtimestamp(clock.now - 9 * 86400, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [j["job_id"] for j in get("/jobs", created_after=since).json()["data"]] == [old]
    clock.advance(23 * 86400)
    assert get(f"/jobs/{old}").status_code == 404  # kept 30 days


def test_cancel_then_cancelled(jobs):
    jobs.configure_jobs(agent_seconds=60)
    job_id = post("/jobs/agent", {"project_name": "Cancel me", "prompt": "x"}).json()["job_id"]
    answer = requests.delete(f"{API}/jobs/{job_id}", headers=AUTH, timeout=5)
    assert answer.status_code == 204 and answer.content == b""
    job = get(f"/jobs/{job_id}").json()
    assert_job_shape(job)
    assert job["job_state"] == "cancelled" and "result" not in job
    again = requests.delete(f"{API}/jobs/{job_id}", headers=AUTH, timeout=5)
    assert again.status_code == 409
    assert requests.delete(f"{API}/jobs/{uuid.uuid4()}", headers=AUTH, timeout=5).status_code == 404
    assert get(f"/jobs/{uuid.uuid4()}").json() == {"error": "not_found", "message": "Job not found"}


def test_projects_list_filters_and_pages(jobs):
    for name in ("Alpha talk", "Beta talk", "Gamma", "Delta talk"):
        post("/jobs/import/project_media", {"project_name": name, "folder_name": "Shows"})
    talks = get("/projects", name="TALK", sort="name", direction="asc").json()
    assert [p["name"] for p in talks["data"]] == ["Alpha talk", "Beta talk", "Delta talk"]
    seen, cursor = [], None
    while True:
        answer = get("/projects", limit=3, **({"cursor": cursor} if cursor else {})).json()
        seen += [p["name"] for p in answer["data"]]
        cursor = answer["pagination"].get("next_cursor")
        if not cursor:
            break
    assert seen == ["Delta talk", "Gamma", "Beta talk", "Alpha talk"]  # newest first by default
    assert get("/projects", folder_path="Elsewhere").json()["data"] == []
    assert get("/projects", cursor="zzz").status_code == 400
    assert get(f"/projects/{uuid.uuid4()}").status_code == 404


# --------------------------------------------------------------------------- faults and the record


def test_429_on_polls_with_retry_after(jobs):
    job_id = post("/jobs/agent", {"project_name": "Polled", "prompt": "x"}).json()["job_id"]
    jobs.add_fault(path="/v1/jobs/", path_regex=r"/v1/jobs/[^/]+", method="GET", status=429, times=2,
                   headers={"Retry-After": "2"})
    assert get("/jobs").status_code == 200  # the list is not a job's status
    for _ in range(2):
        answer = get(f"/jobs/{job_id}")
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "2"
        assert answer.json()["error"] == "rate_limit_exceeded"
    assert get(f"/jobs/{job_id}").status_code == 200
    statuses = [(r["job_id"], r["status"]) for r in jobs.requests("/v1/jobs/") if r["method"] == "GET"]
    assert statuses == [(job_id, 429), (job_id, 429), (job_id, 200)]


def test_the_job_is_created_even_when_the_answer_is_late_or_lost(jobs):
    jobs.add_fault(path="/v1/jobs/agent", method="POST", hold_after_seconds=1.0, times=1)
    with pytest.raises(requests.ReadTimeout):
        post("/jobs/agent", {"project_name": "Late", "prompt": "x"}, timeout=0.3)
    [job] = wait_until(lambda: jobs.jobs() or None, timeout=2, message="the held job")
    jobs.add_fault(path="/v1/jobs/import/project_media", method="POST", drop_after=True, times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{API}/jobs/import/project_media", json={"project_name": "Lost"}, headers=AUTH, timeout=5)
    listed = requests.get(f"{settings.SANDBOX_ORIGIN}/_sandbox/jobs", timeout=5).json()
    assert [j["job_type"] for j in listed] == ["agent", "import/project_media"]
    assert listed[0]["job_id"] == job["job_id"]
    posts = [r for r in jobs.requests("/v1/jobs/") if r["method"] == "POST"]
    assert [r["job_id"] for r in posts] == [j["job_id"] for j in listed]  # each POST names its job
    # The client can find the lost import by its project's name, then its jobs.
    [project] = get("/projects", name="Lost").json()["data"]
    assert [j["job_id"] for j in get("/jobs", project_id=project["id"]).json()["data"]] == [listed[1]["job_id"]]


def test_the_record_holds_every_call_with_its_job_and_wall_time(jobs):
    job_id = post("/jobs/agent", {"project_name": "Recorded", "prompt": "x"}).json()["job_id"]
    get(f"/jobs/{job_id}")
    time.sleep(0.05)
    get(f"/jobs/{job_id}")
    record = requests.get(f"{settings.SANDBOX_ORIGIN}/_sandbox/requests", params={"path": "/v1/jobs"}, timeout=5).json()
    assert [(r["method"], r["path"], r["job_id"], r["status"]) for r in record] == [
        ("POST", "/v1/jobs/agent", job_id, 201),
        ("GET", f"/v1/jobs/{job_id}", job_id, 200),
        ("GET", f"/v1/jobs/{job_id}", job_id, 200),
    ]
    walls = [r["wall"] for r in record]
    assert walls == sorted(walls) and walls[2] - walls[1] >= 0.05
    assert all(r["authorization_present"] for r in record)
    assert settings.DESCRIPT_API_TOKEN not in json.dumps(record)


# --------------------------------------------------------------------------- callbacks


def test_callbacks_post_the_job_status_when_it_stops(jobs, media, receiver):
    job = imported(media, callback_url=receiver.url(CALLBACK))
    wait_until(lambda: receiver.payloads, timeout=5, message="the callback")
    [body] = receiver.payloads
    assert body == job  # the same JSON as GET /v1/jobs/<id>
    agent = post("/jobs/agent", {"project_id": job["project_id"], "prompt": "x", "callback_url": receiver.url(CALLBACK)})
    cancel_me = post("/jobs/agent", {"project_id": job["project_id"], "prompt": "y", "callback_url": receiver.url(CALLBACK)})
    requests.delete(f"{API}/jobs/{cancel_me.json()['job_id']}", headers=AUTH, timeout=5)
    wait_until(lambda: len(receiver.payloads) == 3, timeout=5, message="two more callbacks")
    states = {b["job_id"]: b["job_state"] for b in receiver.payloads}
    assert states[agent.json()["job_id"]] == "stopped"
    assert states[cancel_me.json()["job_id"]] == "cancelled"
    attempts = {j["job_id"]: j["callback_attempts"] for j in jobs.jobs()}
    assert all(len(a) == 1 and a[0]["status"] == 200 for a in attempts.values())


def test_callbacks_off_never_come_and_failures_are_retried_once(jobs, receiver):
    jobs.configure_jobs(callbacks=False)
    silent = post("/jobs/agent", {"project_name": "Silent", "prompt": "x", "callback_url": receiver.url(CALLBACK)}).json()
    wait_stopped(silent["job_id"])
    time.sleep(0.2)
    assert receiver.payloads == []
    jobs.configure_jobs(callbacks=True)
    receiver.script = [Reply(status=500), Reply(status=500)]  # the first attempt and its one retry
    loud = post("/jobs/agent", {"project_name": "Loud", "prompt": "x", "callback_url": receiver.url(CALLBACK)}).json()
    wait_until(lambda: len(receiver.payloads) == 2, timeout=5, message="a retried callback")
    attempts = wait_until(
        lambda: [j for j in jobs.jobs() if j["job_id"] == loud["job_id"] and len(j["callback_attempts"]) == 2],
        timeout=2, message="two recorded attempts")[0]["callback_attempts"]
    assert [a["status"] for a in attempts] == [500, 500]
    assert attempts[1]["at"] - attempts[0]["at"] >= 0.9


def test_job_settings_over_http_and_reset(jobs):
    origin = settings.SANDBOX_ORIGIN
    changed = requests.post(f"{origin}/_sandbox/jobs/config", json={"time_scale": 30, "fail_media": ["x.wav"]}, timeout=5)
    assert changed.status_code == 200
    assert changed.json()["time_scale"] == 30 and changed.json()["fail_media"] == ["x.wav"]
    assert requests.post(f"{origin}/_sandbox/jobs/config", json={"nope": 1}, timeout=5).status_code == 400
    assert requests.post(f"{origin}/_sandbox/jobs/config", json={"time_scale": 0}, timeout=5).status_code == 400
    assert requests.post(f"{origin}/_sandbox/jobs/config", json={"forbidden": ["export"]}, timeout=5).status_code == 400
    post("/jobs/agent", {"project_name": "Before reset", "prompt": "x"})
    requests.post(f"{origin}/_sandbox/reset", timeout=5)
    assert requests.get(f"{origin}/_sandbox/jobs/config", timeout=5).json()["time_scale"] == 1.0
    assert requests.get(f"{origin}/_sandbox/jobs", timeout=5).json() == []
    assert get("/projects").json()["data"] == []
