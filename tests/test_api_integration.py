"""eid's integration endpoints over real tokens: import links (the button's click, against the
Descript sandbox and moto's S3 over HTTP), the handoff and returned-export feeds, owner scoping,
Idempotency-Key, and schemathesis against the OpenAPI document the site serves.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from rest_framework.response import Response

from demo.media import wav_bytes
from eid.api.idempotency import idempotent
from eid.api.models import ApiToken, IdempotencyKey
from eid.api.views import TokenAPIView
from eid.models import Handoff, ReturnedExport
from api_fuzz import api_schema, fuzz
from chromium import chromium_page
from support import ARTIFACTS, bearer

pytestmark = pytest.mark.django_db

IMPORT_LINKS = "/api/v1/import-links"
HANDOFFS = "/api/v1/handoffs"
RETURNED = "/api/v1/returned-exports"
SCHEMA_POST = "/v1/edit_in_descript/schema"
WAV = wav_bytes(0.5)
DESCRIPT_TOKEN = settings.DESCRIPT_API_TOKEN


@pytest.fixture
def single(make_recording, alice):
    return make_recording(alice, "Solo", mix=("alice/solo.wav", WAV, "audio/wav"))


def link(client, key, recording, option="mix", user="alice"):
    ref = str(recording.pk) if hasattr(recording, "pk") else recording
    return client.post(IMPORT_LINKS, {"recording": ref, "option": option, "user": user},
                       content_type="application/json", **bearer(key))


def schema_posts(sandbox):
    return [r for r in sandbox.requests(SCHEMA_POST) if r["method"] == "POST"]


# --- import links -----------------------------------------------------------------------------


def test_an_import_link_is_the_buttons_click_and_is_never_cached(client, key, single, make_recording, alice,
                                                                 sandbox):
    first = link(client, key, single)
    second = link(client, key, single)

    assert first.status_code == 201 and second.status_code == 201
    body = first.json()
    assert set(body) == {"url", "handoff"} and body["url"] != second.json()["url"]
    assert "no-store" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    # What Descript received: our drive, the recording's source id, one presigned GET per file.
    sent = schema_posts(sandbox)[0]["json"]
    assert sent["partner_drive_id"] == settings.DESCRIPT_PARTNER_DRIVE_ID
    assert sent["project_schema"]["source_id"] == str(single.source_id)
    (file,) = sent["project_schema"]["files"]
    assert parse_qs(urlsplit(file["uri"]).query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    # Descript's side fetches the file through that link.
    page = requests.get(body["url"], timeout=30)
    assert re.findall(r'<tr class="file"[^>]*data-status="(\w+)"', page.text) == ["ok"]
    handoff = Handoff.objects.get(pk=body["handoff"])
    assert (handoff.user, handoff.item_ref, handoff.option, handoff.outcome) == (alice, str(single.pk), "mix", "ok")
    assert handoff.total_bytes == len(WAV)
    # Never stored: no row anywhere holds the link.
    assert IdempotencyKey.objects.count() == 0
    assert body["url"] not in str(list(Handoff.objects.values()))


def test_a_multitrack_option_sends_every_track(client, key, make_recording, alice, sandbox):
    panel = make_recording(alice, "Panel", tracks=[
        ("alice/panel/host.wav", wav_bytes(0.3), "audio/wav", "Host", 0.0),
        ("alice/panel/guest.wav", wav_bytes(0.2), "audio/wav", "Guest", 1.5),
    ])
    assert link(client, key, panel, "tracks").status_code == 201
    files = schema_posts(sandbox)[0]["json"]["project_schema"]["files"]
    assert [(f["name"], f["start_offset"]["seconds"]) for f in files] == [("Host", 0.0), ("Guest", 1.5)]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["detail"] and set(body) <= {"code", "detail", "errors"}
    assert "X-Amz" not in response.content.decode() and DESCRIPT_TOKEN not in response.content.decode()
    return body


@pytest.mark.parametrize("mix, code, words", [
    (("alice/gone.wav", None, "audio/wav"), "missing", "is not in storage"),
    (("alice/empty.wav", b"", "audio/wav"), "empty", "is empty"),
    (("alice/clip.wav", b"<html>", "text/html"), "unsupported", "not a type Descript can import"),
])
def test_storage_failures_are_422_with_the_buttons_code(client, key, make_recording, alice, sandbox, mix, code,
                                                        words):
    recording = make_recording(alice, "Broken", mix=mix)
    body = assert_error(link(client, key, recording), 422, code)
    assert words in body["detail"] and mix[0].rsplit("/", 1)[1] in body["detail"]
    assert Handoff.objects.get().outcome in ("storage_missing", "invalid_media")


@pytest.mark.parametrize("fault, status, code", [
    ({"status": 500}, 502, "upstream_error"),
    ({"status": 403, "body": '{"error": "forbidden"}'}, 502, "upstream_error"),
    ({"status": 201, "body": '{"url": "javascript:alert(1)"}'}, 502, "upstream_error"),
    ({"status": 429, "headers": {"Retry-After": "60"}}, 503, "rate_limited"),
    ({"hang_seconds": 5}, 503, "timeout"),
])
def test_descript_failures_carry_the_buttons_status_and_code(client, key, single, sandbox, fault, status, code):
    sandbox.add_fault(path=SCHEMA_POST, **fault)
    response = link(client, key, single)
    assert_error(response, status, code)
    if code == "rate_limited":
        assert response["Retry-After"] == "60"
    assert Handoff.objects.get().outcome == code


def test_not_connected_to_descript_is_503_misconfigured(client, key, single, sandbox, settings):
    settings.DESCRIPT_API_TOKEN = ""
    assert_error(link(client, key, single), 503, "misconfigured")
    assert schema_posts(sandbox) == [] and Handoff.objects.get().outcome == "misconfigured"


def test_an_unknown_recording_or_option_or_another_users_recording_is_404(client, key, single, bob, sandbox):
    assert_error(link(client, key, "999999"), 404, "not_found")
    assert_error(link(client, key, single, "tracks"), 404, "not_found")
    assert_error(link(client, key, single, user="bob"), 404, "not_found")  # alice's recording, made for bob
    assert schema_posts(sandbox) == []
    rows = list(Handoff.objects.order_by("id").values_list("item_ref", "option", "outcome", "user__username"))
    assert rows == [("999999", "mix", "not_found", "alice"), (str(single.pk), "tracks", "not_found", "alice"),
                    (str(single.pk), "mix", "not_found", "bob")]


def test_an_unknown_user_is_a_field_error_and_still_a_row(client, key, single, sandbox):
    body = assert_error(link(client, key, single, user="nobody"), 400, "invalid")
    assert list(body["errors"]) == ["user"]
    row = Handoff.objects.get()
    assert (row.user, row.outcome) == (None, "not_found") and "nobody" in row.detail


# --- a token scoped to one owner --------------------------------------------------------------


def test_a_scoped_token_cannot_make_links_for_another_user(client, alice_key, single, make_recording, bob, sandbox):
    bobs = make_recording(bob, "Bob's", mix=("bob/b.wav", WAV, "audio/wav"))
    for user, recording in (("bob", bobs), ("nobody", bobs), ("bob", single)):
        assert_error(link(client, alice_key, recording, user=user), 403, "permission_denied")
    assert schema_posts(sandbox) == []
    # Alice's recording made for alice, through alice's token: fine. Bob's recording for alice: not hers.
    assert link(client, alice_key, single).status_code == 201
    assert_error(link(client, alice_key, bobs), 404, "not_found")
    assert Handoff.objects.count() == 5  # every call left a row


def test_a_scoped_token_reads_only_its_owners_rows(client, key, alice_key, alice, bob):
    now = timezone.now()
    for user in (alice, bob, alice):
        Handoff.objects.create(user=user, item_ref="1", option="mix", started_at=now, outcome="ok")
        make_export(user, f"share-{Handoff.objects.count()}")
    everything = client.get(HANDOFFS, **bearer(key)).json()["results"]
    assert [r["user"] for r in everything] == ["alice", "bob", "alice"]
    mine = client.get(HANDOFFS, **bearer(alice_key)).json()["results"]
    assert [r["user"] for r in mine] == ["alice", "alice"]
    exports = client.get(RETURNED, **bearer(alice_key)).json()["results"]
    assert len(exports) == 2 and {r["user"] for r in exports} == {"alice"}
    assert len(client.get(RETURNED, **bearer(key)).json()["results"]) == 3


# --- the feeds --------------------------------------------------------------------------------


def make_export(user, share_id, **fields) -> ReturnedExport:
    values = dict(
        user=user, share_id=share_id, share_url=f"https://share.descript.com/view/{share_id}", title="An edit",
        match="own_source", target_ref="1", target_title="Solo",
        media_links={"audio": "https://descript-media.example/a.wav?X-Amz-Signature=abc&X-Amz-Credential=k"},
    )
    values.update(fields)
    return ReturnedExport.objects.create(**values)


def follow(client, key, url, params=None) -> list[dict]:
    rows, response = [], client.get(url, params or {}, **bearer(key))
    while True:
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
        if not response.json()["next"]:
            return rows
        response = client.get(response.json()["next"], **bearer(key))


def test_handoffs_pages_by_cursor_without_gaps_or_repeats_while_rows_are_added(client, key, alice):
    def click(n):
        return Handoff.objects.create(user=alice, item_ref=str(n), option="mix", started_at=timezone.now(),
                                      outcome="ok")

    for n in range(5):
        click(n)
    first = client.get(HANDOFFS, {"page_size": 2}, **bearer(key)).json()
    assert [r["recording"] for r in first["results"]] == ["0", "1"] and first["previous"] is None
    click(5)
    click(6)
    rest = follow(client, key, first["next"])
    assert [r["recording"] for r in rest] == ["2", "3", "4", "5", "6"]


def test_handoffs_since(client, key, alice):
    old = Handoff.objects.create(user=alice, item_ref="old", option="mix", outcome="ok",
                                 started_at=timezone.now() - timedelta(days=2))
    Handoff.objects.create(user=alice, item_ref="new", option="mix", outcome="timeout", started_at=timezone.now())
    since = (old.started_at + timedelta(days=1)).isoformat()
    assert [r["recording"] for r in follow(client, key, HANDOFFS, {"since": since})] == ["new"]
    # An unescaped "+00:00" arrives as " 00:00"; it still means what it says.
    raw = client.get(f"{HANDOFFS}?since={since.replace('+', '%20')}", **bearer(key)).json()["results"]
    assert [r["recording"] for r in raw] == ["new"]
    assert [r["recording"] for r in follow(client, key, HANDOFFS, {"outcome": "ok"})] == ["old"]


def test_returned_exports_since_and_state_and_never_a_media_link(client, key, alice):
    done = make_export(alice, "s1", state="done", result_ref="7", result_title="Solo", version_number=2)
    make_export(alice, "s2", state="failed", reason="Descript never finished rendering.")
    ReturnedExport.objects.filter(pk=done.pk).update(updated_at=timezone.now() - timedelta(hours=3))

    response = client.get(RETURNED, **bearer(key))
    text = response.content.decode()
    for secret in ("X-Amz", "descript-media.example", "share.descript.com", "media_links"):
        assert secret not in text
    rows = response.json()["results"]
    assert [r["share_id"] for r in rows] == ["s1", "s2"]  # by last change
    assert rows[0]["result"] == "7" and rows[0]["version"] == 2 and rows[0]["state"] == "done"
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert [r["share_id"] for r in follow(client, key, RETURNED, {"since": since})] == ["s2"]
    assert [r["share_id"] for r in follow(client, key, RETURNED, {"state": "done"})] == ["s1"]
    assert client.get(RETURNED, {"state": "lost"}, **bearer(key)).json()["code"] == "invalid"


def test_handoffs_never_show_a_signed_url(client, key, single, sandbox):
    link(client, key, single)
    sandbox.add_fault(path=SCHEMA_POST, status=400, body='{"error": "invalid_input", "message": "files[0].uri bad"}')
    link(client, key, single)
    text = client.get(HANDOFFS, **bearer(key)).content.decode()
    assert "X-Amz" not in text and "http" not in text


# --- Idempotency-Key (a view of this test's own, wrapped as eid's API views would be) ---------

CALLS: list[dict] = []
HOLD = threading.Event()
STARTED = threading.Event()


class Echo(TokenAPIView):
    @idempotent
    def post(self, request):
        CALLS.append(request.data)
        if request.data.get("hold"):
            STARTED.set()
            HOLD.wait(20)
        if request.data.get("boom"):
            raise RuntimeError("a bug in a view")
        response = Response({"n": len(CALLS), "echo": request.data}, status=request.data.get("status", 201))
        response["Location"] = f"/things/{len(CALLS)}"
        if request.data.get("no_store"):
            add_never_cache_headers(response)
        return response


urlpatterns = [path("api/test/echo", Echo.as_view())]


@pytest.fixture
def echo(settings):
    from partner_site import urls

    settings.ROOT_URLCONF = __name__
    urlpatterns[1:] = urls.urlpatterns
    CALLS.clear()
    HOLD.clear()
    STARTED.clear()
    yield
    HOLD.set()


def post_echo(client, key, body, idem="key-1", **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": idem} if idem is not None else {}
    return client.post("/api/test/echo", body, content_type="application/json", **bearer(key), **headers, **extra)


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(client, key, echo):
    first = post_echo(client, key, {"a": 1, "b": [1, 2]})
    again = client.post("/api/test/echo", '{"b": [1,2],   "a": 1}', content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="key-1", **bearer(key))  # same JSON, other spelling
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"n": 1, "echo": {"a": 1, "b": [1, 2]}}
    assert again["Location"] == "/things/1" and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert len(CALLS) == 1
    # The draft's sf-string form of the same key is the same key.
    assert post_echo(client, key, {"a": 1, "b": [1, 2]}, idem='"key-1"').json()["n"] == 1
    # Without a key every request runs.
    assert post_echo(client, key, {"a": 1}, idem=None).json()["n"] == 2


def test_the_same_key_with_another_body_is_422(client, key, echo):
    post_echo(client, key, {"a": 1})
    refused = post_echo(client, key, {"a": 2})
    assert refused.status_code == 422 and refused.json()["code"] == "idempotency_key_reused"
    assert len(CALLS) == 1


def test_keys_belong_to_one_token(client, key, echo):
    _, other = ApiToken.issue("another pipeline")
    assert post_echo(client, key, {"a": 1}).json()["n"] == 1
    assert post_echo(client, other, {"a": 2}).json()["n"] == 2  # same key, other token: its own request


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_is_still_running_is_409(key, echo):
    from django.test import Client

    answers = {}

    def first():
        try:
            answers["first"] = post_echo(Client(), key, {"hold": True})
        finally:
            connection.close()

    runner = threading.Thread(target=first)
    runner.start()
    assert STARTED.wait(20), "the first request never started"
    busy = post_echo(Client(), key, {"hold": True})
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_use"
    HOLD.set()
    runner.join(30)
    assert answers["first"].status_code == 201
    replay = post_echo(Client(), key, {"hold": True})
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true" and len(CALLS) == 1


def test_a_request_that_died_running_is_taken_over_after_a_while(client, key, echo, settings):
    settings.EID_API_IDEMPOTENCY_RUNNING_SECONDS = 60
    post_echo(client, key, {"a": 1})
    # As if that request's process had died before it finished: its row still says running.
    IdempotencyKey.objects.update(state="running", status_code=None, response_body="")
    assert post_echo(client, key, {"a": 1}).status_code == 409
    assert post_echo(client, key, {"a": 2}).status_code == 422  # another body: 422 whatever the state
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    taken = post_echo(client, key, {"a": 1})
    assert taken.status_code == 201 and taken.json()["n"] == 2 and "Idempotent-Replayed" not in taken
    assert post_echo(client, key, {"a": 1})["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("body", [{"status": 503}, {"status": 429}, {"boom": True}, {"no_store": True}])
def test_answers_that_are_not_final_or_must_not_be_stored_are_not_kept(client, key, echo, body):
    first = post_echo(client, key, body)
    second = post_echo(client, key, body)
    assert "Idempotent-Replayed" not in second and len(CALLS) == 2
    if body.get("boom"):
        assert first.status_code == 500 and first.json()["code"] == "server_error"
        assert "Traceback" not in first.content.decode()
    assert IdempotencyKey.objects.count() == 0


def test_a_4xx_answer_is_kept_and_replayed(client, key, echo):
    assert post_echo(client, key, {"status": 404}).status_code == 404
    replay = post_echo(client, key, {"status": 404})
    assert replay.status_code == 404 and replay["Idempotent-Replayed"] == "true" and len(CALLS) == 1


@pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(client, key, echo, bad):
    response = client.post("/api/test/echo", {}, content_type="application/json", **bearer(key),
                           HTTP_IDEMPOTENCY_KEY=bad.encode().decode("latin-1"))
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"
    assert CALLS == []


def test_keys_expire_after_a_day_and_are_purged(client, key, echo):
    post_echo(client, key, {"a": 1})
    row = IdempotencyKey.objects.get()
    assert timedelta(hours=23, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=24)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = post_echo(client, key, {"a": 2})  # an expired key is as good as new, even with another body
    assert again.status_code == 201 and again.json()["n"] == 2
    assert IdempotencyKey.objects.count() == 1  # the expired row went when the token used a key again

    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    from io import StringIO

    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert "Purged 1 " in out.getvalue() and IdempotencyKey.objects.count() == 0


# --- the OpenAPI document ---------------------------------------------------------------------


def test_the_document_lists_every_endpoint_with_examples_and_error_codes(client):
    document = client.get("/api/schema/?format=json").json()
    for path_, method in ((IMPORT_LINKS, "post"), (HANDOFFS, "get"), (RETURNED, "get")):
        operation = document["paths"][path_][method]
        assert operation["security"] == [{"serviceToken": []}]
        codes = {example["value"]["code"] for status, response in operation["responses"].items()
                 if status >= "400" for example in response["content"]["application/json"]["examples"].values()}
        assert {"not_authenticated", "invalid_token", "revoked_token", "throttled", "invalid"} <= codes
    post = document["paths"][IMPORT_LINKS]["post"]
    codes = {ex["value"]["code"] for status, r in post["responses"].items() if status >= "400"
             for ex in r["content"]["application/json"]["examples"].values()}
    assert {"missing", "empty", "unsupported", "misconfigured", "unavailable", "credentials", "rate_limited",
            "timeout", "upstream_error", "not_found", "permission_denied", "read_only_token"} <= codes
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert document["components"]["securitySchemes"]["serviceToken"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]
        ["serviceToken"]["description"]}


def test_the_docs_page_needs_no_csp_exception(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<style" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html
    csp = page["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.fixture
def eid_api_schema(db, key, single, sandbox):
    with api_schema() as schema:
        yield schema


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("method, address", [("POST", IMPORT_LINKS), ("GET", HANDOFFS), ("GET", RETURNED)])
def test_eid_endpoints_match_their_document_and_never_fail(eid_api_schema, key, method, address, mode):
    """Generated requests (valid ones, and ones the document says are invalid): never a 500, every
    answer's status, content type, headers and body as documented, and invalid input refused."""
    seen = fuzz(eid_api_schema[address][method], mode, key, max_examples=20)
    assert seen and 500 not in seen


# --- the docs page in a real browser, under the site's CSP -------------------------------------



@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_docs_render_in_chromium_with_no_csp_violation(live_server, monkeypatch):
    with chromium_page(monkeypatch, height=900) as page:
        page.goto(f"{live_server.url}/api/docs/")
        page.get_by_text("Edit in Descript: partner API").first.wait_for(timeout=30_000)
        operation = page.locator(".opblock-summary-path", has_text="/api/v1/import-links")
        operation.first.click()
        page.get_by_text("read_only_token").first.wait_for(timeout=10_000)
        select = page.locator(".swagger-ui select").first
        select.wait_for(timeout=10_000)
        # Swagger UI's icons come from our own static files, not data: URLs.
        assert "/static/eid/api-docs-" in select.evaluate("e => getComputedStyle(e).backgroundImage")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        assert "Edit in Descript: partner API" in page.content()
        assert page.violations == [] and page.page_errors == []
