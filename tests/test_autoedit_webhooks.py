"""auto_edit.completed and auto_edit.failed: written when an auto-edit ends (eid.jobs' signal, which
the machine sends after the final state commits), opt-in per endpoint, signed and delivered to an
independent receiver. Here the row is made final directly and the signal sent as the machine
sends it; the full round trip (a real auto-edit ending in a version) is eid.jobs' own test."""

from __future__ import annotations

import pytest
from django.utils import timezone

from eid.jobs.models import AutoEdit, AutoEditBatch
from eid.jobs.signals import auto_edit_finished
from eid.webhooks.delivery import deliver
from eid.webhooks.models import DEFAULT_EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from partner_site.library.models import Recording

from test_webhooks import Receiver, loopback_allowed, receiver  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def solo(make_recording, alice):
    recording = make_recording(alice, "Solo episode", mix=("alice/solo.wav", None, "audio/wav"))
    Recording.objects.filter(pk=recording.pk).update(external_id="pipeline-ep-12")
    return recording


@pytest.fixture
def hooks(receiver, loopback_allowed):  # noqa: F811
    return WebhookEndpoint.objects.create(url=receiver.url(),
                                          event_types=["auto_edit.completed", "auto_edit.failed"])


def auto_edit_of(recording, **final) -> AutoEdit:
    batch = AutoEditBatch.objects.create(via="api", prompt="Tighten", requested_by="token:x")
    ae = AutoEdit.objects.create(user=recording.owner, item_ref=str(recording.pk), item_title=recording.title,
                                 option="mix", prompt="Tighten", via="api", batch=batch,
                                 project_url="https://web.descript.com/p/proj-1")
    AutoEdit.objects.filter(pk=ae.pk).update(finished_at=timezone.now(), **final)
    ae.refresh_from_db()
    auto_edit_finished.send(sender=AutoEdit, auto_edit=ae)  # as the machine does, after the commit
    return ae


def test_a_completed_auto_edit_reaches_the_receiver_signed(solo, hooks, receiver):  # noqa: F811
    ae = auto_edit_of(solo, state="done", version_number=3, result_ref=str(solo.pk),
                      share_url="https://share.descript.com/view/abc123",
                      agent_summary="Removed 41 filler words and two long pauses.")
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event_type, delivery.endpoint_id, delivery.state) == ("auto_edit.completed", hooks.pk, "pending")

    deliver(delivery.pk)
    [got] = receiver.wait_for(1)
    payload = got.verify(hooks.secret)  # a valid Standard Webhooks signature with the endpoint's secret
    assert payload["type"] == "auto_edit.completed"
    data = payload["data"]
    assert data["auto_edit"]["id"] == str(ae.pk) and data["auto_edit"]["state"] == "done"
    assert data["item"] == {"ref": str(solo.pk), "title": "Solo episode", "external_id": "pipeline-ep-12"}
    assert (data["owner"], data["version"], data["result_ref"]) == ("alice", 3, str(solo.pk))
    assert data["project_url"] == "https://web.descript.com/p/proj-1"
    assert data["share_url"] == "https://share.descript.com/view/abc123"
    assert data["agent_summary"] == "Removed 41 filler words and two long pauses."
    assert data["batch"] == str(ae.batch_id)
    assert WebhookDelivery.objects.get().state == "succeeded"


def test_a_failed_auto_edit_says_why(solo, hooks, receiver):  # noqa: F811
    words = "Descript says this drive has no media minutes left (402). Add minutes, then try again."
    ae = auto_edit_of(solo, state="failed", reason=words, failure_kind="payment_required")
    [delivery] = WebhookDelivery.objects.all()
    deliver(delivery.pk)
    data = receiver.wait_for(1)[0].verify(hooks.secret)["data"]
    assert data["auto_edit"]["id"] == str(ae.pk) and data["auto_edit"]["state"] == "failed"
    assert data["failure"] == {"kind": "payment_required", "reason": words, "failed_files": {}}


def test_a_cancelled_auto_edit_is_a_failed_event_too(solo, hooks):
    auto_edit_of(solo, state="cancelled", reason="Cancelled by alice.")
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "auto_edit.failed" and '"state":"cancelled"' in delivery.payload


def test_auto_edit_events_are_opt_in(solo, receiver, loopback_allowed):  # noqa: F811
    assert "auto_edit.completed" not in DEFAULT_EVENT_TYPES and "auto_edit.failed" not in DEFAULT_EVENT_TYPES
    WebhookEndpoint.objects.create(url=receiver.url(), event_types=list(DEFAULT_EVENT_TYPES))
    auto_edit_of(solo, state="done", version_number=1, result_ref=str(solo.pk))
    assert not WebhookDelivery.objects.exists()


def test_an_endpoint_of_another_owner_hears_nothing(solo, bob, receiver, loopback_allowed):  # noqa: F811
    WebhookEndpoint.objects.create(url=receiver.url(), owner=bob, event_types=["auto_edit.completed"])
    auto_edit_of(solo, state="done", version_number=1, result_ref=str(solo.pk))
    assert not WebhookDelivery.objects.exists()


def test_no_signed_link_goes_out(solo, hooks):
    auto_edit_of(solo, state="done", version_number=1, result_ref=str(solo.pk))
    payload = WebhookDelivery.objects.get().payload
    assert "X-Amz" not in payload and "download_url" not in payload and "token" not in payload.lower()


def test_the_receiver_is_connected_once(solo, hooks):
    """ready() connects with a dispatch_uid: one event per auto-edit, however often apps are set up."""
    from django.apps import apps

    apps.get_app_config("eid_webhooks").ready()
    auto_edit_of(solo, state="done", version_number=1, result_ref=str(solo.pk))
    assert WebhookDelivery.objects.count() == 1
