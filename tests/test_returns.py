"""The way back: a Descript share page lands as a new version of the right recording, or a new one.

Share pages come from the sandbox over real HTTP; the ingest steps run the project's own code
(`eid.ingest.advance`, what the worker runs) against moto's S3 server.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from urllib.parse import urlencode

import pytest
import requests
from django.conf import settings

from demo.media import wav_bytes
from eid import ingest
from eid.models import ReturnedExport
from partner_site.library.models import Recording, RecordingVersion
from library_rows import recording_of, version_of
from sandbox.media import synthetic_chunks

pytestmark = pytest.mark.django_db

DRIVE = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"


@pytest.fixture
def solo(make_recording, alice):
    return make_recording(alice, "Solo episode", mix=("alice/solo.wav", wav_bytes(0.5), "audio/wav"))


def _without_links(html: str) -> str:
    """A landing page less what differs between any two share pages (their links and ids)."""
    return re.sub(r'(value|href)="[^"]*"', "", html)


def landing(client, url, title=""):
    query = {"url": url}
    if title:
        query["title"] = title
    return client.get("/descript/import/new?" + urlencode(query))


def confirm(client, url, title=""):
    return client.post("/descript/import/new", {"url": url, "title": title})


def run_until_settled(export_id, limit=200):
    """Drive the real ingest steps as the worker would, ignoring run_after delays."""
    for _ in range(limit):
        export = ReturnedExport.objects.get(pk=export_id)
        if not export.is_active:
            return export
        ReturnedExport.objects.filter(pk=export_id).update(next_check_at=None)
        ingest.advance(export_id)
    raise AssertionError("export did not settle")


def read_object(s3, key):
    return s3.get_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)["Body"].read()


# --- the landing --------------------------------------------------------------------------


def test_not_logged_in_goes_to_login_and_back_to_the_same_landing(client, alice, sandbox):
    share = sandbox.create_share(partner=DRIVE, source="x", media_bytes=1000)
    original = "/descript/import/new?" + urlencode({"url": share["share_url"], "title": "My edit"})
    response = client.get(original)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    login_page = client.get(response["Location"])
    next_value = login_page.context["next"]
    logged_in = client.post("/accounts/login/", {"username": "alice", "password": "alice-pass-1234",
                                                 "next": next_value})
    assert logged_in.status_code == 302 and logged_in["Location"] == original
    assert client.get(original).status_code == 200


def test_landing_says_edited_version_of_own_recording_and_writes_nothing(alice_client, solo, sandbox):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1000)
    response = landing(alice_client, share["share_url"], "Tighter cut")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Tighter cut" in text and "Edited version of" in text and "Solo episode" in text
    assert ReturnedExport.objects.count() == 0


@pytest.mark.parametrize(
    "partner, source, match",
    [
        (None, None, "no_tags"),
        ("11111111-2222-3333-4444-555555555555", "SOURCE", "other_partner"),
        (DRIVE, "00000000-0000-0000-0000-000000000000", "unknown_source"),
        (DRIVE, "not-a-uuid", "unknown_source"),
    ],
)
def test_anything_not_ours_becomes_a_new_recording(alice_client, solo, sandbox, partner, source, match):
    share = sandbox.create_share(partner=partner, source=source, media_bytes=2000, seed=match)
    response = landing(alice_client, share["share_url"])
    assert "New recording" in response.content.decode()
    confirm(alice_client, share["share_url"], "From Descript")
    export = run_until_settled(ReturnedExport.objects.get().pk)
    assert (export.match, export.state) == (match, "done")
    assert export.result_ref != str(solo.pk) and recording_of(export).owner.username == "alice"
    assert solo.versions.count() == 0


def test_another_users_source_never_touches_their_recording(client, bob, alice, solo, sandbox, django_user_model):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1500)
    client.force_login(bob)
    page = landing(client, share["share_url"])
    text = page.content.decode()
    assert "New recording" in text and "Solo episode" not in text
    # Nothing in the page tells bob this source is someone's: it reads as an unknown one does.
    unknown = sandbox.create_share(partner=DRIVE, source=str(uuid.uuid4()), media_bytes=1500, seed="unknown")
    unknown_text = landing(client, unknown["share_url"]).content.decode()
    assert _without_links(text) == _without_links(unknown_text)
    confirm(client, share["share_url"])
    export = run_until_settled(ReturnedExport.objects.get().pk)
    assert export.match == "foreign_source" and recording_of(export).owner == bob
    assert solo.versions.count() == 0
    # Operators see the case.
    admin = django_user_model.objects.create_superuser("root", password="root-pass-1234")
    client.force_login(admin)
    listing = client.get("/admin/eid/returnedexport/?match__exact=foreign_source")
    assert listing.status_code == 200 and "another user" in listing.content.decode()


def test_confirm_twice_and_landing_again_show_the_same_import(alice_client, solo, sandbox):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1000, render_seconds=60)
    first = confirm(alice_client, share["share_url"], "Cut")
    second = confirm(alice_client, share["share_url"], "Cut")
    again = landing(alice_client, share["share_url"], "Cut")
    assert ReturnedExport.objects.count() == 1
    status_url = f"/descript/imports/{ReturnedExport.objects.get().pk}/"
    assert first["Location"] == second["Location"] == again["Location"] == status_url


# --- unsafe or odd links ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://share.descript.com/view/abc", "https"),
        ("https://127.0.0.1/view/abc", ""),
        ("https://[::1]/view/abc", ""),
        ("https://2130706433/view/abc", ""),
        ("https://0x7f000001/view/abc", ""),
        ("https://169.254.169.254/view/abc", ""),
        ("https://10.1.2.3/view/abc", ""),
        ("https://share.descript.com@evil.example/view/abc", ""),
        ("https://user:pw@share.descript.com/view/abc", ""),
        ("https://share.descript.com:8443/view/abc", ""),
        ("https://evil.example/view/abc", "share.descript.com"),
        ("https://share.descript.com/admin", ""),
        ("javascript:alert(1)", ""),
        ("", "No Descript share link"),
    ],
)
def test_unsafe_links_are_refused_with_a_reason_and_no_fetch(alice_client, sandbox, url, words):
    response = landing(alice_client, url)
    assert response.status_code == 400
    text = response.content.decode()
    assert 'id="error-message"' in text and "Traceback" not in text
    assert words in text
    assert sandbox.requests() == []
    assert ReturnedExport.objects.count() == 0


def test_sandbox_paths_other_than_view_are_refused(alice_client, sandbox):
    response = landing(alice_client, f"{settings.SANDBOX_ORIGIN}/_sandbox/requests")
    assert response.status_code == 400
    assert sandbox.requests() == []


@pytest.mark.parametrize(
    "fault, status, words",
    [
        ({"body_size": 5_000_000, "content_type": "text/html"}, 422, "too large"),
        ({"body": '{"a": 1}', "content_type": "application/json", "status": 200}, 422, "web page"),
        ({"latency_ms": 15000}, 502, "too long"),
        ({"status": 404}, 404, "does not exist"),
        ({"status": 500}, 502, ""),
    ],
)
def test_odd_share_pages_get_a_clear_answer(alice_client, sandbox, fault, status, words, settings):
    share = sandbox.create_share(partner=DRIVE, source="x", media_bytes=100)
    sandbox.add_fault(path=f"/view/{share['share_id']}", **fault)
    response = landing(alice_client, share["share_url"])
    assert response.status_code == status
    text = response.content.decode()
    assert words.lower() in text.lower() and "Traceback" not in text
    assert ReturnedExport.objects.count() == 0


def _page(head: str) -> str:
    return f"<!doctype html><html><head>{head}</head><body><p>hi</p></body></html>"


def test_invalid_utf8_page_is_refused(alice_client, sandbox):
    share = sandbox.create_share(media_bytes=100)
    sandbox.add_fault(path=f"/view/{share['share_id']}", status=200, content_type="text/html; charset=utf-8",
                      body_b64="PGh0bWw+/f7/PC9odG1sPg==")
    response = landing(alice_client, share["share_url"])
    assert response.status_code == 422 and "not valid text" in response.content.decode()


def test_conflicting_repeated_tags_are_refused(alice_client, solo, sandbox):
    share = sandbox.create_share(media_bytes=100)
    head = (f'<meta property="descript:partner" content="{DRIVE}">'
            f'<meta property="descript:source" content="{solo.source_id}">'
            '<meta property="descript:source" content="00000000-0000-0000-0000-000000000001">'
            f'<meta property="descript:audio" content="{settings.SANDBOX_ORIGIN}/media/x/audio.m4a">')
    sandbox.add_fault(path=f"/view/{share['share_id']}", status=200, content_type="text/html", body=_page(head))
    response = landing(alice_client, share["share_url"])
    assert response.status_code == 422 and "conflicting" in response.content.decode()


def test_page_without_media_tags_is_refused(alice_client, sandbox):
    share = sandbox.create_share(media_bytes=100)
    sandbox.add_fault(path=f"/view/{share['share_id']}", status=200, content_type="text/html",
                      body=_page(f'<meta property="descript:partner" content="{DRIVE}">'))
    response = landing(alice_client, share["share_url"])
    assert response.status_code == 422 and "no audio or video" in response.content.decode()


def test_spoofed_tags_in_the_body_are_ignored(alice_client, solo, sandbox):
    share = sandbox.create_share(media_bytes=100)
    body = (f'<html><head><meta property="descript:audio" content="{settings.SANDBOX_ORIGIN}/media/x/a.m4a">'
            f'</head><body><meta property="descript:partner" content="{DRIVE}">'
            f'<meta property="descript:source" content="{solo.source_id}"></body></html>')
    sandbox.add_fault(path=f"/view/{share['share_id']}", status=200, content_type="text/html", body=body)
    response = landing(alice_client, share["share_url"])
    assert response.status_code == 200 and "New recording" in response.content.decode()


def test_media_links_to_private_addresses_are_refused_by_the_worker(alice_client, solo, sandbox):
    share = sandbox.create_share(media_bytes=100)
    body = _page(f'<meta property="descript:partner" content="{DRIVE}">'
                 f'<meta property="descript:source" content="{solo.source_id}">'
                 '<meta property="descript:audio" content="https://127.0.0.1/secret.m4a">')
    sandbox.add_fault(path=f"/view/{share['share_id']}", status=200, content_type="text/html", body=body)
    confirm(alice_client, share["share_url"])
    export = run_until_settled(ReturnedExport.objects.get().pk)
    assert export.state == "failed" and not export.retryable
    assert "not allowed" in export.reason
    assert solo.versions.count() == 0


# --- the copy -------------------------------------------------------------------------------


def test_rendering_then_ready_lands_a_complete_version(alice_client, solo, sandbox, s3):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=3 * 1024 * 1024 + 17,
                                 seed="ready-later", render_seconds=1.0)
    confirm(alice_client, share["share_url"], "Second cut")
    export_id = ReturnedExport.objects.get().pk
    ingest.advance(export_id)
    export = ReturnedExport.objects.get(pk=export_id)
    # The published_projects API says "processing" (409) before the media links are even tried.
    assert export.state == "waiting" and export.checks == 1 and export.last_check_status == 409
    assert RecordingVersion.objects.count() == 0  # nothing visible until every part is stored

    status = alice_client.get(f"/descript/imports/{export_id}/?format=json").json()
    assert status["state"] == "waiting" and status["checks"] == 1 and status["next_check_at"]

    export = run_until_settled(export_id, limit=400)
    assert export.state == "done", export.reason
    version = solo.versions.get()
    assert (version.number, version.title) == (1, "Second cut")
    kinds = {a.kind: a for a in version.assets.all()}
    assert set(kinds) == {"audio", "subtitles", "transcript"}
    data = read_object(s3, kinds["audio"].key)
    assert hashlib.sha256(data).hexdigest() == share["media_sha256"]
    assert kinds["audio"].size == len(data) == 3 * 1024 * 1024 + 17
    assert read_object(s3, kinds["subtitles"].key).startswith(b"WEBVTT")
    json.loads(read_object(s3, kinds["transcript"].key))
    assert s3.list_multipart_uploads(Bucket=settings.AWS_STORAGE_BUCKET_NAME).get("Uploads", []) == []

    page = alice_client.get(f"/recordings/{solo.pk}/").content.decode()
    assert "Version 1: Second cut" in page
    done = alice_client.get(f"/descript/imports/{export_id}/").content.decode()
    assert f"/recordings/{solo.pk}/" in done


def test_second_edit_of_the_same_recording_is_version_two(alice_client, solo, sandbox):
    for n in (1, 2):
        share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1000, seed=f"e{n}")
        confirm(alice_client, share["share_url"], f"Cut {n}")
        run_until_settled(ReturnedExport.objects.get(share_id=share["share_id"]).pk)
    assert list(solo.versions.order_by("number").values_list("number", "title")) == [(1, "Cut 1"), (2, "Cut 2")]
    assert Recording.objects.filter(owner=solo.owner).count() == 1


def test_never_ready_gives_up_with_a_reason_and_can_be_retried(alice_client, solo, sandbox, settings):
    settings.EID_EXPORT_GIVE_UP_SECONDS = 0.5
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1000, render_seconds=3600)
    confirm(alice_client, share["share_url"])
    export_id = ReturnedExport.objects.get().pk
    import time

    ingest.advance(export_id)
    time.sleep(0.6)
    export = run_until_settled(export_id)
    assert export.state == "failed" and export.retryable
    assert "had not finished rendering" in export.reason
    page = alice_client.get(f"/descript/imports/{export_id}/").content.decode()
    assert "had not finished rendering" in page and "Try again" in page

    settings.EID_EXPORT_GIVE_UP_SECONDS = 3600
    sandbox.clock = lambda: time.time() + 7200  # Descript finished in the meantime
    alice_client.post(f"/descript/imports/{export_id}/retry/")
    assert run_until_settled(export_id).state == "done"


def test_published_projects_api_gives_title_and_duration(alice_client, solo, sandbox):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=4000,
                                 title="API title", duration_seconds=12.5)
    response = client_landing_without_title = landing(alice_client, share["share_url"])
    assert "API title" in response.content.decode()
    confirm(alice_client, share["share_url"])
    export = run_until_settled(ReturnedExport.objects.get().pk)
    assert version_of(export).duration_seconds == 12.5
    calls = sandbox.requests("/v1/published_projects/")
    assert calls and all(c["authorization_present"] for c in calls)
    del client_landing_without_title


def test_published_projects_rate_limit_is_honoured(alice_client, solo, sandbox):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=1000)
    sandbox.add_fault(path="/v1/published_projects/", status=429, headers={"Retry-After": "30"}, times=1)
    confirm(alice_client, share["share_url"])
    export_id = ReturnedExport.objects.get().pk
    ingest.advance(export_id)
    export = ReturnedExport.objects.get(pk=export_id)
    assert export.state == "waiting"
    wait = (export.next_check_at - export.updated_at).total_seconds()
    assert 29 <= wait <= 31
    assert run_until_settled(export_id).state == "done"


def test_status_page_is_private(client, alice_client, bob, solo, sandbox):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=100, render_seconds=60)
    confirm(alice_client, share["share_url"])
    client.force_login(bob)
    assert client.get(f"/descript/imports/{ReturnedExport.objects.get().pk}/").status_code == 404


def test_expected_media_digest_matches_generator(sandbox):
    share = sandbox.create_share(media_bytes=123457, seed="digest")
    expected = hashlib.sha256(b"".join(synthetic_chunks("digest", 123457))).hexdigest()
    served = requests.get(sandbox_media(share), timeout=10).content
    assert hashlib.sha256(served).hexdigest() == expected == share["media_sha256"]


def sandbox_media(share):
    return f"{settings.SANDBOX_ORIGIN}/media/{share['share_id']}/audio.m4a"


def test_without_a_token_the_media_links_are_polled_until_ready(alice_client, solo, sandbox, settings, s3):
    settings.DESCRIPT_API_TOKEN = ""
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=5000, seed="tags-only",
                                 render_seconds=0.8)
    confirm(alice_client, share["share_url"], "Tags only")
    export_id = ReturnedExport.objects.get().pk
    ingest.advance(export_id)
    export = ReturnedExport.objects.get(pk=export_id)
    assert (export.state, export.checks, export.last_check_status) == ("waiting", 1, 404)
    assert sandbox.requests("/v1/published_projects/") == []
    export = run_until_settled(export_id, limit=400)
    assert export.state == "done" and export.checks >= 2
    audio = version_of(export).assets.get(kind="audio")
    assert hashlib.sha256(read_object(s3, audio.key)).hexdigest() == share["media_sha256"]


def test_operators_retry_failed_imports_from_the_admin_and_cannot_edit_them(client, alice, django_user_model):
    from django_tasks_db.models import DBTaskResult

    failed = ReturnedExport.objects.create(user=alice, share_id="gaveup", share_url="https://x/view/gaveup",
                                           title="Gave up", match="no_tags", state="failed", retryable=False,
                                           reason="Descript had not finished rendering after 3 hours of checking.")
    done = ReturnedExport.objects.create(user=alice, share_id="fine", share_url="https://x/view/fine",
                                         title="Fine", match="no_tags", state="done")
    client.force_login(django_user_model.objects.create_superuser("root", password="root-pass-1234"))

    detail = client.get(f"/admin/eid/returnedexport/{failed.pk}/change/").content.decode()
    assert "had not finished rendering" in detail and 'name="_save"' not in detail
    answer = client.post("/admin/eid/returnedexport/", {"action": "retry_failed",
                                                        "_selected_action": [failed.pk, done.pk]}, follow=True)
    assert "1 import(s) queued again." in answer.content.decode()
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.state, failed.reason, done.state) == ("waiting", "", "done")
    assert [r.args_kwargs["args"] for r in DBTaskResult.objects.all()] == [[str(failed.pk)]]


def test_an_unsafe_download_url_from_the_api_falls_back_to_the_page_link(alice_client, solo, sandbox, s3):
    share = sandbox.create_share(partner=DRIVE, source=str(solo.source_id), media_bytes=3000, seed="fallback")
    sandbox.add_fault(path=f"/v1/published_projects/{share['share_id']}", status=200,
                      content_type="application/json",
                      body=json.dumps({"publish_type": "audio", "download_url": "https://127.0.0.1/internal.m4a",
                                       "metadata": {"title": "From the API", "duration_seconds": 3}}))
    confirm(alice_client, share["share_url"], "Fallback")
    export = run_until_settled(ReturnedExport.objects.get().pk)
    assert export.state == "done", export.reason
    audio = version_of(export).assets.get(kind="audio")
    assert hashlib.sha256(read_object(s3, audio.key)).hexdigest() == share["media_sha256"]
    assert version_of(export).duration_seconds == 3  # the rest of the API's answer still counts
