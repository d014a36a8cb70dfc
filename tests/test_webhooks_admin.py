"""Operators' side: endpoints in the admin (the secret shown once, rotation, enable/disable) and the
delivery log with its replay action. Secrets never appear in lists, forms or logs."""

from __future__ import annotations

import logging
import re

import pytest
from standardwebhooks import Webhook

from eid.webhooks.delivery import deliver
from eid.webhooks.models import WebhookDelivery, WebhookEndpoint

from test_webhooks import Reply, a_version_event, loopback_allowed, receiver  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
ENDPOINTS = "/admin/eid_webhooks/webhookendpoint/"
DELIVERIES = "/admin/eid_webhooks/webhookdelivery/"


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="root-pass-1234")
    client.force_login(user)
    return client


def shown_secret(response) -> str:
    match = re.search(r'id="webhook-secret"[^>]*>(whsec_[A-Za-z0-9+/=]+)<', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def test_adding_an_endpoint_shows_its_secret_once(operator, receiver, loopback_allowed, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    answer = operator.post(f"{ENDPOINTS}add/", {"url": receiver.url(), "description": "Pipeline",
                                                  "event_types": ["version.created", "handoff.failed"],
                                                  "enabled": "on"})
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    secret = shown_secret(answer)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret and endpoint.created_by == "admin:root"
    assert endpoint.event_types == ["version.created", "handoff.failed"]
    for page in (ENDPOINTS, f"{ENDPOINTS}{endpoint.pk}/change/", f"{DELIVERIES}?endpoint__id__exact={endpoint.pk}"):
        text = operator.get(page).content.decode()
        assert secret not in text and endpoint.secret[6:20] not in text
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    assert secret not in caplog.text


def test_a_private_address_is_refused_in_the_admin(operator, receiver, settings):  # noqa: F811
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = []
    answer = operator.post(f"{ENDPOINTS}add/", {"url": "https://10.1.2.3/hooks", "event_types": ["version.created"],
                                                  "enabled": "on"})
    assert answer.status_code == 200 and "Deliveries could not go there" in answer.content.decode()
    assert "private" in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_rotate_secret_action_shows_the_new_one_and_both_sign(operator, receiver, loopback_allowed):  # noqa: F811
    endpoint = WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"])
    old = endpoint.secret
    answer = operator.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [str(endpoint.pk)]})
    new = shown_secret(answer)
    assert new != old and "keeps signing deliveries until" in answer.content.decode()
    listing = operator.get(ENDPOINTS).content.decode()
    assert "two secrets (rotating)" in listing and new not in listing and old not in listing
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    [got] = receiver.wait_for(1)
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)

    other = WebhookEndpoint.objects.create(url=receiver.url("/2"), event_types=["version.created"])
    answer = operator.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [str(endpoint.pk), str(other.pk)]},
                           follow=True)
    assert "one endpoint at a time" in answer.content.decode()
    operator.post(ENDPOINTS, {"action": "end_rotation", "_selected_action": [str(endpoint.pk)]})
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [new]


def test_disable_and_enable_actions(operator, receiver, loopback_allowed):  # noqa: F811
    endpoint = WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"])
    operator.post(ENDPOINTS, {"action": "disable_endpoints", "_selected_action": [str(endpoint.pk)]})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by root."
    assert a_version_event() == []
    operator.post(ENDPOINTS, {"action": "enable_endpoints", "_selected_action": [str(endpoint.pk)]})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_the_delivery_log_shows_attempts_and_replay_keeps_the_id(operator, receiver, loopback_allowed):  # noqa: F811
    endpoint = WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"])
    receiver.script = [Reply(503)]
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    row = WebhookDelivery.objects.get(pk=delivery_id)
    log = operator.get(f"{DELIVERIES}?endpoint__id__exact={endpoint.pk}").content.decode()
    assert row.webhook_id in log and "503" in log and "Pending" in log
    detail = operator.get(f"{DELIVERIES}{delivery_id}/change/").content.decode()
    assert "answered 503" in detail and "next try" in detail and "&quot;version.created&quot;" in detail

    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=row.last_attempt_at)
    deliver(delivery_id)
    answer = operator.post(DELIVERIES, {"action": "replay_deliveries", "_selected_action": [str(delivery_id)]},
                           follow=True)
    assert "queued again" in answer.content.decode()
    deliver(delivery_id)
    got = receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in got} == {row.webhook_id}
    assert [r.answered for r in got] == [503, 200, 200]


def test_deliveries_cannot_be_added_or_edited(operator, loopback_allowed, receiver):  # noqa: F811
    WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"])
    [delivery_id] = a_version_event()
    assert operator.get(f"{DELIVERIES}add/").status_code == 403
    page = operator.get(f"{DELIVERIES}{delivery_id}/change/").content.decode()
    assert 'name="_save"' not in page
