"""The recordings API (/api/v1/recordings), with real service tokens over Django's test client.

Idempotency (PUT twice, bulk twice, a replay by Idempotency-Key, a key reused with another body),
partial bulk failure, validation with field errors, ?verify=1 against moto's S3, cursor pages
while rows are inserted, throttling, DELETE with an edit still coming back (the real ingest
steps, the sandbox's share), and a token scoped to one owner that never reads or writes
another owner's recordings.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from demo.media import wav_bytes
from eid import ingest
from eid.api.models import ApiToken
from eid.api.throttling import TokenRateThrottle
from eid.models import Handoff, ReturnedExport
from partner_site.library.models import MediaFile, Recording, RecordingVersion, VersionAsset

from api_fuzz import api_schema, fuzz
from support import bearer

pytestmark = pytest.mark.django_db

DRIVE = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"
BUCKET = settings.AWS_STORAGE_BUCKET_NAME


class Api:
    """A pipeline holding one service token."""

    def __init__(self, client, key: str) -> None:
        self.client, self.key = client, key

    def _headers(self, extra=None):
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path, **query):
        url = f"/api/v1/{path}" + (f"?{urlencode(query)}" if query else "")
        return self.client.get(url, headers=self._headers())

    def put(self, external_id, body, query=""):
        return self.client.put(f"/api/v1/recordings/{external_id}{query}", data=json.dumps(body),
                               content_type="application/json", headers=self._headers())

    def bulk(self, recordings, key=None, query=""):
        headers = self._headers({"Idempotency-Key": key} if key else None)
        return self.client.post(f"/api/v1/recordings/bulk{query}", data=json.dumps({"recordings": recordings}),
                                content_type="application/json", headers=headers)

    def delete(self, external_id):
        return self.client.delete(f"/api/v1/recordings/{external_id}", headers=self._headers())


@pytest.fixture
def api(client):
    """api(owner=None, read_only=False) -> Api with a fresh token."""

    def make(owner=None, read_only=False):
        _token, key = ApiToken.issue("pipeline", read_only=read_only, owner=owner)
        return Api(client, key)

    return make


def body(owner="alice", title="Episode 12", tracks=2, mix=True, **extra):
    out = {"owner": owner, "title": title, **extra}
    if mix:
        out["mix"] = {"key": "shows/ep12/mix.wav", "content_type": "audio/wav", "size": 1000}
    if tracks:
        out["tracks"] = [{"key": f"shows/ep12/t{i}.wav", "name": f"Track {i}", "offset": i * 1.5}
                         for i in range(tracks)]
    return out


# --- PUT -----------------------------------------------------------------------------------------


def test_put_twice_creates_once_then_says_unchanged(api, alice):
    pipeline = api()
    first = pipeline.put("ep12", body())
    assert first.status_code == 201, first.json()
    created = first.json()
    assert created["result"] == "created"
    recording = created["recording"]
    assert recording["external_id"] == "ep12" and recording["owner"] == "alice"
    assert recording["mix"] == {"key": "shows/ep12/mix.wav", "name": "mix.wav", "content_type": "audio/wav",
                                "size": 1000}
    assert [(t["key"], t["name"], t["offset"]) for t in recording["tracks"]] == [
        ("shows/ep12/t0.wav", "Track 0", 0.0), ("shows/ep12/t1.wav", "Track 1", 1.5)]

    again = pipeline.put("ep12", body())
    assert again.status_code == 200
    assert again.json()["result"] == "unchanged"
    assert again.json()["recording"] == recording  # updated_at included: nothing was written
    assert Recording.objects.count() == 1 and MediaFile.objects.count() == 3


def test_changing_the_files_keeps_the_source_id_and_ref(api, alice):
    pipeline = api()
    created = pipeline.put("ep12", body()).json()["recording"]
    keep = MediaFile.objects.get(key="shows/ep12/t0.wav").pk

    changed = body(title="Episode 12 (final)", mix=False, tracks=1)
    changed["tracks"].append({"key": "shows/ep12/guest.flac", "name": "Guest", "offset": 2})
    answer = pipeline.put("ep12", changed)
    assert answer.status_code == 200 and answer.json()["result"] == "updated"
    updated = answer.json()["recording"]
    assert (updated["source_id"], updated["ref"]) == (created["source_id"], created["ref"])
    assert updated["title"] == "Episode 12 (final)" and updated["mix"] is None
    assert [t["key"] for t in updated["tracks"]] == ["shows/ep12/t0.wav", "shows/ep12/guest.flac"]
    assert updated["updated_at"] > created["updated_at"]
    # A file that stays keeps its row; the ones left out are gone.
    assert MediaFile.objects.get(key="shows/ep12/t0.wav").pk == keep
    assert set(MediaFile.objects.values_list("key", flat=True)) == {"shows/ep12/t0.wav", "shows/ep12/guest.flac"}
    assert pipeline.put("ep12", changed).json()["result"] == "unchanged"


def test_an_unscoped_token_may_move_a_recording_to_another_owner(api, alice, bob):
    pipeline = api()
    pipeline.put("ep12", body())
    answer = pipeline.put("ep12", body(owner="bob"))
    assert answer.json()["result"] == "updated" and Recording.objects.get().owner == bob


BAD = [
    ("dot-dot key", lambda b: b["mix"].update(key="shows/../secret/mix.wav"), "mix.key", "“..”"),
    ("leading slash", lambda b: b["mix"].update(key="/etc/mix.wav"), "mix.key", "“/”"),
    ("another bucket", lambda b: b["mix"].update(key="s3://other-bucket/mix.wav"), "mix.key", "not a URL"),
    ("an URL", lambda b: b["tracks"][0].update(key="https://evil.example/a.wav"), "tracks.0.key", "not a URL"),
    ("negative offset", lambda b: b["tracks"][1].update(offset=-1), "tracks.1.offset", "negative"),
    ("text offset", lambda b: b["tracks"][1].update(offset="1.5"), "tracks.1.offset", "number"),
    ("boolean offset", lambda b: b["tracks"][1].update(offset=True), "tracks.1.offset", "number"),
    ("33 tracks", lambda b: b.update(tracks=[{"key": f"t/{i}.wav"} for i in range(33)]), "tracks", "32"),
    ("long name", lambda b: b["tracks"][0].update(name="n" * 301), "tracks.0.name", "300"),
    ("long title", lambda b: b.update(title="t" * 301), "title", "300"),
    ("blank title", lambda b: b.update(title="  "), "title", "blank"),
    ("unknown owner", lambda b: b.update(owner="nobody"), "owner", "No user named"),
    ("text file", lambda b: b["mix"].update(key="shows/ep12/notes.txt", content_type=None), "mix.key", "extension"),
    ("text type", lambda b: b["mix"].update(content_type="text/plain"), "mix.content_type", "text/plain"),
    ("NUL in title", lambda b: b.update(title="Episode\x0012"), "title", "NUL"),
    ("NUL in key", lambda b: b["mix"].update(key="shows/ep\x0012/mix.wav"), "mix.key", "NUL"),
    ("NUL in owner", lambda b: b.update(owner="ali\x00ce"), "owner", "NUL"),
    ("NUL in name", lambda b: b["tracks"][0].update(name="\x00"), "tracks.0.name", "NUL"),
    ("empty size", lambda b: b["mix"].update(size=0), "mix.size", "empty"),
    ("no files", lambda b: (b.pop("mix"), b.pop("tracks")), "non_field_errors", "mix"),
    ("same key twice", lambda b: b["tracks"][1].update(key="shows/ep12/t0.wav"), "tracks.1.key", "twice"),
    ("tracks not a list", lambda b: b.update(tracks={"key": "a.wav"}), "tracks", "list"),
]


@pytest.mark.parametrize("change, field, words", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_put_refuses_bad_bodies_with_field_errors(api, alice, change, field, words):
    bad = body()
    change(bad)
    answer = api().put("ep12", bad)
    assert answer.status_code == 400, answer.json()
    error = answer.json()
    assert error["code"] == "invalid" and field in error["errors"], error
    assert words in " ".join(error["errors"][field]), error
    assert Recording.objects.count() == 0


@pytest.mark.parametrize("external_id", ["bulk", "has space", "-leading-dash", "x" * 201, "a%00b", "a/b"])
def test_put_refuses_external_ids_the_url_cannot_carry(api, alice, external_id):
    answer = api().put(external_id, body())
    assert answer.status_code in (400, 405), answer.content
    if answer.status_code == 400:
        assert "external_id" in answer.json()["errors"]
    assert Recording.objects.count() == 0


def test_not_json_and_a_list_body_are_400_in_the_one_error_shape(api, alice, client):
    pipeline = api()
    raw = client.put("/api/v1/recordings/ep12", data="{not json", content_type="application/json",
                     headers={"Authorization": f"Bearer {pipeline.key}"})
    assert raw.status_code == 400 and raw.json()["code"] == "parse_error"
    listed = pipeline.put("ep12", [body()])
    assert listed.status_code == 400 and listed.json()["code"] == "invalid"


def test_verify_heads_every_key_and_reports_missing_and_empty_files(api, alice, s3):
    s3.put_object(Bucket=BUCKET, Key="v/mix.wav", Body=wav_bytes(0.2), ContentType="audio/wav")
    s3.put_object(Bucket=BUCKET, Key="v/empty.wav", Body=b"", ContentType="audio/wav")
    s3.put_object(Bucket=BUCKET, Key="v/readme.wav", Body=b"hello", ContentType="text/plain")
    pipeline = api()
    sent = {"owner": "alice", "title": "Checked", "mix": {"key": "v/mix.wav"}, "tracks": [
        {"key": "v/mix-copy.wav"}, {"key": "v/empty.wav"}, {"key": "v/readme.wav"}]}
    answer = pipeline.put("checked", sent, query="?verify=1")
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert set(errors) == {"tracks.0.key", "tracks.1.key", "tracks.2.key"}
    assert "Not in storage" in errors["tracks.0.key"][0]
    assert "empty" in errors["tracks.1.key"][0]
    assert "text/plain" in errors["tracks.2.key"][0]
    assert Recording.objects.count() == 0

    wrong_size = {"owner": "alice", "title": "Checked", "mix": {"key": "v/mix.wav", "size": 3}}
    answer = pipeline.put("checked", wrong_size, query="?verify=1")
    assert answer.status_code == 400 and "mix.size" in answer.json()["errors"]

    good = {"owner": "alice", "title": "Checked", "mix": {"key": "v/mix.wav"}}
    assert pipeline.put("checked", good, query="?verify=1").status_code == 201
    # Without verify the key is only checked for its form: a pipeline may register before uploading.
    assert pipeline.put("later", {**good, "mix": {"key": "v/not-yet.wav"}}).status_code == 201
    assert pipeline.put("checked", good, query="?verify=maybe").status_code == 400


# --- bulk ------------------------------------------------------------------------------------


def many(n, start=0, owner="alice"):
    return [{"external_id": f"rec-{i}", "owner": owner, "title": f"Recording {i}",
             "mix": {"key": f"bulk/{i}/mix.wav", "size": 100 + i}} for i in range(start, start + n)]


def test_bulk_twice_creates_then_reports_unchanged(api, alice):
    pipeline = api()
    first = pipeline.bulk(many(50))
    assert first.status_code == 200
    assert first.json()["counts"] == {"created": 50, "updated": 0, "unchanged": 0, "error": 0}
    assert [r["index"] for r in first.json()["results"]] == list(range(50))
    assert Recording.objects.count() == 50 and MediaFile.objects.count() == 50

    sent = many(50)
    sent[7]["title"] = "Renamed"
    second = pipeline.bulk(sent).json()
    assert second["counts"] == {"created": 0, "updated": 1, "unchanged": 49, "error": 0}
    assert second["results"][7]["result"] == "updated"
    assert second["results"][7]["source_id"] == first.json()["results"][7]["source_id"]
    assert Recording.objects.count() == 50


def test_one_bad_item_does_not_sink_the_others(api, alice, bob):
    pipeline = api()
    sent = many(5)
    sent[1]["mix"]["key"] = "../escape.wav"
    sent[2]["owner"] = "nobody"
    sent[3] = "not an object"
    sent.append(dict(many(1)[0], title="Same id again"))  # rec-0 a second time
    answer = pipeline.bulk(sent)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["created", "error", "error", "error", "created", "error"]
    assert results[1]["code"] == "invalid" and "mix.key" in results[1]["errors"]
    assert results[2]["errors"] == {"owner": ["No user named “nobody”."]}
    assert results[3]["code"] == "invalid" and results[3]["external_id"] is None
    assert results[5]["code"] == "duplicate"
    assert answer.json()["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "error": 4}
    assert set(Recording.objects.values_list("external_id", "title")) == {("rec-0", "Recording 0"),
                                                                          ("rec-4", "Recording 4")}


def test_bulk_limits_and_shape(api, alice):
    pipeline = api()
    too_many = pipeline.bulk(many(1001))
    assert too_many.status_code == 400 and "recordings" in too_many.json()["errors"]
    assert Recording.objects.count() == 0
    assert pipeline.bulk([]).json() == {"results": [], "counts": {"created": 0, "updated": 0, "unchanged": 0,
                                                                  "error": 0}}
    response = pipeline.client.post("/api/v1/recordings/bulk", data=json.dumps([1, 2]),
                                    content_type="application/json", headers=pipeline._headers())
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    full = pipeline.bulk(many(1000))
    assert full.status_code == 200 and full.json()["counts"]["created"] == 1000


def test_bulk_replays_by_idempotency_key_and_refuses_the_key_with_another_body(api, alice):
    pipeline = api()
    first = pipeline.bulk(many(3), key="batch-2026-11-25-a")
    assert first.json()["counts"]["created"] == 3
    replay = pipeline.bulk(many(3), key="batch-2026-11-25-a")
    # The first answer again ("created", not "unchanged"): the view did not run a second time.
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert pipeline.bulk(many(3)).json()["counts"]["unchanged"] == 3  # without the key it runs

    reused = pipeline.bulk(many(4), key="batch-2026-11-25-a")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert Recording.objects.count() == 3


def test_bulk_verify_reports_per_file_and_saves_the_rest(api, alice, s3):
    s3.put_object(Bucket=BUCKET, Key="bulk/0/mix.wav", Body=wav_bytes(0.1), ContentType="audio/wav")
    sent = many(2)
    sent[0]["mix"].pop("size")
    answer = api().bulk(sent, query="?verify=1").json()
    assert answer["results"][0]["result"] == "created"
    assert answer["results"][1]["result"] == "error"
    assert "Not in storage" in answer["results"][1]["errors"]["mix.key"][0]


# --- reading ---------------------------------------------------------------------------------


def test_detail_lists_files_versions_handoffs_and_imports(api, alice):
    pipeline = api()
    ref = pipeline.put("ep12", body()).json()["recording"]["ref"]
    recording = Recording.objects.get(pk=ref)
    version = RecordingVersion.objects.create(recording=recording, number=1, title="Cut 1", duration_seconds=12.5)
    VersionAsset.objects.create(version=version, kind="audio", key="edits/1/audio.m4a", size=4321,
                                content_type="audio/mp4")
    VersionAsset.objects.create(version=version, kind="subtitles", key="edits/1/captions.vtt", size=99,
                                content_type="text/vtt")
    now = timezone.now()
    for minutes, outcome in ((3, "ok"), (2, "ok"), (1, "storage_missing")):
        Handoff.objects.create(user=alice, item_ref=ref, option="mix", outcome=outcome,
                               started_at=now - timedelta(minutes=minutes))
    Handoff.objects.create(user=alice, item_ref="999999", option="mix", outcome="ok", started_at=now)
    ReturnedExport.objects.create(user=alice, share_id="s1", share_url="https://share.descript.com/view/s1",
                                  title="Edit", match="own_source", target_ref=ref, state="waiting")

    detail = pipeline.get("recordings/ep12")
    assert detail.status_code == 200
    data = detail.json()
    assert data["ref"] == ref and len(data["tracks"]) == 2
    assert data["versions"] == [{
        "number": 1, "title": "Cut 1", "duration_seconds": 12.5, "created_at": data["versions"][0]["created_at"],
        "assets": [{"kind": "audio", "key": "edits/1/audio.m4a", "size": 4321, "content_type": "audio/mp4"},
                   {"kind": "subtitles", "key": "edits/1/captions.vtt", "size": 99, "content_type": "text/vtt"}]}]
    assert data["handoffs"]["total"] == 3
    assert data["handoffs"]["by_outcome"] == {"ok": 2, "storage_missing": 1}
    assert data["handoffs"]["last_outcome"] == "storage_missing"
    assert data["imports"] == {"in_flight": 1, "done": 0, "failed": 0}
    assert pipeline.get("recordings/nope").status_code == 404
    assert pipeline.get("recordings/bad%20id").json()["code"] == "not_found"


def test_recordings_made_in_the_ui_are_not_listed(api, alice, make_recording):
    make_recording(alice, "Made in the UI", mix=("ui/mix.wav", None, "audio/wav"))
    pipeline = api()
    pipeline.put("ep12", body())
    assert [r["external_id"] for r in pipeline.get("recordings").json()["results"]] == ["ep12"]


def test_pages_stay_stable_while_rows_are_inserted(api, alice):
    pipeline = api()
    pipeline.bulk(many(25))
    seen: list[str] = []
    page = pipeline.get("recordings", limit=10).json()
    inserted = 0
    while True:
        seen.extend(r["external_id"] for r in page["results"])
        # Another pipeline registers more while this one pages through.
        pipeline.bulk(many(4, start=100 + inserted))
        inserted += 4
        if not page["next"] or inserted > 40:
            break
        query = parse_qs(urlsplit(page["next"]).query)
        page = pipeline.get("recordings", cursor=query["cursor"][0], limit=10).json()
    assert len(seen) == len(set(seen)), "a recording was listed twice"
    first_25 = [f"rec-{i}" for i in range(25)]
    assert seen[:25] == first_25, "a recording that existed before the pass was skipped"
    # Rows added during the pass come after the cursor, in the order they were added.
    assert seen[25:] == [f"rec-{100 + i}" for i in range(len(seen) - 25)]


def test_list_filters_by_owner_and_updated_since(api, alice, bob):
    pipeline = api()
    pipeline.bulk(many(3) + many(2, start=10, owner="bob"))
    assert {r["external_id"] for r in pipeline.get("recordings", owner="bob").json()["results"]} == {"rec-10", "rec-11"}
    later = timezone.now() + timedelta(seconds=1)
    Recording.objects.filter(external_id="rec-1").update(updated_at=later + timedelta(seconds=5))
    since = pipeline.get("recordings", updated_since=later.isoformat()).json()["results"]
    assert [r["external_id"] for r in since] == ["rec-1"]
    bad = pipeline.get("recordings", updated_since="yesterday")
    assert bad.status_code == 400 and "updated_since" in bad.json()["errors"]
    for query in ({"cursor": "garbage"}, {"limit": "0"}, {"limit": "1001"}, {"owner": "a\x00b"}):
        answer = pipeline.get("recordings", **query)
        assert answer.status_code == 400, (query, answer.content)
        assert answer.json()["code"] == "invalid"


# --- delete ----------------------------------------------------------------------------------


def run_until_settled(export_id, limit=200):
    """Drive the real ingest steps as the worker would, ignoring run_after delays."""
    for _ in range(limit):
        export = ReturnedExport.objects.get(pk=export_id)
        if not export.is_active:
            return export
        ReturnedExport.objects.filter(pk=export_id).update(next_check_at=None)
        ingest.advance(export_id)
    raise AssertionError("export did not settle")


def test_delete_removes_rows_not_objects_and_an_edit_in_flight_lands_as_a_new_recording(
        api, alice, alice_client, sandbox, s3):
    pipeline = api()
    s3.put_object(Bucket=BUCKET, Key="shows/ep12/mix.wav", Body=wav_bytes(0.1), ContentType="audio/wav")
    created = pipeline.put("ep12", body(tracks=0)).json()["recording"]
    Handoff.objects.create(user=alice, item_ref=created["ref"], item_title="Episode 12", option="mix",
                           outcome="ok", started_at=timezone.now())
    # Alice edited it in Descript and is bringing the edit back: the import waits for the render.
    share = sandbox.create_share(partner=DRIVE, source=created["source_id"], media_bytes=2000, seed="after-delete")
    alice_client.post("/descript/import/new", {"url": share["share_url"], "title": "Edited after all"})
    export = ReturnedExport.objects.get()
    assert (export.target_ref, export.match, export.state) == (created["ref"], "own_source", "waiting")

    gone = pipeline.delete("ep12")
    assert gone.status_code == 200
    data = gone.json()
    assert (data["external_id"], data["deleted"], data["files"], data["versions"]) == ("ep12", True, 1, 0)
    assert data["imports_in_flight"] == [{"id": str(export.pk), "state": "waiting", "title": "Edited after all"}]
    assert "new recording" in data["detail"]
    assert pipeline.get("recordings/ep12").status_code == 404
    assert pipeline.delete("ep12").status_code == 404
    # The pipeline's objects and eid's history stay.
    assert s3.head_object(Bucket=BUCKET, Key="shows/ep12/mix.wav")["ContentLength"] > 0
    assert Handoff.objects.filter(item_ref=created["ref"]).count() == 1

    # The edit still lands, as the response said: a new recording of the user who sent it.
    export = run_until_settled(export.pk)
    assert export.state == "done", export.reason
    landed = Recording.objects.get(pk=int(export.result_ref))
    assert (landed.owner, landed.title, landed.external_id) == (alice, "Edited after all", None)
    assert str(landed.pk) != created["ref"] and str(landed.source_id) != created["source_id"]
    assert landed.versions.get().number == 1
    # Registering the id again makes a new recording; the landed edit is not taken over.
    again = pipeline.put("ep12", body(tracks=0))
    assert again.status_code == 201 and again.json()["recording"]["ref"] not in (created["ref"], str(landed.pk))


# --- tokens ----------------------------------------------------------------------------------


def test_no_token_or_a_session_is_401(client, alice):
    assert client.get("/api/v1/recordings").status_code == 401
    client.force_login(alice)
    answer = client.put("/api/v1/recordings/ep12", data=json.dumps(body()), content_type="application/json")
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"
    assert Recording.objects.count() == 0


def test_a_read_only_token_reads_and_may_not_write(api, alice):
    api().put("ep12", body())
    reader = api(read_only=True)
    assert reader.get("recordings/ep12").status_code == 200
    assert reader.get("recordings").json()["results"][0]["external_id"] == "ep12"
    for answer in (reader.put("ep12", body(title="x")), reader.bulk(many(1)), reader.delete("ep12")):
        assert answer.status_code == 403 and answer.json()["code"] == "read_only_token"
    assert Recording.objects.get().title == "Episode 12"


def test_a_token_scoped_to_one_owner_never_reads_or_writes_anothers(api, alice, bob):
    admin = api()
    admin.put("bobs-show", body(owner="bob", title="Bob's show"))
    alices = api(owner=alice)

    # Reading: another owner's recording is not there.
    assert alices.get("recordings/bobs-show").status_code == 404
    assert alices.get("recordings").json()["results"] == []
    assert alices.get("recordings", owner="bob").json()["results"] == []

    # Writing: naming another owner is refused, whether or not that user exists.
    for owner in ("bob", "nobody"):
        refused = alices.put("alices-show", body(owner=owner))
        assert refused.status_code == 403 and refused.json()["code"] == "owner_not_allowed"
    # Taking over another owner's id, even as one's own: as if it did not exist.
    taken = alices.put("bobs-show", body(owner="alice", title="Mine now"))
    assert taken.status_code == 404 and taken.json()["code"] == "not_found"
    assert alices.delete("bobs-show").status_code == 404
    results = alices.bulk([{"external_id": "bobs-show", "owner": "alice", "title": "Mine", "mix": {"key": "a.wav"}},
                           {"external_id": "x", "owner": "bob", "title": "For bob", "mix": {"key": "b.wav"}}]).json()
    assert [(r["result"], r["code"]) for r in results["results"]] == [("error", "not_found"),
                                                                      ("error", "owner_not_allowed")]
    bobs = Recording.objects.get(external_id="bobs-show")
    assert (bobs.owner, bobs.title) == (bob, "Bob's show")
    assert Recording.objects.count() == 1

    # Its own: the owner may be left out, and it is the token's user.
    mine = alices.put("alices-show", {k: v for k, v in body(owner="alice").items() if k != "owner"})
    assert mine.status_code == 201 and mine.json()["recording"]["owner"] == "alice"
    assert [r["external_id"] for r in alices.get("recordings").json()["results"]] == ["alices-show"]
    assert alices.get("recordings/alices-show").status_code == 200
    assert alices.delete("alices-show").status_code == 200


def test_writes_are_throttled_per_token_with_retry_after(api, alice, monkeypatch):
    monkeypatch.setitem(TokenRateThrottle.THROTTLE_RATES, "api_write", "3/min")
    pipeline, other = api(), api()
    answers = [pipeline.put("ep12", body()).status_code for _ in range(4)]
    assert answers == [201, 200, 200, 429]
    limited = pipeline.put("ep12", body())
    assert limited.json()["code"] == "throttled" and int(limited.headers["Retry-After"]) >= 1
    assert other.put("ep12", body()).status_code == 200  # another token has its own budget
    assert pipeline.get("recordings/ep12").status_code == 200  # reads have their own scope


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_new_recording_put_at_once_is_made_once(live_server, django_user_model):
    """Eight pipelines' retries racing: one insert wins, the others see it (on PostgreSQL the
    losers' unique-constraint error reruns their chunk), nobody gets a 500."""
    import concurrent.futures

    import requests

    django_user_model.objects.create_user("alice")
    _token, key = ApiToken.issue("pipeline")
    url = f"{live_server.url}/api/v1/recordings/race"
    sent = json.dumps(body())

    def put(_):
        answer = requests.put(url, data=sent, timeout=30,
                              headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        return answer.status_code, answer.json().get("result")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(put, range(8)))
    assert answers == [(200, "unchanged")] * 7 + [(201, "created")], answers
    assert Recording.objects.filter(external_id="race").count() == 1
    assert MediaFile.objects.count() == 3


# --- the OpenAPI document: generated requests (schemathesis) ---------------------------------


@pytest.fixture
def recordings_schema(db, s3):
    with api_schema() as schema:
        yield schema


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("method, address", [
    ("GET", "/api/v1/recordings"), ("POST", "/api/v1/recordings/bulk"), ("GET", "/api/v1/recordings/{external_id}"),
    ("PUT", "/api/v1/recordings/{external_id}"), ("DELETE", "/api/v1/recordings/{external_id}")])
def test_recordings_endpoints_match_their_document_and_never_fail(recordings_schema, alice, method, address, mode):
    """Valid and invalid generated requests (?verify=1 included, against moto): never a 500, every
    answer as documented (status, content type, headers, body), and invalid input refused."""
    _token, key = ApiToken.issue("fuzz")
    for i in range(3):  # something to find, list and delete
        Recording.objects.create(owner=alice, title=f"R{i}", external_id=f"ep{i}")
    seen = fuzz(recordings_schema[address][method], mode, key, max_examples=25)
    assert seen and not [status for status in seen if status >= 500]


def test_a_misspelt_parameter_is_refused_not_ignored(api, alice):
    pipeline = api()
    pipeline.put("ep12", body())
    listed = pipeline.get("recordings", ownr="bob")
    assert listed.status_code == 400 and listed.json()["errors"] == {
        "ownr": ["Not a parameter of this address (it takes: owner, updated_since, cursor, limit)."]}
    assert pipeline.put("ep13", body(), query="?verfy=1").status_code == 400
    assert pipeline.bulk(many(1), query="?verfy=1").status_code == 400
    assert pipeline.get("recordings/ep12", expand="all").status_code == 400
    assert not Recording.objects.filter(external_id="ep13").exists()


def test_bulk_is_not_an_external_id_and_other_methods_on_it_are_a_documented_405(client, key):
    answer = client.put("/api/v1/recordings/bulk", data={"title": "x"}, content_type="application/json",
                        **bearer(key))
    assert answer.status_code == 405 and answer.json()["code"] == "method_not_allowed"
    document = client.get("/api/schema/?format=json").json()
    assert "405" in document["paths"]["/api/v1/recordings/{external_id}"]["put"]["responses"]
