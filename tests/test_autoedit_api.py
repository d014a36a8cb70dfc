"""The auto-edits API with real service tokens: a batch started with an Idempotency-Key (replayed,
mixed results), scoped and read-only tokens, validation in plain words, reading, cancelling,
choosing after a partial import; schemathesis against the served OpenAPI document."""

from __future__ import annotations

import uuid

import pytest

from demo.media import wav_bytes
from eid.api.models import ApiToken
from eid.jobs.models import AutoEdit, AutoEditBatch, JobStep, PromptPreset

from api_fuzz import api_schema, fuzz
from autoedit_support import TRACKS, calls, drive, fast  # noqa: F401
from support import bearer

pytestmark = pytest.mark.django_db
BASE = "/api/v1/auto-edits"


@pytest.fixture
def solo(make_recording, alice):
    return make_recording(alice, "Solo episode", mix=("alice/solo.wav", None, "audio/wav"))


@pytest.fixture
def bobs(make_recording, bob):
    return make_recording(bob, "Bob's show", mix=("bob/show.wav", None, "audio/wav"))


def start(client, key, body, idem: str | None = "key-1"):
    headers = bearer(key)
    if idem is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idem
    return client.post(BASE, body, content_type="application/json", **headers)


def test_a_batch_with_mixed_recordings(client, key, alice, bob, solo, bobs, make_recording):
    empty = make_recording(alice, "No files")  # nothing Descript can import
    PromptPreset.objects.create(name="Clean up", prompt="Remove filler words.")
    body = {"recordings": [
        {"recording": str(solo.pk), "user": "alice"},
        {"recording": str(bobs.pk), "user": "alice"},  # not alice's
        {"recording": str(empty.pk), "user": "alice"},
        {"recording": str(bobs.pk), "user": "nobody"},
        {"recording": str(bobs.pk), "user": "bob"},
    ], "preset": "Clean up", "media_type": "video", "resolution": "720p", "name": "Tonight", "max_in_flight": 2}
    answer = start(client, key, body)
    assert answer.status_code == 201, answer.content
    data = answer.json()
    batch = AutoEditBatch.objects.get()
    assert data["batch"] == str(batch.pk) and answer["Location"] == data["url"]
    assert data["url"].endswith(f"/api/v1/auto-edit-batches/{batch.pk}")
    assert (batch.name, batch.via, batch.max_in_flight, batch.media_type, batch.resolution) == (
        "Tonight", "api", 2, "Video", "720p")
    assert batch.requested_by.startswith("token:eid_")
    results = data["results"]
    assert [r["result"] for r in results] == ["started", "refused", "refused", "refused", "started"]
    assert [r.get("code") for r in results] == [None, "not_found", "not_importable", "unknown_user", None]
    assert results[1]["detail"] == "There is no such recording."
    assert (data["started"], data["refused"]) == (2, 3)
    started = AutoEdit.objects.get(pk=results[0]["auto_edit"])
    assert (started.user, started.item_ref, started.batch, started.prompt) == (alice, str(solo.pk), batch,
                                                                                "Remove filler words.")
    assert AutoEdit.objects.get(pk=results[4]["auto_edit"]).user == bob


def test_the_same_key_replays_the_same_batch(client, key, solo):
    body = {"recordings": [{"recording": str(solo.pk), "user": "alice"}], "prompt": "Tighten"}
    first = start(client, key, body, idem="nightly-2026-11-25")
    again = start(client, key, body, idem="nightly-2026-11-25")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert AutoEditBatch.objects.count() == 1 and AutoEdit.objects.count() == 1
    other = start(client, key, {**body, "prompt": "Something else"}, idem="nightly-2026-11-25")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_an_idempotency_key_is_required(client, key, solo):
    answer = start(client, key, {"recordings": [{"recording": str(solo.pk), "user": "alice"}], "prompt": "x"},
                   idem=None)
    assert answer.status_code == 400
    assert answer.json()["code"] == "idempotency_key_required" and "Idempotency-Key" in answer.json()["detail"]
    assert not AutoEditBatch.objects.exists()


def test_read_only_tokens_may_read_only(client, solo, alice):
    read_only = ApiToken.issue("dashboard", read_only=True)[1]
    answer = start(client, read_only, {"recordings": [{"recording": str(solo.pk), "user": "alice"}], "prompt": "x"})
    assert answer.status_code == 403 and answer.json()["code"] == "read_only_token"
    assert client.get(BASE, **bearer(read_only)).status_code == 200
    assert not AutoEdit.objects.exists()


def test_a_token_with_an_owner_acts_for_that_user_only(client, key, alice_key, solo, bobs):
    answer = start(client, alice_key, {"recordings": [{"recording": str(solo.pk), "user": "alice"},
                                                      {"recording": str(bobs.pk), "user": "bob"},
                                                      {"recording": str(bobs.pk), "user": "ghost"}],
                                       "prompt": "Tighten"})
    assert answer.status_code == 201
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["started", "refused", "refused"]
    # Another user, existing or not: the same answer.
    assert results[1]["code"] == results[2]["code"] == "permission_denied"
    assert results[1]["detail"] == results[2]["detail"]

    bobs_edit = start(client, key, {"recordings": [{"recording": str(bobs.pk), "user": "bob"}], "prompt": "x"},
                      idem="k2").json()["results"][0]["auto_edit"]
    assert client.get(f"{BASE}/{bobs_edit}", **bearer(alice_key)).status_code == 404
    assert client.post(f"{BASE}/{bobs_edit}/cancel", **bearer(alice_key)).status_code == 404
    listed = client.get(BASE, **bearer(alice_key)).json()["results"]
    assert [row["user"] for row in listed] == ["alice"]
    batch = answer.json()["batch"]
    assert client.get(f"/api/v1/auto-edit-batches/{batch}", **bearer(alice_key)).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({}, "recordings"),
    ({"recordings": []}, "recordings"),
    ({"recordings": [{"recording": "1"}], "prompt": "x"}, "recordings.0.user"),  # named by its path
    ({"recordings": [{"recording": "1", "user": "alice"}], "prompt": "x", "media_type": "Audio"}, "media_type"),
    ({"recordings": [{"recording": "1", "user": "alice"}], "prompt": "x", "resolution": "8K"}, "resolution"),
    ({"recordings": [{"recording": "1", "user": "alice"}], "preset": "No such preset"}, "preset"),
    ({"recordings": [{"recording": "1", "user": "alice"}], "prompt": "x", "max_in_flight": 0}, "max_in_flight"),
    ({"recordings": "1"}, "recordings"),
])
def test_validation_errors_name_the_field_in_words(client, key, alice, body, field):
    answer = start(client, key, body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["code"] == "invalid" and field in error["errors"] and field in error["detail"]
    assert not AutoEditBatch.objects.exists()


def test_a_batch_without_a_prompt_is_refused_whole(client, key, solo):
    answer = start(client, key, {"recordings": [{"recording": str(solo.pk), "user": "alice"}], "prompt": "  "})
    assert answer.status_code == 400
    assert answer.json() == {"code": "no_prompt", "detail": "Choose a preset or tell Underlord what to do."}
    assert not AutoEditBatch.objects.exists()


@pytest.mark.django_db(transaction=True)  # cancel acts at once outside a transaction, as in a real request
def test_read_cancel_and_list(client, key, solo):
    started = start(client, key, {"recordings": [{"recording": str(solo.pk), "user": "alice"}], "prompt": "Tighten"})
    ae_id = started.json()["results"][0]["auto_edit"]

    detail = client.get(f"{BASE}/{ae_id}", **bearer(key))
    body = detail.json()
    assert detail.status_code == 200
    assert (body["id"], body["state"], body["user"], body["item_ref"], body["can_cancel"]) == (
        ae_id, "queued", "alice", str(solo.pk), True)
    assert body["url"].endswith(f"{BASE}/{ae_id}")

    listed = client.get(f"{BASE}?state=queued&recording={solo.pk}", **bearer(key)).json()
    assert [row["id"] for row in listed["results"]] == [ae_id]
    assert client.get(f"{BASE}?state=done", **bearer(key)).json()["results"] == []
    assert client.get(f"{BASE}?batch={started.json()['batch']}", **bearer(key)).json()["results"][0]["id"] == ae_id
    assert client.get(f"{BASE}?stat=done", **bearer(key)).status_code == 400

    cancelled = client.post(f"{BASE}/{ae_id}/cancel", **bearer(key))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    too_late = client.post(f"{BASE}/{ae_id}/cancel", **bearer(key))
    assert too_late.status_code == 409
    assert too_late.json()["code"] == "not_possible" and "Cancelled" in too_late.json()["detail"]

    batch = client.get(f"/api/v1/auto-edit-batches/{started.json()['batch']}", **bearer(key)).json()
    assert batch["counts"]["cancelled"] == 1 and batch["counts"]["total"] == 1
    assert batch["items"][0]["id"] == ae_id and batch["prompt"] == "Tighten"


@pytest.mark.django_db(transaction=True)
def test_go_on_and_stop_after_a_partial_import(client, key, solo, make_recording, alice):
    other = make_recording(alice, "Second", mix=("alice/second.wav", None, "audio/wav"))
    started = start(client, key, {"recordings": [{"recording": str(solo.pk), "user": "alice"},
                                                 {"recording": str(other.pk), "user": "alice"}], "prompt": "Tighten"})
    first, second = (r["auto_edit"] for r in started.json()["results"])
    for n, ae_id in enumerate((first, second)):
        JobStep.objects.create(auto_edit_id=ae_id, kind="import", state="partial", job_id=f"job-{n}",
                               callback_digest=f"{n}" * 64)
        AutoEdit.objects.filter(pk=ae_id).update(state="needs_choice", project_id=f"proj-{n}",
                                                 failed_files={"guest.wav": "Not a media file."})
    assert client.get(f"{BASE}/{first}", **bearer(key)).json()["can_choose"] is True

    stopped = client.post(f"{BASE}/{first}/stop", **bearer(key))
    assert stopped.status_code == 200 and stopped.json()["state"] == "cancelled"
    went_on = client.post(f"{BASE}/{second}/go-on", **bearer(key))
    assert went_on.status_code == 200 and went_on.json()["can_choose"] is False
    assert client.post(f"{BASE}/{second}/stop", **bearer(key)).status_code == 409


def test_unknown_ids_are_404s_in_the_api_shape(client, key):
    for address in (f"{BASE}/not-a-uuid", f"{BASE}/{uuid.uuid4()}", f"/api/v1/auto-edit-batches/{uuid.uuid4()}"):
        answer = client.get(address, **bearer(key))
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert client.post(f"{BASE}/{uuid.uuid4()}/go-on", **bearer(key)).status_code == 404


# --- schemathesis against the document the site serves -----------------------------------------------------


@pytest.fixture
def jobs_api_schema(db):
    with api_schema() as schema:
        yield schema


OPERATIONS = [("POST", ""), ("GET", ""), ("GET", "/{auto_edit_id}"), ("POST", "/{auto_edit_id}/cancel"),
              ("POST", "/{auto_edit_id}/go-on"), ("POST", "/{auto_edit_id}/stop")]


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("method, address", [*((m, BASE + a) for m, a in OPERATIONS),
                                             ("GET", "/api/v1/auto-edit-batches/{batch_id}")])
def test_auto_edit_endpoints_match_their_document_and_never_fail(jobs_api_schema, key, solo, method, address, mode):
    """Generated requests (valid ones, and ones the document says are invalid): never a 500, every
    answer's status, content type, headers and body as documented, and invalid input refused."""
    from eid.jobs.machine import start_batch

    batch, [(_, ae)] = start_batch(items=[(solo.owner, str(solo.pk))], prompt="Tighten", via="api")
    known = {"auto_edit_id": str(ae.pk), "batch_id": str(batch.pk)}
    operation = jobs_api_schema[address][method]

    def prepare(case, seen):
        negative = {location for location, info in case.meta.components.items() if info.mode.is_negative}
        if mode == "negative" and negative <= {"header"}:
            return False  # only the Authorization header was left out, and the test sends it anyway
        if mode == "positive" and case.path_parameters and len(seen) % 2:
            case.path_parameters = {**case.path_parameters,  # every other case names rows that exist
                                    **{k: v for k, v in known.items() if k in case.path_parameters}}
        if mode == "positive" and method == "POST" and address == BASE and len(seen) % 2 and case.body:
            case.body = {**case.body, "recordings": [{"recording": str(solo.pk), "user": "alice"}]}
        return True

    seen = fuzz(operation, mode, key, max_examples=12, prepare=prepare)
    assert seen and 500 not in seen


@pytest.mark.django_db(transaction=True)  # the import goes to the sandbox from this process, as a worker's would
def test_each_recording_may_name_its_download_option(client, key, fast, alice, make_recording):
    """One batch, two recordings with a mix and three tracks: `"option": "mix"` sends the mixed file
    alone; without an option the tracks go as a multitrack sequence. An unknown option refuses only
    its recording."""
    tracks = [(f"alice/{{}}/{name}.wav", wav_bytes(0.2, freq), "audio/wav", f"{name}.wav", offset)
              for name, offset, freq in TRACKS]

    def both(title: str, folder: str):
        return make_recording(alice, title, mix=(f"alice/{folder}/mix.wav", wav_bytes(0.3, 660), "audio/wav"),
                              tracks=[(k.format(folder), *rest) for k, *rest in tracks])

    mixed, multi, odd = both("Mixed please", "a"), both("Tracks please", "b"), both("Odd", "c")
    answer = start(client, key, {"recordings": [{"recording": str(mixed.pk), "user": "alice", "option": "mix"},
                                                {"recording": str(multi.pk), "user": "alice"},
                                                {"recording": str(odd.pk), "user": "alice", "option": "stems"}],
                                 "prompt": "Tighten"})
    assert answer.status_code == 201, answer.content
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["started", "started", "refused"]
    assert results[2]["code"] == "not_found" and "stems" in results[2]["detail"]
    by_ref = {ae.item_ref: ae for ae in AutoEdit.objects.all()}
    assert (by_ref[str(mixed.pk)].option, by_ref[str(multi.pk)].option) == ("mix", "tracks")
    assert client.get(f"{BASE}/{results[0]['auto_edit']}", **bearer(key)).json()["option"] == "mix"

    past_import = ("editing", "publishing", "copying", "done", "failed", "cancelled")
    for ae in by_ref.values():
        assert drive(ae, until=past_import).state != "failed"
    imports = {post["json"]["project_name"]: post["json"]
               for post in calls(fast, "POST", "/v1/jobs/import/project_media")}
    assert len(imports) == 2
    mix_import = imports[by_ref[str(mixed.pk)].project_name]
    (name, media), = mix_import["add_media"].items()  # one file, no sequence
    assert "tracks" not in media and "/alice/a/mix.wav" in media["url"]
    assert mix_import["add_compositions"] == [{"name": "Mixed please", "clips": [{"media": name}]}]
    sequence = imports[by_ref[str(multi.pk)].project_name]["add_media"]
    assert set(sequence) == {"host.wav", "guest.wav", "music.wav", "All tracks"}
    assert [t["media"] for t in sequence["All tracks"]["tracks"]] == ["host.wav", "guest.wav", "music.wav"]


def test_an_option_must_be_a_short_name(client, key, alice):
    for option in ("", "x" * 17):
        answer = start(client, key, {"recordings": [{"recording": "1", "user": "alice", "option": option}],
                                     "prompt": "x"})
        assert answer.status_code == 400
        error = answer.json()
        assert "recordings.0.option" in error["errors"], error
    assert not AutoEditBatch.objects.exists()
