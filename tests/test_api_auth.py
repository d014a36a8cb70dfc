"""The API's door: service tokens (made by command or admin, shown once, stored hashed, revocable,
last use recorded), read-only tokens, per-token throttles and the one JSON error shape.

Real tokens over Django's test client; nothing of eid.api is patched.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eid.api.models import ApiToken, hash_key
from support import bearer

pytestmark = pytest.mark.django_db

HANDOFFS = "/api/v1/handoffs"
IMPORT_LINKS = "/api/v1/import-links"


@pytest.fixture
def token_key():
    token, key = ApiToken.issue("pipeline")
    return key


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"code", "detail", "errors"}
    return body


# --- 401 -------------------------------------------------------------------------------------


def test_no_token_is_401_with_the_json_shape_and_a_bearer_challenge(client):
    response = client.get(HANDOFFS)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("header, code", [
    ("Bearer eid_not-a-real-key", "invalid_token"),
    ("Bearer", "invalid_token"),
    ("Bearer two parts", "invalid_token"),
    ("bearer " + "x" * 500, "invalid_token"),
    ("Basic YWxpY2U6YWxpY2UtcGFzcy0xMjM0", "not_authenticated"),  # a password is no way in
    ("Token abc", "not_authenticated"),
])
def test_a_bad_or_foreign_authorization_header_is_401(client, header, code):
    assert_error(client.get(HANDOFFS, HTTP_AUTHORIZATION=header), 401, code)


def test_a_signed_in_browser_session_is_nobody_to_the_api(alice_client):
    # The pages' login (Django's sessions) does not reach the API, so neither does CSRF.
    assert_error(alice_client.get(HANDOFFS), 401, "not_authenticated")
    assert_error(alice_client.post(IMPORT_LINKS, {}, content_type="application/json"), 401, "not_authenticated")


def test_a_valid_token_reads(client, token_key):
    response = client.get(HANDOFFS, **bearer(token_key))
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_revoked_token_answers_401(client, token_key):
    token = ApiToken.objects.get()
    token.revoke()
    assert_error(client.get(HANDOFFS, **bearer(token_key)), 401, "revoked_token")


def test_a_token_whose_owner_is_deactivated_answers_401(client, alice):
    _, key = ApiToken.issue("alice's", owner=alice)
    alice.is_active = False
    alice.save()
    assert_error(client.get(HANDOFFS, **bearer(key)), 401, "inactive_owner")


def test_deleting_the_owner_deletes_the_token_instead_of_widening_it(client, alice):
    token, key = ApiToken.issue("alice's", owner=alice)
    alice.delete()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert_error(client.get(HANDOFFS, **bearer(key)), 401, "invalid_token")


# --- the key: shown once, kept hashed ---------------------------------------------------------


def test_only_the_hash_and_a_prefix_of_the_key_are_stored():
    token, key = ApiToken.issue("pipeline")
    assert key.startswith("eid_") and len(key) > 40
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in json.dumps(row, default=str)
    assert row["digest"] == hash_key(key) and key.startswith(row["prefix"]) and len(row["prefix"]) == 12


def test_last_used_at_is_written_at_most_once_a_minute(client, token_key):
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    client.get(HANDOFFS, **bearer(token_key))
    first = ApiToken.objects.get().last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    with CaptureQueriesContext(connection) as queries:
        client.get(HANDOFFS, **bearer(token_key))
    assert ApiToken.objects.get().last_used_at == first
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "api" in q["sql"]]

    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get(HANDOFFS, **bearer(token_key))
    assert ApiToken.objects.get().last_used_at > first


# --- read-only tokens -------------------------------------------------------------------------


def test_a_read_only_token_reads_but_writing_is_403_read_only_token(client, alice, sandbox):
    _, key = ApiToken.issue("dashboard", read_only=True)
    assert client.get(HANDOFFS, **bearer(key)).status_code == 200
    response = client.post(IMPORT_LINKS, {"recording": "1", "option": "mix", "user": "alice"},
                           content_type="application/json", **bearer(key))
    assert_error(response, 403, "read_only_token")
    assert sandbox.requests("/v1/edit_in_descript/schema") == []


# --- throttles --------------------------------------------------------------------------------


def throttled_settings(settings, **rates):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}}


def test_each_token_has_its_own_rate_and_a_429_says_when_to_come_back(client, settings):
    throttled_settings(settings, api_read="2/min")
    _, first = ApiToken.issue("first")
    _, second = ApiToken.issue("second")
    statuses = [client.get(HANDOFFS, **bearer(first)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get(HANDOFFS, **bearer(first))
    body = assert_error(refused, 429, "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60 and refused["Retry-After"] in body["detail"]
    assert client.get(HANDOFFS, **bearer(second)).status_code == 200  # another token is not affected


def test_writes_count_in_their_own_scope(client, settings, alice, sandbox):
    throttled_settings(settings, import_links="1/min")
    _, key = ApiToken.issue("pipeline")
    body = {"recording": "999", "option": "mix", "user": "alice"}
    assert client.post(IMPORT_LINKS, body, content_type="application/json", **bearer(key)).status_code == 404
    refused = client.post(IMPORT_LINKS, body, content_type="application/json", **bearer(key))
    assert_error(refused, 429, "throttled")
    assert client.get(HANDOFFS, **bearer(key)).status_code == 200  # reads are another scope


def test_each_user_keeps_the_buttons_own_budget(client, settings, make_recording, alice, bob, sandbox):
    settings.EID_THROTTLE_RATES = {"click": "1/m", "landing": "60/m"}
    _, key = ApiToken.issue("spa backend")
    mix = ("a/solo.wav", b"RIFF0000WAVE", "audio/wav")
    alices = make_recording(alice, "A", mix=mix)
    bobs = make_recording(bob, "B", mix=mix)

    def link(recording, user):
        return client.post(IMPORT_LINKS, {"recording": str(recording.pk), "option": "mix", "user": user},
                           content_type="application/json", **bearer(key))

    assert link(alices, "alice").status_code == 201
    refused = link(alices, "alice")
    assert_error(refused, 429, "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert link(bobs, "bob").status_code == 201  # another user of the same token is not affected


# --- the one error shape ----------------------------------------------------------------------


def test_validation_errors_name_each_field(client, token_key):
    response = client.post(IMPORT_LINKS, {"option": "not a slug!"}, content_type="application/json",
                           **bearer(token_key))
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"recording", "option", "user"}
    assert all(isinstance(m, str) for messages in body["errors"].values() for m in messages)


def test_a_body_that_is_not_json_is_parse_error_and_another_type_is_415(client, token_key):
    assert_error(client.post(IMPORT_LINKS, "{nope", content_type="application/json", **bearer(token_key)),
                 400, "parse_error")
    assert_error(client.post(IMPORT_LINKS, "a=b", content_type="application/x-www-form-urlencoded",
                             **bearer(token_key)), 415, "unsupported_media_type")


def test_a_query_that_is_not_valid_is_400_and_a_bad_cursor_404(client, token_key):
    body = assert_error(client.get(HANDOFFS, {"since": "yesterday"}, **bearer(token_key)), 400, "invalid")
    assert list(body["errors"]) == ["since"]
    assert_error(client.get(HANDOFFS, {"cursor": "garbage"}, **bearer(token_key)), 404, "not_found")


def test_wrong_method_and_unknown_address_answer_json(client, token_key):
    response = client.delete(HANDOFFS, **bearer(token_key))
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]
    assert_error(client.get("/api/v1/no-such-thing", **bearer(token_key)), 404, "not_found")
    assert_error(client.post("/api/v2/handoffs"), 404, "not_found")


def test_the_site_pages_keep_their_own_errors(client):
    # Only /api/ answers JSON: the site's pages still answer their own pages.
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "text/html" in response["Content-Type"]


# --- create_api_token -------------------------------------------------------------------------


def create(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_api_token_prints_the_key_once_on_its_last_line(client):
    lines = create("nightly-ingest")
    key = lines[-1]
    token = ApiToken.objects.get()
    assert (token.name, token.read_only, token.owner) == ("nightly-ingest", False, None)
    assert re.fullmatch(r"eid_[A-Za-z0-9_-]{43}", key) and token.digest == hash_key(key)
    assert "every user" in lines[0] and token.prefix in lines[0]
    assert client.get(HANDOFFS, **bearer(key)).status_code == 200


def test_create_api_token_read_only_and_for_one_owner(alice):
    key = create("dashboard", "--read-only", "--owner", "alice")[-1]
    token = ApiToken.objects.get(digest=hash_key(key))
    assert token.read_only and token.owner == alice


def test_create_api_token_refuses_an_unknown_owner():
    with pytest.raises(CommandError, match="No user 'nobody'"):
        create("x", "--owner", "nobody")
    assert ApiToken.objects.count() == 0


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="root-pass-1234"))
    return client


def test_admin_makes_a_token_and_shows_its_key_on_that_page_only(admin_client, alice):
    response = admin_client.post("/admin/eid_api/apitoken/add/",
                                 {"name": "from the admin", "read_only": "on", "owner": str(alice.pk)})
    assert response.status_code == 200
    key = re.search(r'<code id="api-token-key">([^<]+)</code>', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert token.digest == hash_key(key) and token.read_only and token.owner == alice
    assert "no-store" in response["Cache-Control"]
    # Never again: not in the list, not on the token's page, not in a message for the next page.
    for page in (admin_client.get("/admin/eid_api/apitoken/"),
                 admin_client.get(f"/admin/eid_api/apitoken/{token.pk}/change/")):
        assert page.status_code == 200
        assert key not in page.content.decode() and token.prefix in page.content.decode()


def test_admin_lists_tokens_and_revokes_them(admin_client, client, alice):
    token, key = ApiToken.issue("to revoke", owner=alice)
    other, other_key = ApiToken.issue("to keep")
    listing = admin_client.get("/admin/eid_api/apitoken/").content.decode()
    for text in ("to revoke", token.prefix, "alice", "to keep", "Last used at", "Revoked at", "Read only"):
        assert text in listing
    response = admin_client.post("/admin/eid_api/apitoken/",
                                 {"action": "revoke", "_selected_action": [str(token.pk)]}, follow=True)
    assert "Revoked 1 token(s)." in response.content.decode()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None
    assert_error(client.get(HANDOFFS, **bearer(key)), 401, "revoked_token")
    assert client.get(HANDOFFS, **bearer(other_key)).status_code == 200


def test_a_tokens_scope_cannot_be_changed_after_it_is_made(admin_client, alice, bob):
    token, _ = ApiToken.issue("alice only", owner=alice)
    admin_client.post(f"/admin/eid_api/apitoken/{token.pk}/change/",
                      {"name": "renamed", "owner": str(bob.pk)})
    token.refresh_from_db()
    assert (token.name, token.owner) == ("renamed", alice)
