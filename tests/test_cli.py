"""`manage.py descript`: the command line against the sandbox over real HTTP and moto's S3.

Each test runs the real command (call_command; one test runs it as a process for the real exit
status) and asserts what the sandbox received, what the command printed, and its exit code.
The sandbox's jobs are made short through its job knobs, and the poll cadence through settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

from demo.media import wav_bytes
from eid.jobs.models import AutoEdit, AutoEditBatch, PromptPreset
from support import ROOT, subprocess_env

pytestmark = pytest.mark.django_db

DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123-"
POLL_MIN = 0.15


@pytest.fixture(autouse=True)
def fast(settings, sandbox):
    """Jobs of a few tenths of a second, and the cadence scaled down to match (its shape kept)."""
    settings.EID_JOBS_POLL_FIRST_SECONDS = 0.25
    settings.EID_JOBS_POLL_SECONDS = (0.2, 0.3)
    settings.EID_JOBS_POLL_MIN_SECONDS = POLL_MIN
    sandbox.configure_jobs(import_seconds=0.3, agent_seconds=0.3, publish_seconds=0.3, queued_seconds=0.1,
                           callbacks=False)
    return sandbox


def descript(*args: str) -> tuple[int, str, str]:
    """Run `manage.py descript ARGS`: (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("descript", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def lines(stdout: str) -> list[dict]:
    """--json output: every line is one JSON object, and nothing else is on stdout."""
    return [json.loads(line) for line in stdout.splitlines()]


def put(s3, key: str, data: bytes | None = None, ctype: str = "audio/wav") -> str:
    s3.put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data or wav_bytes(0.2), ContentType=ctype)
    return key


def import_bodies(sandbox) -> list[dict]:
    return [r["json"] for r in sandbox.requests("/v1/jobs/import/project_media") if r["method"] == "POST"]


# --- import: bucket keys, share links, refusals -------------------------------------------------


def test_a_bucket_key_is_sent_as_a_48_hour_presigned_url_and_never_printed(s3, sandbox):
    put(s3, "alice/ep12/mix.wav")

    code, out, err = descript("import", "alice/ep12/mix.wav", "--project-name", "Episode 12", "--language", "en",
                              "--folder", "Clients/Acme", "--team-access", "edit", "--json")

    assert code == 0, err
    [body] = import_bodies(sandbox)
    assert (body["project_name"], body["folder_name"], body["team_access"]) == ("Episode 12", "Clients/Acme", "edit")
    [(name, item)] = body["add_media"].items()
    assert name == "mix.wav" and item["language"] == "en"
    url = urlsplit(item["url"])
    query = parse_qs(url.query)
    assert url.path == f"/{settings.AWS_STORAGE_BUCKET_NAME}/alice/ep12/mix.wav"
    assert query["X-Amz-Expires"] == ["172800"] and "X-Amz-Signature" in query
    [result] = lines(out)
    job_id = result["job_id"]
    assert [j["job_id"] for j in sandbox.jobs()] == [job_id]
    assert result["media"] == {"mix.wav": "alice/ep12/mix.wav"} and result["skipped"] == []
    assert "X-Amz-Signature" not in out + err


def test_drive_and_dropbox_share_links_reach_descript_as_direct_downloads(sandbox):
    code, out, err = descript(
        "import", f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing",
        "https://www.dropbox.com/scl/fi/xyz789/Take%202.mp4?rlkey=k3y&dl=0", "--project-name", "Links", "--json",
    )

    assert code == 0, err
    [body] = import_bodies(sandbox)
    assert body["add_media"] == {
        f"drive-{DRIVE_ID[:16]}": {"url": f"https://drive.google.com/uc?export=download&id={DRIVE_ID}"},
        "Take 2.mp4": {"url": "https://www.dropbox.com/scl/fi/xyz789/Take%202.mp4?rlkey=k3y&dl=1"},
    }
    assert lines(out)[0]["project_id"] == sandbox.jobs()[0]["project_id"]


@pytest.mark.parametrize(
    "media, words",
    [
        ("http://cdn.example.com/ep1.mp3", "plain http link"),
        ("ftp:ep1.mp3", "is a ftp: link"),
        ("/home/me/ep1.wav", "looks like a path on this machine"),
        ("https://user:s3cr3t@cdn.example.com/ep1.mp3", "carries a user name or password"),
        ("https://cdn.example.com/notes.pdf", "is a PDF file, which Descript does not import"),
    ],
)
def test_a_refused_link_exits_2_with_the_reason_and_sends_nothing(s3, sandbox, media, words):
    put(s3, "alice/ok.wav")

    code, out, err = descript("import", "alice/ok.wav", media, "--json")

    assert code == 2
    [answer] = lines(out)
    assert answer["exit_code"] == 2 and answer["error"]["kind"] == "media_refused"
    assert words in answer["error"]["words"]
    assert [r["reason"] for r in answer["error"]["refused"]] == [answer["error"]["words"]]
    assert "s3cr3t" not in out + err
    assert sandbox.requests("/v1/") == []


def test_without_json_the_refusal_is_words_on_stderr(sandbox):
    code, out, err = descript("import", "http://cdn.example.com/ep1.mp3")

    assert code == 2 and out == ""
    assert err.startswith("error: “http://cdn.example.com/ep1.mp3” is a plain http link")


def test_the_process_exit_status_is_the_documented_code_and_stdout_is_json_only(sandbox):
    env = subprocess_env()
    done = subprocess.run(
        [sys.executable, "manage.py", "descript", "import", "~/Music/ep1.wav", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    [answer] = lines(done.stdout)
    assert answer["error"]["kind"] == "media_refused" and "local files are not uploaded" in answer["error"]["words"]
    # Bad arguments are argparse's: exit 2, usage on stderr.
    done = subprocess.run([sys.executable, "manage.py", "descript", "publish", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--project-id" in done.stderr and done.stdout == ""


def test_a_key_missing_among_several_files_is_skipped_and_the_import_is_partial(s3, sandbox):
    put(s3, "alice/host.wav")

    code, out, err = descript("import", "alice/host.wav", "alice/guest.wav", "--json")

    assert code == 3, err
    [body] = import_bodies(sandbox)
    assert list(body["add_media"]) == ["host.wav"]
    [result] = lines(out)
    assert result["project_name"] == "host"
    assert result["skipped"] == [{"media": "alice/guest.wav", "reason": "“alice/guest.wav” is not in the bucket "
                                  "(local files are not uploaded: put the file in the bucket, or give an https link)."}]


def test_when_no_key_is_in_the_bucket_nothing_is_sent_and_it_exits_2(s3, sandbox):
    code, out, err = descript("import", "alice/gone.wav", "alice/lost.wav", "--json")

    assert code == 2
    assert lines(out)[0]["error"]["kind"] == "nothing_to_import"
    assert sandbox.requests("/v1/") == []


def test_a_multitrack_import_sends_the_sequence_with_offsets_and_its_composition(s3, sandbox):
    put(s3, "rt/host.wav")
    put(s3, "rt/guest.wav")

    code, out, err = descript("import", "rt/host.wav", "rt/guest.wav", "--multitrack", "--offset", "guest.wav=1.5",
                              "--composition", "Roundtable", "--json")

    assert code == 0, err
    [body] = import_bodies(sandbox)
    assert body["add_media"]["Roundtable"] == {"tracks": [{"media": "host.wav", "offset": 0.0},
                                                          {"media": "guest.wav", "offset": 1.5}]}
    assert body["add_compositions"] == [{"name": "Roundtable", "clips": [{"media": "Roundtable"}]}]


def test_an_offset_without_multitrack_is_bad_input(s3, sandbox):
    put(s3, "rt/host.wav")
    code, out, _ = descript("import", "rt/host.wav", "--offset", "host.wav=2", "--json")
    assert code == 2 and "only with --multitrack" in lines(out)[0]["error"]["words"]


# --- waiting, and the exit codes of a job's end --------------------------------------------------


def test_import_wait_follows_the_job_to_success_at_the_cadence(s3, sandbox):
    put(s3, "alice/solo.wav")

    code, out, err = descript("import", "alice/solo.wav", "--wait", "--json")

    assert code == 0, err
    first, *changes = lines(out)
    final = changes[-1]
    assert final["job_id"] == first["job_id"] and final["job_state"] == "stopped"
    assert final["result"]["status"] == "success"
    assert final["result"]["media_status"]["solo.wav"]["status"] == "success"
    assert [c["job_state"] for c in changes][0] in ("queued", "running")
    gets = [r["wall"] for r in sandbox.requests(f"/v1/jobs/{first['job_id']}") if r["method"] == "GET"]
    assert len(gets) >= 2
    assert min(b - a for a, b in zip(gets, gets[1:])) >= POLL_MIN - 0.01


def test_a_file_descript_could_not_import_makes_a_partial_import_exit_3(s3, sandbox):
    put(s3, "alice/host.wav")
    put(s3, "alice/guest.wav")
    sandbox.configure_jobs(fail_media=["guest.wav"])

    code, out, err = descript("import", "alice/host.wav", "alice/guest.wav", "--wait")

    assert code == 3, err
    assert "(partial)" in out and "guest.wav: failed" in out and "host.wav: success" in out


def test_402_from_descript_is_a_failure_in_plain_words(s3, sandbox):
    put(s3, "alice/solo.wav")
    sandbox.configure_jobs(media_minutes_exhausted=True)

    code, out, err = descript("import", "alice/solo.wav", "--json")

    assert code == 1
    [answer] = lines(out)
    assert answer == {"error": {"kind": "payment_required", "status": 402,
                                "words": "The Descript account has run out of media minutes or AI credits for this "
                                         "job. Add minutes or credits in Descript, then try again."},
                      "exit_code": 1}
    assert sandbox.jobs() == []


def test_descript_unreachable_or_not_configured_exits_4(s3, sandbox, settings):
    put(s3, "alice/solo.wav")
    settings.DESCRIPT_API_TOKEN = ""
    code, out, _ = descript("import", "alice/solo.wav", "--json")
    assert code == 4 and lines(out)[0]["error"]["kind"] == "misconfigured"

    settings.DESCRIPT_API_TOKEN = "sandbox-token-tests-7Hq2LmZ9"
    from support import free_port

    settings.DESCRIPT_API_BASE = f"http://127.0.0.1:{free_port()}/v1"
    code, out, _ = descript("jobs", "get", "nope", "--json")
    assert code == 4 and lines(out)[0]["error"]["kind"] == "upstream_error"


def _imported_project(s3, sandbox) -> tuple[str, str]:
    put(s3, "alice/solo.wav")
    code, out, err = descript("import", "alice/solo.wav", "--composition", "Main", "--wait", "--json")
    assert code == 0, err
    final = lines(out)[-1]
    return final["project_id"], final["result"]["created_compositions"][0]["id"]


def test_agent_and_publish_wait_for_their_results(s3, sandbox):
    project_id, composition_id = _imported_project(s3, sandbox)

    code, out, err = descript("agent", "--project-id", project_id, "--composition-id", composition_id,
                              "--prompt", "Remove filler words", "--model", "haiku-4.5", "--wait", "--json")
    assert code == 0, err
    assert "Remove filler words" in lines(out)[-1]["result"]["agent_response"]
    [agent] = [r["json"] for r in sandbox.requests("/v1/jobs/agent")]
    assert agent == {"project_id": project_id, "composition_id": composition_id, "prompt": "Remove filler words",
                     "model": "haiku-4.5"}

    code, out, err = descript("publish", "--project-id", project_id, "--composition-id", composition_id,
                              "--media-type", "video", "--resolution", "720p", "--access-level", "unlisted",
                              "--wait", "--json")
    assert code == 0, err
    result = lines(out)[-1]["result"]
    assert result["share_url"].startswith("http")
    assert "download_url" not in result and "download_url_expires_at" in result
    [publish] = [r["json"] for r in sandbox.requests("/v1/jobs/publish")]
    assert publish == {"project_id": project_id, "composition_id": composition_id, "media_type": "Video",
                       "resolution": "720p", "access_level": "unlisted"}


def test_an_agent_job_that_ends_in_error_exits_1_with_descripts_message(s3, sandbox):
    project_id, _ = _imported_project(s3, sandbox)
    sandbox.configure_jobs(agent_error="The agent could not understand the request")

    code, out, err = descript("agent", "--project-id", project_id, "--prompt", "Do it", "--wait")

    assert code == 1
    assert "error: The agent could not understand the request" in out


# --- jobs list | get | cancel | watch -------------------------------------------------------------


def test_jobs_list_follows_the_cursor_up_to_the_limit_with_filters(s3, sandbox):
    for n in range(5):
        put(s3, f"alice/{n}.wav")
        assert descript("import", f"alice/{n}.wav", "--json")[0] == 0
    sandbox.clear_requests()

    code, out, err = descript("jobs", "list", "--type", "import/project_media", "--days", "2", "--limit", "4",
                              "--page-size", "2", "--json")

    assert code == 0, err
    [listing] = lines(out)
    newest_first = [j["job_id"] for j in reversed(sandbox.jobs())]
    assert listing["count"] == 4 and [j["job_id"] for j in listing["jobs"]] == newest_first[:4]
    pages = [parse_qs(r["query"]) for r in sandbox.requests("/v1/jobs") if r["path"] == "/v1/jobs"]
    assert len(pages) == 2 and "cursor" not in pages[0] and "cursor" in pages[1]
    assert all(p["type"] == ["import/project_media"] and p["limit"] == ["2"] and "created_after" in p for p in pages)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--days", "31"], "--days must be more than 0 and at most 30"),
        (["--since", "yesterday"], "is not an ISO 8601 time"),
        (["--since", "2026-11-20T00:00:00Z", "--until", "2026-11-19T00:00:00Z"], "--until must be later"),
    ],
)
def test_jobs_list_refuses_a_window_descript_would_not_answer(sandbox, args, words):
    code, out, _ = descript("jobs", "list", *args, "--json")
    assert code == 2 and words in lines(out)[0]["error"]["words"]
    assert sandbox.requests("/v1/") == []


def test_jobs_get_cancel_and_watch_one_job(s3, sandbox):
    put(s3, "alice/solo.wav")
    sandbox.configure_jobs(import_seconds=30.0)
    job_id = lines(descript("import", "alice/solo.wav", "--json")[1])[0]["job_id"]

    code, out, _ = descript("jobs", "get", job_id, "--json")
    assert code == 0 and lines(out)[0]["job_id"] == job_id and lines(out)[0]["job_state"] in ("queued", "running")

    code, out, _ = descript("jobs", "cancel", job_id, "--json")
    assert code == 0 and lines(out) == [{"job_id": job_id, "cancelled": True}]
    assert [r["method"] for r in sandbox.requests(f"/v1/jobs/{job_id}")][-1] == "DELETE"

    code, out, _ = descript("jobs", "watch", job_id, "--json")
    assert code == 1  # a cancelled job is not a success
    assert [line["job_state"] for line in lines(out)] == ["cancelled"]


def test_watch_prints_plain_lines_for_each_change_when_not_on_a_terminal(s3, sandbox):
    put(s3, "alice/solo.wav")
    job_id = lines(descript("import", "alice/solo.wav", "--json")[1])[0]["job_id"]

    code, out, _ = descript("jobs", "watch", job_id)

    assert code == 0
    assert f"Import job {job_id}: stopped (success)" in out
    assert "solo.wav: success" in out


def test_jobs_get_of_an_unknown_job_is_a_failure(sandbox):
    code, out, _ = descript("jobs", "get", "project-media-import-nope", "--json")
    assert code == 1 and lines(out)[0]["error"]["kind"] == "not_found"


# --- batch ------------------------------------------------------------------------------------------


@pytest.fixture
def two_recordings(make_recording, alice):
    first = make_recording(alice, "Episode 1", mix=("alice/e1.wav", wav_bytes(0.2), "audio/wav"))
    second = make_recording(alice, "Episode 2", mix=("alice/e2.wav", wav_bytes(0.2), "audio/wav"))
    return first, second


def test_batch_queues_an_auto_edit_per_recording_through_the_state_machine(two_recordings, sandbox):
    first, second = two_recordings

    code, out, err = descript("batch", str(first.pk), str(second.pk), "--user", "alice",
                              "--prompt", "Remove filler words", "--media-type", "video", "--resolution", "1080p",
                              "--max-in-flight", "2", "--name", "Overnight", "--json")

    assert code == 0, err
    [result] = lines(out)
    batch = AutoEditBatch.objects.get()
    assert result["batch"] == str(batch.pk)
    assert (batch.via, batch.requested_by, batch.name, batch.max_in_flight) == ("cli", "cli", "Overnight", 2)
    rows = AutoEdit.objects.filter(batch=batch).order_by("item_ref")
    assert [(ae.item_ref, ae.state, ae.prompt, ae.media_type, ae.resolution) for ae in rows] == [
        (str(first.pk), "queued", "Remove filler words", "Video", "1080p"),
        (str(second.pk), "queued", "Remove filler words", "Video", "1080p"),
    ]
    assert [(i["ref"], i["auto_edit"]["state"]) for i in result["items"]] == [(str(first.pk), "queued"),
                                                                               (str(second.pk), "queued")]
    assert result["counts"]["queued"] == 2 and result["counts"]["total"] == 2
    assert sandbox.requests("/v1/") == []  # the worker talks to Descript, not the command


def test_a_batch_where_some_recordings_are_refused_is_partial(two_recordings, bob):
    first, _ = two_recordings
    PromptPreset.objects.create(name="Clean up", prompt="Remove filler words and add Studio Sound")

    code, out, err = descript("batch", str(first.pk), "99999", "--user", "alice", "--preset", "Clean up", "--json")

    assert code == 3, err
    [result] = lines(out)
    assert result["items"][1] == {"ref": "99999", "refused": {"kind": "not_found", "reason": "There is no such recording."}}
    assert AutoEdit.objects.get().prompt == "Remove filler words and add Studio Sound"

    code, out, _ = descript("batch", str(first.pk), "--user", "bob", "--prompt", "x", "--json")
    assert code == 1  # bob owns none of them: every item refused


def test_batch_option_names_the_download_option_for_every_recording(two_recordings):
    first, second = two_recordings

    code, out, err = descript("batch", str(first.pk), str(second.pk), "--user", "alice", "--option", "mix",
                              "--prompt", "Tighten it", "--json")
    assert code == 0, err
    assert sorted(AutoEdit.objects.values_list("option", flat=True)) == ["mix", "mix"]

    code, out, _ = descript("batch", str(first.pk), "--user", "alice", "--option", "stems", "--prompt", "x", "--json")
    assert code == 1  # no recording has that option: every item refused, with the reason
    assert lines(out)[0]["items"][0]["refused"]["kind"] == "not_found"


@pytest.mark.parametrize(
    "args, kind",
    [
        (["--user", "alice", "--preset", "Nope"], "unknown_preset"),
        (["--user", "nobody", "--prompt", "x"], "unknown_user"),
        (["--user", "alice"], "no_prompt"),
    ],
)
def test_batch_bad_input_exits_2_and_writes_nothing(two_recordings, args, kind):
    first, _ = two_recordings
    code, out, _ = descript("batch", str(first.pk), *args, "--json")
    assert code == 2 and lines(out)[0]["error"]["kind"] == kind
    assert not AutoEdit.objects.exists()


class Terminal(StringIO):
    """A stream that says it is a terminal, as a person's shell is."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_watch_draws_a_live_bar_with_descripts_label_and_percent(s3, sandbox):
    put(s3, "alice/solo.wav")
    sandbox.configure_jobs(import_seconds=1.5)
    job_id = lines(descript("import", "alice/solo.wav", "--json")[1])[0]["job_id"]
    screen = Terminal()

    call_command("descript", "jobs", "watch", job_id, stdout=screen, stderr=StringIO())

    drawn = screen.getvalue()
    assert "\x1b[" in drawn  # drawn in place with terminal escapes, not printed line by line
    assert any(label in drawn for label in ("Downloading media", "Transcribing", "Creating compositions"))
    assert "Import: running" in drawn and "100%" in drawn
    assert f"Import job {job_id}: stopped (success)" in drawn


def test_a_429_while_watching_is_waited_out_for_its_retry_after(s3, sandbox):
    put(s3, "alice/solo.wav")
    job_id = lines(descript("import", "alice/solo.wav", "--json")[1])[0]["job_id"]
    sandbox.add_fault(path=f"/v1/jobs/{job_id}", method="GET", times=1, status=429, headers={"Retry-After": "1"},
                      body=json.dumps({"error": "rate_limit_exceeded", "message": "Too many requests"}),
                      content_type="application/json")

    code, out, err = descript("jobs", "watch", job_id, "--json")

    assert code == 0, err
    assert lines(out)[-1]["result"]["status"] == "success"
    gets = [(r["wall"], r["status"]) for r in sandbox.requests(f"/v1/jobs/{job_id}") if r["method"] == "GET"]
    assert gets[0][1] == 429 and gets[1][1] == 200
    assert gets[1][0] - gets[0][0] >= 1.0 - 0.05


@pytest.mark.django_db(transaction=True)
def test_batch_wait_shows_counts_as_the_rows_change_until_every_auto_edit_is_final(two_recordings, sandbox):
    """The command only watches rows: here a person cancels both auto-edits while it waits."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from eid.jobs.control import cancel
    from support import wait_until

    first, second = two_recordings
    out = StringIO()

    def batch_and_wait() -> int:
        try:
            call_command("descript", "batch", str(first.pk), str(second.pk), "--user", "alice", "--prompt", "Tidy up",
                         "--wait", "--json", stdout=out, stderr=StringIO())
            return 0
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            connection.close()

    def printed(n: int) -> bool:
        return out.getvalue().count("\n") >= n

    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(batch_and_wait)
        wait_until(lambda: printed(2), timeout=20, message="the batch and its first counts")
        first_ae, second_ae = AutoEdit.objects.order_by("item_ref")
        assert cancel(first_ae, by="test")
        wait_until(lambda: printed(3), timeout=20, message="counts after one cancel")
        assert cancel(second_ae, by="test")
        code = running.result(timeout=30)

    assert code == 1  # nothing got done: every auto-edit was cancelled
    started, *updates, final = lines(out.getvalue())
    assert [i["auto_edit"]["state"] for i in started["items"]] == ["queued", "queued"]
    assert [(u["counts"]["queued"], u["counts"]["cancelled"]) for u in updates] == [(2, 0), (1, 1), (0, 2)]
    assert final["final"] is True and [a["state"] for a in final["auto_edits"]] == ["cancelled", "cancelled"]
