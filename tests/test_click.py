"""The Edit in Descript click: POST -> 302 to Descript's import link, or a plain-words page.

Every test talks to moto's S3 server and the Descript sandbox over real HTTP.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests
from django.conf import settings

from demo.media import mp4_standin, wav_bytes
from eid.models import Handoff

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "edit_in_descript_post.json").read_text())
WAV = wav_bytes(0.5)


@pytest.fixture
def single(make_recording, alice):
    return make_recording(alice, "Solo", mix=("alice/solo.wav", WAV, "audio/wav"))


@pytest.fixture
def multitrack(make_recording, alice):
    return make_recording(
        alice,
        "Panel",
        tracks=[
            ("alice/panel/host.wav", wav_bytes(0.4, 220), "audio/wav", "Host", 0.0),
            ("alice/panel/guest.wav", wav_bytes(0.3, 440), "audio/wav", "Guest", 1.5),
            ("alice/panel/third.wav", wav_bytes(0.2, 660), "audio/wav", "", 2.25),
        ],
    )


def click(client, recording, option="mix", **kwargs):
    return client.post(f"/descript/edit/{recording.pk}/{option}/", **kwargs)


def schema_posts(sandbox):
    return [r for r in sandbox.requests("/v1/edit_in_descript/schema") if r["method"] == "POST"]


def test_click_redirects_to_a_fresh_import_link_that_fetches_every_file(alice_client, single, sandbox):
    first = click(alice_client, single)
    second = click(alice_client, single)

    assert first.status_code == 302 and second.status_code == 302
    assert first["Location"] != second["Location"], "an import link is never reused"
    assert "no-cache" in first["Cache-Control"] or "no-store" in first["Cache-Control"]
    # Descript's side: the import page fetches the presigned URL like Descriptbot does.
    page = requests.get(first["Location"], timeout=30)
    assert page.status_code == 200
    rows = re.findall(r'<tr class="file"[^>]*data-status="(\w+)"[^>]*data-bytes="(\d+)"', page.text)
    assert rows == [("ok", str(len(WAV)))]
    handoff = Handoff.objects.order_by("started_at").first()
    assert handoff.outcome == Handoff.Outcome.OK
    assert handoff.file_count == 1 and handoff.total_bytes == len(WAV)
    assert handoff.upstream_latency_ms is not None and handoff.finished_at >= handoff.started_at
    assert Handoff.objects.filter(outcome="ok").count() == 2


def test_multitrack_sends_every_track_with_its_offset_and_a_valid_body(alice_client, multitrack, sandbox):
    response = click(alice_client, multitrack, "tracks")
    assert response.status_code == 302

    (sent,) = schema_posts(sandbox)
    body = sent["json"]
    jsonschema.validate(body, SCHEMA)
    assert body["partner_drive_id"] == settings.DESCRIPT_PARTNER_DRIVE_ID
    assert body["project_schema"]["source_id"] == str(multitrack.source_id)
    files = body["project_schema"]["files"]
    assert [f["name"] for f in files] == ["Host", "Guest", "third.wav"]
    assert [f["start_offset"]["seconds"] for f in files] == [0.0, 1.5, 2.25]
    for f in files:
        query = parse_qs(urlsplit(f["uri"]).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == [str(settings.EID_PRESIGN_TTL_SECONDS)]

    page = requests.get(response["Location"], timeout=30)
    statuses = re.findall(r'<tr class="file"[^>]*data-status="(\w+)"', page.text)
    assert statuses == ["ok", "ok", "ok"]
    assert 'data-ok="true"' in page.text
    handoff = Handoff.objects.get()
    assert (handoff.option, handoff.file_count, handoff.outcome) == ("tracks", 3, "ok")


def test_source_id_is_stable_per_recording_and_unique_across_recordings(alice_client, single, multitrack, sandbox):
    click(alice_client, single)
    click(alice_client, single)
    click(alice_client, multitrack, "tracks")
    sources = [r["json"]["project_schema"]["source_id"] for r in schema_posts(sandbox)]
    assert sources[0] == sources[1] == str(single.source_id)
    assert sources[2] == str(multitrack.source_id) != sources[0]


def test_video_recording_is_sent_as_mp4(alice_client, make_recording, alice, sandbox):
    video = make_recording(alice, "Launch", mix=("alice/launch.mp4", mp4_standin(4096), "video/mp4"))
    response = click(alice_client, video)
    assert response.status_code == 302
    (sent,) = schema_posts(sandbox)
    assert "start_offset" not in sent["json"]["project_schema"]["files"][0]


# --- who may click ----------------------------------------------------------------------------


def test_anonymous_user_is_sent_to_login_and_descript_is_not_called(client, single, sandbox):
    response = click(client, single)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert schema_posts(sandbox) == [] and Handoff.objects.count() == 0


def test_it_rejects_other_users_recording_with_404(client, bob, single, sandbox):
    client.force_login(bob)
    response = click(client, single)
    assert response.status_code == 404
    assert "not yours" in response.content.decode()
    assert schema_posts(sandbox) == []
    # Nothing about alice's recording reaches bob, but operators see the attempt.
    assert "Solo" not in response.content.decode()
    handoff = Handoff.objects.get()
    assert (handoff.user, handoff.item_ref, handoff.outcome) == (bob, str(single.pk), "not_found")
    assert handoff.item_title == ""  # a refused click names only what was asked for


def test_unknown_recording_and_unknown_option_are_404(alice_client, single, sandbox):
    assert alice_client.post("/descript/edit/999999/mix/").status_code == 404
    assert click(alice_client, single, "tracks").status_code == 404
    assert schema_posts(sandbox) == []
    rows = list(Handoff.objects.order_by("id").values_list("item_ref", "option", "outcome"))
    assert rows == [("999999", "mix", "not_found"), (str(single.pk), "tracks", "not_found")]


def test_get_is_refused_without_calling_descript(alice_client, single, sandbox):
    response = alice_client.get(f"/descript/edit/{single.pk}/mix/")
    assert response.status_code == 405
    assert "Edit in Descript" in response.content.decode()
    assert schema_posts(sandbox) == []


def test_missing_csrf_token_is_refused_with_a_plain_page(client, alice, single, sandbox):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = click(strict, single)
    assert response.status_code == 403
    assert "session expired" in response.content.decode()
    assert schema_posts(sandbox) == []


# --- storage problems -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mix, outcome, words",
    [
        (("alice/gone.wav", None, "audio/wav"), "storage_missing", "is not in storage"),
        (("alice/empty.wav", b"", "audio/wav"), "storage_missing", "is empty"),
        (("alice/notes.txt", b"hello", "text/plain"), "invalid_media", "not a type Descript can import"),
        (("alice/clip.wav", b"<html>", "text/html"), "invalid_media", "not a type Descript can import"),
    ],
)
def test_storage_problems_name_the_file_and_the_link_made_meanwhile_is_dropped(
    alice_client, make_recording, alice, sandbox, mix, outcome, words
):
    recording = make_recording(alice, "Broken", mix=mix)
    # A .txt mix is not offered to Descript at all; force the option check through the view anyway.
    response = click(alice_client, recording)
    if mix[0].endswith(".txt"):
        assert response.status_code == 404  # no button is offered for it
        assert schema_posts(sandbox) == []
        return
    # The HEAD checks ran while Descript answered: Descript made a link, and nobody is sent to it.
    assert response.status_code == 422
    text = response.content.decode()
    assert words in text and mix[0].rsplit("/", 1)[1] in text
    assert "Traceback" not in text and settings.SANDBOX_ORIGIN not in text and "Location" not in response
    assert len(schema_posts(sandbox)) == 1
    handoff = Handoff.objects.get()
    assert handoff.outcome == outcome
    assert "import link Descript made was dropped" in handoff.detail and handoff.upstream_latency_ms is not None


def test_a_missing_file_wins_over_descript_being_down(alice_client, make_recording, alice, sandbox):
    recording = make_recording(alice, "Gone", mix=("alice/gone.wav", None, "audio/wav"))
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=503, times=2)
    response = click(alice_client, recording)
    assert response.status_code == 422 and "is not in storage" in response.content.decode()
    handoff = Handoff.objects.get()
    assert handoff.outcome == "storage_missing" and "dropped" not in handoff.detail


def test_only_post_is_answered_with_an_allow_header(alice_client, single, sandbox):
    for method in ("get", "put", "delete"):
        response = getattr(alice_client, method)(f"/descript/edit/{single.pk}/mix/")
        assert response.status_code == 405 and response["Allow"] == "POST"
    assert alice_client.put("/descript/import/new").status_code == 405
    assert schema_posts(sandbox) == [] and Handoff.objects.count() == 0


def test_a_nul_byte_in_the_address_is_a_400_not_a_500(alice_client, single, sandbox):
    response = alice_client.post("/descript/edit/1%00/mix/")
    assert response.status_code == 400 and "cannot read" in response.content.decode()
    landing = alice_client.get("/descript/import/new", {"url": "https://share.descript.com/view/abc", "title": "a\x00b"})
    assert landing.status_code == 400
    assert schema_posts(sandbox) == [] and Handoff.objects.count() == 0


def test_one_user_cannot_spend_the_partners_rate_budget(alice_client, client, bob, single, sandbox, settings):
    settings.EID_THROTTLE_RATES = {"click": "2/m", "landing": "60/m"}
    assert [click(alice_client, single).status_code for _ in range(3)] == [302, 302, 429]
    refused = click(alice_client, single)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 61
    assert "slow down" in refused.content.decode().lower()
    assert len(schema_posts(sandbox)) == 2  # the refused clicks never reached Descript
    # Another user is not affected.
    client.force_login(bob)
    assert click(client, single).status_code == 404


# --- Descript problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, status, outcome",
    [
        ({"status": 400, "body": json.dumps({"error": "invalid_input", "message": "bad"})}, 502, "upstream_error"),
        ({"status": 401}, 502, "upstream_error"),
        ({"status": 403}, 502, "upstream_error"),
        ({"status": 404}, 502, "upstream_error"),
        ({"status": 500}, 502, "upstream_error"),
        ({"status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html"}, 502, "upstream_error"),
        ({"status": 429, "headers": {"Retry-After": "60"}}, 503, "rate_limited"),
        ({"hang_seconds": 5}, 503, "timeout"),
        ({"status": 201, "body": "this is not json", "content_type": "application/json"}, 502, "upstream_error"),
        ({"status": 201, "body": json.dumps({"nope": 1})}, 502, "upstream_error"),
        ({"status": 201, "body": json.dumps({"url": "javascript:alert(1)"})}, 502, "upstream_error"),
    ],
)
def test_descript_failures_give_a_plain_page_and_a_handoff_row(alice_client, single, sandbox, fault, status, outcome):
    sandbox.add_fault(path="/v1/edit_in_descript/schema", **fault)
    response = click(alice_client, single)

    assert response.status_code == status
    text = response.content.decode()
    assert "Try again" in text and settings.DESCRIPT_HELP_URL in text
    assert "Traceback" not in text and "X-Amz" not in text
    handoff = Handoff.objects.get()
    assert handoff.outcome == outcome
    if "status" in fault and fault["status"] != 201:
        assert handoff.upstream_status == fault["status"]
    if outcome == "rate_limited":
        assert response["Retry-After"] == "60"  # Descript's own wait, passed on to the browser


def test_descript_error_code_is_recorded(alice_client, single, sandbox):
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=403,
                      body=json.dumps({"error": "forbidden", "message": "no EID permission"}))
    click(alice_client, single)
    handoff = Handoff.objects.get()
    assert (handoff.upstream_status, handoff.upstream_error_code) == (403, "forbidden")


def test_a_short_rate_limit_is_waited_out(alice_client, single, sandbox):
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=429, headers={"Retry-After": "1"}, times=1)
    response = click(alice_client, single)
    assert response.status_code == 302
    handoff = Handoff.objects.get()
    assert handoff.outcome == "ok" and handoff.upstream_attempts == 2
    assert handoff.upstream_latency_ms >= 1000


def test_one_5xx_is_retried_once_but_not_twice(alice_client, single, sandbox):
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=503, times=1)
    assert click(alice_client, single).status_code == 302
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=500, times=2)
    assert click(alice_client, single).status_code == 502
    assert len(schema_posts(sandbox)) == 4  # 2 + 2: never a third try


def test_descript_unreachable_is_a_502_page(alice_client, single, sandbox, settings):
    settings.DESCRIPT_API_BASE = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    response = click(alice_client, single)
    assert response.status_code == 502
    assert Handoff.objects.get().outcome == "upstream_error"


def test_wrong_token_is_refused_by_descript_and_reported(alice_client, single, sandbox, settings):
    settings.DESCRIPT_API_TOKEN = "wrong-token-123456"
    response = click(alice_client, single)
    assert response.status_code == 502
    handoff = Handoff.objects.get()
    assert handoff.upstream_status == 401


def test_unconfigured_integration_says_so_without_calling_descript(alice_client, single, sandbox, settings):
    settings.DESCRIPT_API_TOKEN = ""
    response = click(alice_client, single)
    assert response.status_code == 503
    assert Handoff.objects.get().outcome == "misconfigured"
    assert schema_posts(sandbox) == []


# --- secrets ----------------------------------------------------------------------------------


def test_token_and_signatures_appear_nowhere(alice_client, single, multitrack, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    pages = [click(alice_client, single), click(alice_client, multitrack, "tracks")]
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=500)
    pages.append(click(alice_client, single))
    sandbox.clear_faults()
    sandbox.add_fault(path="/v1/edit_in_descript/schema", status=400,
                      body=json.dumps({"error": "invalid_input", "message": "files[0].uri bad"}))
    pages.append(click(alice_client, single))
    pages.append(alice_client.get("/"))
    pages.append(alice_client.get(f"/recordings/{multitrack.pk}/"))

    token = settings.DESCRIPT_API_TOKEN
    for response in pages:
        blob = response.content.decode() + str(response.headers.get("Location", "") if response.status_code != 302 else "")
        assert token not in blob
        assert "X-Amz-Signature" not in response.content.decode()
    for record in caplog.records:
        message = record.getMessage()
        assert token not in message and "X-Amz-Signature=" not in message.replace("X-Amz-Signature=[redacted]", "")
    for handoff in Handoff.objects.all():
        row = json.dumps({f.name: str(getattr(handoff, f.name)) for f in Handoff._meta.fields})
        assert token not in row and "X-Amz" not in row


def test_admin_shows_handoffs_without_secrets(client, django_user_model, alice_client, single, sandbox):
    click(alice_client, single)
    admin = django_user_model.objects.create_superuser("root", password="root-pass-1234")
    client.force_login(admin)
    listing = client.get("/admin/eid/handoff/")
    detail = client.get(f"/admin/eid/handoff/{Handoff.objects.get().pk}/change/")
    for response in (listing, detail):
        assert response.status_code == 200
        text = response.content.decode()
        assert settings.DESCRIPT_API_TOKEN not in text and "X-Amz-Signature" not in text
    assert "Sent to Descript" in listing.content.decode()
