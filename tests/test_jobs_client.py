"""The jobs API client: request bodies and failures' words (pure), then every endpoint over real
HTTP against the Descript sandbox, its fault rules and its record of what it received.

Jobs are sped up through the sandbox's job settings; no test sleeps for Descript's real cadence.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from demo.media import wav_bytes
from eid import storage
from eid.jobs.budget import RateBudget
from eid.jobs.client import (
    Job,
    JobsClient,
    JobsError,
    agent_body,
    composition,
    import_body,
    multitrack,
    publish_body,
    url_media,
)

TOKEN = settings.DESCRIPT_API_TOKEN

# --- request bodies (pure) ------------------------------------------------------------------


def test_import_body_with_url_media_a_multitrack_sequence_and_a_composition():
    body = import_body(
        project_name="Roundtable (auto-edit 1a2b)",
        media={
            "Host.wav": url_media("https://bucket.example/host.wav?X-Amz-Signature=abc", language="EN"),
            "Guest.wav": url_media("https://bucket.example/guest.wav"),
            "Roundtable": multitrack([("Host.wav", 0), ("Guest.wav", 1.5)]),
        },
        compositions=[composition("Roundtable", ["Roundtable"], width=1920, height=1080)],
        folder_name="/Edit in Descript/",
        team_access="edit",
        callback_url="https://partner.example/descript/jobs/callback/tok",
    )
    assert body == {
        "project_name": "Roundtable (auto-edit 1a2b)",
        "folder_name": "Edit in Descript",
        "team_access": "edit",
        "add_media": {
            "Host.wav": {"url": "https://bucket.example/host.wav?X-Amz-Signature=abc", "language": "en"},
            "Guest.wav": {"url": "https://bucket.example/guest.wav"},
            "Roundtable": {"tracks": [{"media": "Host.wav", "offset": 0.0}, {"media": "Guest.wav", "offset": 1.5}]},
        },
        "add_compositions": [{"name": "Roundtable", "width": 1920, "height": 1080,
                              "clips": [{"media": "Roundtable"}]}],
        "callback_url": "https://partner.example/descript/jobs/callback/tok",
    }


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: url_media("ftp://files.example/a.wav"), "not a web address"),
        (lambda: url_media("https://files.example/a.wav", language="english"), "two-letter"),
        (lambda: multitrack([]), "at least one track"),
        (lambda: multitrack([("Host.wav", -1)]), "0 or more"),
        (lambda: multitrack([("Host.wav", float("nan"))]), "0 or more"),
        (lambda: import_body(project_name=" ", media={"a.wav": url_media("https://x.example/a")}), "project name"),
        (lambda: import_body(project_name="P", media={}), "at least one file"),
        (lambda: import_body(project_name="P", media={"S": multitrack([("missing.wav", 0)])}), "not in the import"),
        (lambda: import_body(project_name="P", media={"a.wav": url_media("https://x.example/a")},
                             compositions=[composition(None, ["b.wav"])]), "not in the import"),
        (lambda: import_body(project_name="P", media={"a.wav": url_media("https://x.example/a")},
                             team_access="everyone"), "edit, comment, view, none"),
        (lambda: agent_body(prompt="Remove filler words"), "not both"),
        (lambda: agent_body(prompt="x", project_id="p", project_name="n"), "not both"),
        (lambda: agent_body(prompt="  ", project_id="p"), "prompt is missing"),
        (lambda: agent_body(prompt="x", project_name="n", composition_id="c"), "existing project"),
        (lambda: publish_body(project_id="p", media_type="Audio", resolution="1080p"), "only to video"),
        (lambda: publish_body(project_id="p", resolution="8K"), "480p, 720p, 1080p, 1440p, 4K"),
        (lambda: publish_body(project_id="p", access_level="world"), "public, unlisted, drive, private"),
    ],
)
def test_bodies_descript_would_refuse_are_refused_here_with_words(build, words):
    with pytest.raises(JobsError) as caught:
        build()
    assert caught.value.kind == "bad_request" and words in caught.value.words
    assert "://" not in caught.value.words, "words never repeat a link (it may be signed)"
    assert caught.value.status is None, "nothing was sent"


def test_agent_and_publish_bodies():
    assert agent_body(prompt=" Remove filler words ", project_id="p1", composition_id="c1", model="m") == {
        "prompt": "Remove filler words", "project_id": "p1", "composition_id": "c1", "model": "m"}
    assert agent_body(prompt="Make a trailer", project_name="New", team_access="view") == {
        "prompt": "Make a trailer", "project_name": "New", "team_access": "view"}
    assert publish_body(project_id="p1", composition_id="c1", media_type="Video", resolution="720p",
                        access_level="unlisted") == {
        "project_id": "p1", "composition_id": "c1", "media_type": "Video", "resolution": "720p",
        "access_level": "unlisted"}


# --- failures' words and answers' models (pure) -----------------------------------------------


def test_every_kind_has_plain_words_and_only_transient_ones_are_retryable():
    for kind in JobsError.Kind:
        error = JobsError(kind)
        assert str(error) == error.words and len(error.words) > 20
        assert error.retryable == (kind in ("rate_limited", "timeout", "upstream_error"))
    assert "media minutes or AI credits" in JobsError("payment_required").words
    assert "drive" in JobsError("forbidden").words
    with pytest.raises(ValueError):
        JobsError("teapot")


def test_details_from_descript_lose_links_and_the_token():
    error = JobsError("bad_request", detail=f"Invalid media URL https://b.example/a?X-Amz-Signature=s3cr3t {TOKEN}")
    assert "s3cr3t" not in error.detail and TOKEN not in error.detail
    assert error.detail.startswith("Invalid media URL [link]")


def test_a_job_parses_openapis_examples_and_keeps_the_signed_link_out_of_its_repr():
    partial = Job.model_validate({
        "job_id": "6dc3f30a", "job_type": "import/project_media", "job_state": "stopped",
        "created_at": "2025-11-18T10:30:00Z", "stopped_at": "2025-11-18T10:35:00Z", "drive_id": "c9c5",
        "project_id": "9f36", "project_url": "https://web.descript.com/9f36", "something_new": 1,
        "result": {"status": "partial", "media_seconds_used": 136,
                   "media_status": {"intro.mp4": {"status": "success", "duration_seconds": 10.5},
                                    "outro.mp4": {"status": "failed", "error_message": "URL is not accessible"}},
                   "created_compositions": [{"id": "0171c", "name": "Rough Cut"}]},
    })
    assert partial.stopped and partial.result is not None
    assert partial.result.failed_media == {"outro.mp4": "URL is not accessible"}
    assert partial.result.created_compositions[0].id == "0171c"
    published = Job.model_validate({
        "job_id": "j", "job_type": "publish", "job_state": "stopped",
        "result": {"status": "success", "share_url": "https://share.descript.com/view/abc",
                   "download_url": "https://storage.example/o?X-Goog-Signature=sekrit",
                   "download_url_expires_at": "2025-11-18T11:35:00Z"},
    })
    assert published.result is not None and published.result.download_url is not None
    assert "sekrit" not in repr(published) and "sekrit" not in str(published)
    running = Job.model_validate({"job_id": "j", "job_type": "agent", "job_state": "running",
                                  "progress": {"label": "Applying Studio Sound", "percent": 40}})
    assert not running.stopped and running.progress is not None and running.progress.percent == 40


# --- over HTTP, against the sandbox -----------------------------------------------------------


@pytest.fixture
def fast(sandbox):
    """Jobs that take a fraction of a second, with no callbacks (nobody listens here)."""
    sandbox.configure_jobs(import_seconds=0.2, agent_seconds=0.2, publish_seconds=0.2, queued_seconds=0.05,
                           callbacks=False)
    return sandbox


@pytest.fixture
def jobs(db, fast):
    return JobsClient(read_timeout=1.0)


@pytest.fixture
def wav_url(s3):
    storage.put_bytes("jobs/host.wav", wav_bytes(0.4, 220), "audio/wav")
    storage.put_bytes("jobs/guest.wav", wav_bytes(0.3, 440), "audio/wav")
    ttl = settings.EID_PRESIGN_TTL_SECONDS
    return {"Host.wav": storage.presign_get("jobs/host.wav", ttl), "Guest.wav": storage.presign_get("jobs/guest.wav", ttl)}


def until_stopped(client: JobsClient, job_id: str, seconds: float = 15.0) -> Job:
    deadline = time.monotonic() + seconds
    while True:
        job = client.get_job(job_id)
        if job.stopped or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def posts(sandbox, path: str) -> list[dict]:
    return [r for r in sandbox.requests(f"/v1/jobs{path}") if r["method"] == "POST"]


def start_import(client: JobsClient, wav_url: dict[str, str], name: str | None = None):
    body = import_body(
        project_name=name or unique("Roundtable"),
        media={"Host.wav": url_media(wav_url["Host.wav"], language="en"),
               "Guest.wav": url_media(wav_url["Guest.wav"]),
               "Roundtable": multitrack([("Host.wav", 0.0), ("Guest.wav", 1.5)])},
        compositions=[composition("Roundtable", ["Roundtable"])],
        folder_name="Edit in Descript/Tests",
        team_access="comment",
    )
    return body, client.import_project_media(body)


def test_import_agent_publish_round_trip_parses_every_answer(jobs, fast, wav_url):
    body, created = start_import(jobs, wav_url)
    assert (posted := posts(fast, "/import/project_media")) and posted[0]["json"] == body
    assert created.project_id and created.project_url and created.drive_id == settings.DESCRIPT_PARTNER_DRIVE_ID

    imported = until_stopped(jobs, created.job_id)
    assert imported.job_state == "stopped" and imported.job_type == "import/project_media"
    assert imported.result is not None and imported.result.status == "success"
    assert set(imported.result.media_status) == {"Host.wav", "Guest.wav", "Roundtable"}
    assert imported.created_at is not None and imported.stopped_at is not None
    (comp,) = imported.result.created_compositions

    project = jobs.get_project(created.project_id)
    assert project.name == body["project_name"] and project.id == created.project_id
    assert {"Host.wav", "Guest.wav", "Roundtable"} <= set(project.media_files)
    assert [c.id for c in project.compositions] == [comp.id]

    edit = jobs.agent(prompt="Remove filler words", project_id=created.project_id, composition_id=comp.id)
    edited = until_stopped(jobs, edit.job_id)
    assert edited.result is not None and edited.result.status == "success"
    assert "Remove filler words" in (edited.result.agent_response or "") and edited.result.project_changed

    publish = jobs.publish(project_id=created.project_id, composition_id=comp.id, media_type="Audio")
    published = until_stopped(jobs, publish.job_id)
    assert published.result is not None and published.result.status == "success"
    assert published.result.share_url and published.result.download_url
    assert published.result.download_url_expires_at is not None

    assert jobs.calls == len(fast.requests("/v1/")), "every request sent is counted, and only those"


def test_a_partial_import_names_the_files_that_failed(jobs, fast, wav_url):
    fast.configure_jobs(fail_media=["Guest.wav"])
    _, created = start_import(jobs, wav_url)
    job = until_stopped(jobs, created.job_id)
    assert job.result is not None and job.result.status == "partial"
    assert "Guest.wav" in job.result.failed_media and "Host.wav" not in job.result.failed_media


def test_list_and_iter_jobs_filter_and_follow_every_cursor(jobs, fast, wav_url):
    _, created = start_import(jobs, wav_url)
    pid = created.project_id
    agents = [jobs.agent(prompt=f"Edit number {n}", project_id=pid).job_id for n in range(4)]
    other = jobs.agent(prompt="Elsewhere", project_name=unique("Other project"))
    fast.clear_requests()

    everything = list(jobs.iter_jobs(project_id=pid, page_size=2))
    assert [j.job_id for j in everything] == [*reversed(agents), created.job_id], "newest first, all pages"
    pages = [r for r in fast.requests("/v1/jobs") if r["method"] == "GET"]
    assert len(pages) == 3 and "cursor=" not in pages[0]["query"]
    assert all("cursor=" in p["query"] for p in pages[1:])

    page = jobs.list_jobs(project_id=pid, type="agent", limit=3)
    assert [j.job_id for j in page.jobs] == list(reversed(agents))[:3] and page.next_cursor
    assert all(j.job_type == "agent" for j in page.jobs)
    everyone = {j.job_id for j in jobs.iter_jobs(created_after=datetime.now(UTC) - timedelta(minutes=5))}
    assert {*agents, created.job_id, other.job_id} <= everyone
    assert jobs.list_jobs(created_after=datetime.now(UTC) + timedelta(minutes=1)).jobs == []
    with pytest.raises(JobsError) as caught:
        jobs.list_jobs(limit=500)
    assert caught.value.kind == "bad_request"


def test_projects_list_filters_by_name_and_status_says_ok(jobs, fast):
    name = unique("Findable")
    made = jobs.agent(prompt="Make something", project_name=name)
    jobs.agent(prompt="Make another", project_name=unique("Unrelated"))

    found = list(jobs.iter_projects(name=name.split()[-1].upper(), page_size=1))
    assert [(p.id, p.name) for p in found] == [(made.project_id, name)]
    page = jobs.list_projects(limit=1, sort="name", direction="asc")
    assert len(page.projects) == 1 and page.next_cursor
    assert jobs.status().status == "ok"


def test_cancel_stops_the_job_and_cancelling_a_stopped_one_is_a_conflict(jobs, fast):
    fast.configure_jobs(agent_seconds=30.0)
    created = jobs.agent(prompt="A long edit", project_name=unique("Cancel me"))
    jobs.cancel_job(created.job_id)
    assert [r["status"] for r in fast.requests("/v1/jobs/") if r["method"] == "DELETE"] == [204]
    job = jobs.get_job(created.job_id)
    assert job.job_state == "cancelled" and job.stopped

    with pytest.raises(JobsError) as caught:
        jobs.cancel_job(created.job_id)
    assert (caught.value.kind, caught.value.status) == ("conflict", 409)
    assert not caught.value.retryable


# --- each failure, as Descript (the sandbox) answers it -----------------------------------------


def test_refusals_are_distinct_errors_with_words(jobs, fast, wav_url):
    with pytest.raises(JobsError) as bad:
        jobs.import_project_media({"project_name": "No media", "add_media": {"a.wav": {"url": "nope"}}})
    assert (bad.value.kind, bad.value.status) == ("bad_request", 400)
    assert "Invalid media URL format" in bad.value.detail and "Invalid media URL format" in bad.value.words
    assert not bad.value.maybe_created, "Descript refused it: nothing was created"

    fast.configure_jobs(media_minutes_exhausted=True, forbidden=["publish"])
    with pytest.raises(JobsError) as broke:
        start_import(jobs, wav_url)
    assert (broke.value.kind, broke.value.status) == ("payment_required", 402)
    assert "Insufficient media minutes" in broke.value.detail

    edit = jobs.agent(prompt="x", project_name=unique("Forbidden"))
    with pytest.raises(JobsError) as denied:
        jobs.publish(project_id=edit.project_id)
    assert (denied.value.kind, denied.value.status) == ("forbidden", 403)

    with pytest.raises(JobsError) as missing:
        jobs.get_job(str(uuid.uuid4()))
    assert (missing.value.kind, missing.value.status) == ("not_found", 404)
    assert "30 days" in missing.value.words

    with pytest.raises(JobsError) as wrong_token:
        JobsClient(token="not-the-sandbox-token-000").status()
    assert (wrong_token.value.kind, wrong_token.value.status) == ("unauthorized", 401)
    assert "not-the-sandbox-token-000" not in repr(wrong_token.value) + str(wrong_token.value)
    assert not any(e.retryable for e in (bad.value, broke.value, denied.value, missing.value, wrong_token.value))
    assert len(fast.jobs()) == 1, "only the agent job that was allowed exists"


def test_a_get_is_tried_once_more_after_a_5xx_and_then_gives_up(jobs, fast):
    created = jobs.agent(prompt="x", project_name=unique("Flaky"))
    fast.add_fault(path=f"/v1/jobs/{created.job_id}", method="GET", status=503, times=1)
    before = jobs.calls
    assert jobs.get_job(created.job_id).job_id == created.job_id
    assert jobs.calls - before == 2

    fast.add_fault(path=f"/v1/jobs/{created.job_id}", method="GET", status=502, times=2)
    with pytest.raises(JobsError) as caught:
        jobs.get_job(created.job_id)
    assert (caught.value.kind, caught.value.status, caught.value.attempts) == ("upstream_error", 502, 2)
    assert caught.value.retryable and not caught.value.maybe_created


def test_a_submit_answered_with_a_5xx_is_not_sent_again_and_may_have_created_the_job(jobs, fast):
    fast.add_fault(path="/v1/jobs/agent", method="POST", status=500, times=1)
    with pytest.raises(JobsError) as caught:
        jobs.agent(prompt="Remove filler words", project_name=unique("Five hundred"))
    assert (caught.value.kind, caught.value.status) == ("upstream_error", 500)
    assert caught.value.maybe_created and caught.value.retryable
    assert len(posts(fast, "/agent")) == 1, "a submit is never retried blindly"


def test_a_2xx_that_is_not_the_documented_answer_is_a_bad_answer(jobs, fast):
    fast.add_fault(path="/v1/status", status=200, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(JobsError) as caught:
        jobs.status()
    assert caught.value.kind == "bad_answer" and not caught.value.retryable
    fast.clear_faults()
    fast.add_fault(path="/v1/jobs", method="GET", status=200, body='{"data": [{"job_state": "running"}]}',
                   content_type="application/json")
    with pytest.raises(JobsError) as caught:
        jobs.list_jobs()
    assert caught.value.kind == "bad_answer" and "job_id" in caught.value.detail


def test_nothing_is_sent_without_a_token(db, fast):
    with pytest.raises(JobsError) as caught:
        JobsClient(token="").status()
    assert caught.value.kind == "misconfigured"
    assert fast.requests("/v1/") == []


def test_no_listener_means_a_lost_connection_and_a_submit_that_never_left(db, fast):
    from demo.ports import free_port

    closed = JobsClient(base=f"http://127.0.0.1:{free_port()}/v1", token=TOKEN, read_timeout=1.0)
    with pytest.raises(JobsError) as read:
        closed.get_job("j")
    assert read.value.kind == "upstream_error" and closed.calls == 2
    with pytest.raises(JobsError) as submit:
        closed.agent(prompt="x", project_name="n")
    assert submit.value.kind == "upstream_error" and not submit.value.maybe_created, "it never reached Descript"
    assert closed.calls == 4, "a submit that cannot have been sent may be tried once more"


# --- 429 and the shared budget ------------------------------------------------------------------


def test_a_429_holds_off_every_process_and_a_worker_is_told_when_to_come_back(jobs, fast):
    fast.add_fault(path="/v1/jobs", method="GET", status=429, headers={"Retry-After": "7"}, times=1)
    with pytest.raises(JobsError) as caught:
        jobs.list_jobs()
    assert (caught.value.kind, caught.value.status, caught.value.retry_after) == ("rate_limited", 429, 7.0)
    assert caught.value.retryable and jobs.calls == 1

    sent = len(fast.requests("/v1/"))
    other_process = JobsClient()  # its own RateBudget object on the same token: only the row is shared
    with pytest.raises(JobsError) as held:
        other_process.status()
    assert held.value.kind == "rate_limited" and held.value.status is None
    assert 5 < (held.value.retry_after or 0) <= 7
    assert other_process.calls == 0 and len(fast.requests("/v1/")) == sent, "Descript was not called"
    assert RateBudget(TOKEN).snapshot()["throttled_total"] == 1


def test_the_cli_waits_out_a_429_and_goes_on(db, fast):
    fast.add_fault(path="/v1/status", status=429, headers={"Retry-After": "0.3"}, times=1)
    cli = JobsClient(wait_for_budget=True)
    started = time.monotonic()
    assert cli.status().status == "ok"
    assert time.monotonic() - started >= 0.3 and cli.calls == 2
    assert [r["status"] for r in fast.requests("/v1/status")] == [429, 200]


def test_a_spent_budget_refuses_before_calling_descript(db, fast):
    worker = JobsClient(budget=RateBudget(TOKEN, per_minute=2))
    worker.status()
    worker.status()
    with pytest.raises(JobsError) as caught:
        worker.status()
    assert caught.value.kind == "rate_limited" and 50 < (caught.value.retry_after or 0) <= 60
    assert worker.calls == 2 and len(fast.requests("/v1/status")) == 2


# --- a submit whose answer was lost is found, not sent again ------------------------------------


def test_an_import_whose_answer_timed_out_is_found_by_its_project_name(jobs, fast, wav_url):
    fast.add_fault(path="/v1/jobs/import/project_media", method="POST", hold_after_seconds=2.0, times=1)
    name = unique("Lost answer")
    since = datetime.now(UTC)
    with pytest.raises(JobsError) as caught:
        start_import(jobs, wav_url, name)
    assert caught.value.kind == "timeout" and caught.value.maybe_created and caught.value.retryable

    found = jobs.find_submitted(job_type="import/project_media", since=since, project_name=name)
    (only,) = fast.jobs()
    assert found is not None and found.job_id == only["job_id"], "the job the sandbox did create"
    assert len(posts(fast, "/import/project_media")) == 1
    assert jobs.find_submitted(job_type="import/project_media", since=since, project_name=unique("Never sent")) is None


def test_agent_and_publish_whose_connection_dropped_are_found_in_their_project(jobs, fast, wav_url):
    _, created = start_import(jobs, wav_url)
    until_stopped(jobs, created.job_id)
    since = datetime.now(UTC)

    fast.add_fault(path="/v1/jobs/agent", method="POST", drop_after=True, times=1)
    with pytest.raises(JobsError) as caught:
        jobs.agent(prompt="Add Studio Sound", project_id=created.project_id)
    assert caught.value.kind == "upstream_error" and caught.value.maybe_created
    agent = jobs.find_submitted(job_type="agent", since=since, project_id=created.project_id)
    assert agent is not None and agent.job_type == "agent"

    fast.add_fault(path="/v1/jobs/publish", method="POST", drop_after=True, times=1)
    with pytest.raises(JobsError):
        jobs.publish(project_id=created.project_id, media_type="Audio")
    publish = jobs.find_submitted(job_type="publish", since=since, project_id=created.project_id)
    assert publish is not None and publish.job_type == "publish"
    assert [j["job_type"] for j in fast.jobs()] == ["import/project_media", "agent", "publish"]
    assert jobs.find_submitted(job_type="agent", since=since, project_id=created.project_id,
                               exclude={agent.job_id}) is None, "a job the caller already knows is not the answer"
    assert jobs.find_submitted(job_type="publish", since=datetime.now(UTC) + timedelta(minutes=5),
                               project_id=created.project_id) is None


# --- secrets stay out of logs -------------------------------------------------------------------


def test_logs_carry_neither_the_token_nor_signed_links(jobs, fast, wav_url, caplog):
    caplog.set_level(logging.DEBUG)
    fast.add_fault(path="/v1/jobs/agent", method="POST", status=503, times=1)
    _, created = start_import(jobs, wav_url)
    until_stopped(jobs, created.job_id)
    with pytest.raises(JobsError):
        jobs.agent(prompt="x", project_id=created.project_id)
    published = until_stopped(jobs, jobs.publish(project_id=created.project_id, media_type="Audio").job_id)
    assert published.result is not None and published.result.download_url
    signature = published.result.download_url.split("Signature=")[1]

    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("eid"))
    assert "descript POST /jobs/import/project_media: 201" in text
    for secret in (TOKEN, signature, "X-Amz-Signature", "Expires="):
        assert secret not in text
