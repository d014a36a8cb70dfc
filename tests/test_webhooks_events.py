"""The events, from the code that causes them: a real import (sandbox + moto, eid.ingest.advance as
the worker runs it), a failed import, a failed click. Deliveries go to the independent receiver."""

from __future__ import annotations

import pytest
from django.conf import settings
from urllib.parse import urlencode

from demo.media import wav_bytes
from eid import ingest
from eid.models import ReturnedExport
from eid.webhooks.delivery import deliver
from eid.webhooks.models import WebhookDelivery, WebhookEndpoint
from partner_site.library.adapter import LibraryContent
from partner_site.library.models import Recording

from test_webhooks import Receiver, loopback_allowed, receiver  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
DRIVE = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"


class BrokenDescribe(LibraryContent):
    """A partner whose optional describe_item has a bug (named by EID_CONTENT_ADAPTER in a test)."""

    def describe_item(self, ref: str) -> dict:
        raise RuntimeError("the partner's bug")


@pytest.fixture
def solo(make_recording, alice):
    recording = make_recording(alice, "Solo episode", mix=("alice/solo.wav", wav_bytes(0.5), "audio/wav"))
    Recording.objects.filter(pk=recording.pk).update(external_id="pipeline-ep-12")
    return recording


@pytest.fixture
def hooks(receiver, loopback_allowed):  # noqa: F811
    return WebhookEndpoint.objects.create(
        url=receiver.url(), event_types=["version.created", "returned_export.failed", "handoff.failed"])


def import_edit(client, sandbox, recording, title="Tight cut", **share):
    made = sandbox.create_share(partner=DRIVE, source=str(recording.source_id), media_bytes=share.pop("media_bytes", 5000),
                                **share)
    client.post("/descript/import/new", {"url": made["share_url"], "title": title})
    return made, ReturnedExport.objects.get(share_id=made["share_id"]).pk


def settle(export_id, limit=200):
    for _ in range(limit):
        export = ReturnedExport.objects.get(pk=export_id)
        if not export.is_active:
            return export
        ReturnedExport.objects.filter(pk=export_id).update(next_check_at=None)
        ingest.advance(export_id)
    raise AssertionError("export did not settle")


def test_version_created_from_a_real_import(alice_client, solo, sandbox, hooks, receiver,
                                            django_capture_on_commit_callbacks):
    _share, export_id = import_edit(alice_client, sandbox, solo, duration_seconds=42.5)
    with django_capture_on_commit_callbacks(execute=True) as nudges:
        export = settle(export_id)
    assert export.state == "done", export.reason
    [delivery] = WebhookDelivery.objects.filter(event_type="version.created")
    assert nudges  # the worker is nudged after the publishing transaction commits, not before
    assert delivery.state == "pending" and receiver.received == []  # nothing sent by the import itself

    deliver(delivery.pk)
    [got] = receiver.wait_for(1)
    payload = got.verify(hooks.secret)
    version = solo.versions.get()
    assert payload["type"] == "version.created"
    data = payload["data"]
    assert data["item"] == {"ref": str(solo.pk), "title": "Solo episode", "external_id": "pipeline-ep-12"}
    assert (data["owner"], data["version"], data["title"], data["duration_seconds"]) == ("alice", 1, "Tight cut", 42.5)
    files = {f["kind"]: f for f in data["files"]}
    audio = version.assets.get(kind="audio")
    assert files["audio"] == {"kind": "audio", "key": audio.key, "size": audio.size, "content_type": "audio/mp4"}
    assert set(files) == {a.kind for a in version.assets.all()}
    assert data["import"] == {"id": str(export_id), "share_id": export.share_id, "match": "own_source"}


def test_a_failing_describe_item_still_sends_the_ref(alice_client, solo, sandbox, hooks, settings):
    settings.EID_CONTENT_ADAPTER = "test_webhooks_events.BrokenDescribe"
    _share, export_id = import_edit(alice_client, sandbox, solo)
    assert settle(export_id).state == "done"  # the version lands whatever the hook does
    delivery = WebhookDelivery.objects.get(event_type="version.created")
    assert '"item":{"ref":"%s","title":"Solo episode"}' % solo.pk in delivery.payload


def test_returned_export_failed_when_an_import_fails(alice_client, solo, sandbox, hooks, receiver):
    made, export_id = import_edit(alice_client, sandbox, solo)
    sandbox.add_fault(path=f"/media/{made['share_id']}/audio.m4a", status=410)
    export = settle(export_id)
    assert export.state == "failed"
    [delivery] = WebhookDelivery.objects.filter(event_type="returned_export.failed")
    deliver(delivery.pk)
    data = receiver.wait_for(1)[0].verify(hooks.secret)["data"]
    assert data["item"]["ref"] == str(solo.pk) and data["owner"] == "alice"
    assert data["import"]["id"] == str(export_id) and data["import"]["reason"] == export.reason
    assert data["import"]["retryable"] is True
    assert not WebhookDelivery.objects.filter(event_type="version.created").exists()


def test_handoff_failed_only_for_endpoints_that_ask(alice_client, solo, sandbox, hooks, receiver, settings):
    quiet = WebhookEndpoint.objects.create(url=receiver.url("/quiet"), event_types=["version.created"])
    settings.DESCRIPT_API_TOKEN = ""
    response = alice_client.post(f"/descript/edit/{solo.pk}/mix/")
    assert response.status_code == 503
    [delivery] = WebhookDelivery.objects.filter(event_type="handoff.failed")
    assert delivery.endpoint_id == hooks.pk and not quiet.deliveries.exists()
    deliver(delivery.pk)
    data = receiver.wait_for(1)[0].verify(hooks.secret)["data"]
    assert data["handoff"]["outcome"] == "misconfigured" and data["handoff"]["option"] == "mix"
    assert data["item"]["external_id"] == "pipeline-ep-12"


def test_a_successful_click_sends_nothing(alice_client, solo, sandbox, hooks):
    response = alice_client.post(f"/descript/edit/{solo.pk}/mix/")
    assert response.status_code == 302
    assert not WebhookDelivery.objects.exists()
