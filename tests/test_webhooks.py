"""Webhooks out: signed deliveries to an independent receiver over real HTTP on 127.0.0.1.

The receiver is a small HTTP server in a thread, started by the test; it knows nothing of eid
and verifies every request with the `standardwebhooks` package's own `Webhook.verify`. The
delivery runs the worker's code (eid.webhooks.delivery.deliver, what the task runs); the full
path from a real import runs a real db_worker process (tests/test_webhooks_worker.py).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from eid.conf import eid_settings
from eid.webhooks import events
from eid.webhooks.delivery import ReplayRefused, deliver, replay, retry_delay
from eid.webhooks.models import WebhookDelivery, WebhookEndpoint, new_secret
from eid.webhooks.tasks import requeue_lost
from receiver import Received, Receiver, Reply, receiver  # noqa: F401  (the receiver; other webhook tests import it from here)

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
def loopback_allowed(settings):
    """The operator's allow-list for the local receiver; a short, exact schedule for the tests."""
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.EID_WEBHOOK_RETRY_SCHEDULE = [1, 2, 4]
    settings.EID_WEBHOOK_RETRY_JITTER = 0
    settings.EID_WEBHOOK_TIMEOUT = 2.0
    return settings


@pytest.fixture
def endpoint(receiver, loopback_allowed):
    return WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created", "handoff.failed"])


def a_version_event(owner=None, ref="7") -> list[int]:
    """A version.created event as ingest emits it, without an import behind it."""
    data = {"item": {"ref": ref, "title": "Roundtable", "external_id": "ep-7"}, "owner": None, "version": 2,
            "files": [{"kind": "audio", "key": "returns/x/audio.m4a", "size": 1234, "content_type": "audio/mp4"}]}
    return events.emit("version.created", data, owner=owner)


def due_now(delivery_id: int) -> None:
    """Stand in for the wait: the retry the row names becomes due now (the schedule is asserted first)."""
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


def seconds(a, b) -> float:
    return (b - a).total_seconds()


pytestmark = pytest.mark.django_db


# --- signing ---------------------------------------------------------------------------------------------


def test_a_delivery_is_signed_per_standard_webhooks_and_verifies(endpoint, receiver):
    [delivery_id] = a_version_event()
    assert deliver(delivery_id) is None
    [got] = receiver.wait_for(1)
    payload = got.verify(endpoint.secret)  # raises unless a signature matches
    assert payload["type"] == "version.created" and payload["data"]["version"] == 2
    assert got.headers["webhook-id"].startswith("msg_")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 10
    assert got.headers["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)  # another secret does not verify
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 1, 200)
    assert delivery.last_latency_ms is not None and delivery.finished_at is not None


def test_secret_rotation_both_signatures_verify_then_only_the_new(endpoint, receiver):
    old = endpoint.secret
    new = endpoint.rotate_secret()
    assert new != old and new.startswith("whsec_")
    [first] = a_version_event()
    deliver(first)
    [got] = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verify(old) == got.verify(new)  # a receiver on either secret accepts it

    endpoint.end_rotation()
    [second] = a_version_event()
    deliver(second)
    got = receiver.wait_for(2)[1]
    got.verify(new)
    with pytest.raises(WebhookVerificationError):
        got.verify(old)


def test_the_previous_secret_stops_signing_when_its_overlap_ends(endpoint, receiver):
    old = endpoint.secret
    endpoint.rotate_secret(overlap_seconds=60)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    [got] = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        got.verify(old)


# --- retries on the schedule -----------------------------------------------------------------------------------


def test_500_then_429_with_retry_after_are_retried_on_the_schedule(endpoint, receiver):
    receiver.script = [Reply(500), Reply(429, {"Retry-After": "3"}), Reply(200)]
    [delivery_id] = a_version_event()

    assert deliver(delivery_id) is not None
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
    assert seconds(row.last_attempt_at, row.next_attempt_at) == pytest.approx(1, abs=0.05)  # step 1: 1 s
    assert deliver(delivery_id) == row.next_attempt_at  # not due yet: nothing is sent, the nudge comes back then
    assert len(receiver.received) == 1

    due_now(delivery_id)
    deliver(delivery_id)
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status) == ("pending", 2, 429)
    # Step 2 is 2 s; the receiver's Retry-After (3 s) is longer, so it wins.
    assert seconds(row.last_attempt_at, row.next_attempt_at) == pytest.approx(3, abs=0.05)

    due_now(delivery_id)
    deliver(delivery_id)
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status, row.next_attempt_at) == ("succeeded", 3, 200, None)
    got = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in got}) == 1  # every attempt is the same message
    assert len({r.body for r in got}) == 1
    for r in got:
        r.verify(endpoint.secret)
    assert [h["status"] for h in row.history] == [500, 429, 200]


def test_past_the_last_step_the_delivery_is_given_up(endpoint, receiver, settings):
    settings.EID_WEBHOOK_RETRY_SCHEDULE = [1]
    receiver.script = [Reply(503), Reply(502)]
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    due_now(delivery_id)
    assert deliver(delivery_id) is None
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert (row.state, row.attempts, row.last_status) == ("given_up", 2, 502)
    assert "502" in row.last_error


def test_a_receiver_slower_than_the_timeout_is_retried(endpoint, receiver, settings):
    settings.EID_WEBHOOK_TIMEOUT = 0.5
    receiver.script = [Reply(200, delay=2.0)]
    [delivery_id] = a_version_event()
    started = time.monotonic()
    assert deliver(delivery_id) is not None
    assert time.monotonic() - started < 1.5
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert (row.state, row.last_status) == ("pending", None)
    assert "did not answer within 0.5 seconds" in row.last_error


def test_a_closed_port_is_a_connection_error_and_retried(loopback_allowed):
    from demo.ports import free_port

    endpoint = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{free_port()}/x", event_types=["version.created"])
    [delivery_id] = a_version_event()
    assert deliver(delivery_id) is not None
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert row.state == "pending" and row.last_error.startswith("Could not connect")
    assert endpoint.deliveries.count() == 1


def test_the_default_schedule_is_bounded_and_jittered(settings):
    settings.EID_WEBHOOK_RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200]
    settings.EID_WEBHOOK_RETRY_JITTER = 0.2
    delays = [retry_delay(n) for n in range(1, 10)]
    for delay, step in zip(delays, settings.EID_WEBHOOK_RETRY_SCHEDULE):
        assert 0.8 * step <= delay <= 1.2 * step
    assert retry_delay(10) is None  # ten attempts in all, then given up
    assert sum(settings.EID_WEBHOOK_RETRY_SCHEDULE) / 3600 < 24
    assert retry_delay(1, retry_after=10 ** 6) == 43200  # Retry-After is honoured up to the longest step


# --- answers that stop retries -------------------------------------------------------------------------------


def test_410_disables_the_endpoint_with_a_reason(endpoint, receiver):
    receiver.script = [Reply(410)]
    first, second = a_version_event()[0], a_version_event()[0]
    assert deliver(first) is None
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason and endpoint.disabled_at
    assert WebhookDelivery.objects.get(pk=first).state == "failed"
    # What was already queued fails without a request; new events make no delivery at all.
    deliver(second)
    row = WebhookDelivery.objects.get(pk=second)
    assert row.state == "failed" and "disabled" in row.last_error and row.attempts == 0
    assert a_version_event() == []
    assert len(receiver.received) == 1
    with pytest.raises(ReplayRefused):
        replay(row)


@pytest.mark.parametrize("status", [400, 401, 404, 301])
def test_other_4xx_and_redirects_fail_without_retry(endpoint, receiver, status):
    receiver.script = [Reply(status, {"Location": "https://elsewhere.example/"} if status == 301 else {})]
    [delivery_id] = a_version_event()
    assert deliver(delivery_id) is None
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert (row.state, row.last_status, row.next_attempt_at) == ("failed", status, None)
    assert "Not retried" in row.last_error
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert len(receiver.wait_for(1)) == 1


# --- replay ------------------------------------------------------------------------------------------------


def test_a_replay_keeps_its_webhook_id_and_body(endpoint, receiver, django_capture_on_commit_callbacks):
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert row.state == "succeeded"
    with django_capture_on_commit_callbacks() as nudges:
        replay(row)
    assert len(nudges) == 1  # the worker is nudged once the replay commits
    row.refresh_from_db()
    assert (row.state, row.attempts, row.replays) == ("pending", 0, 1)
    deliver(delivery_id)
    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == row.webhook_id
    assert again.body == first.body
    again.verify(endpoint.secret)
    row.refresh_from_db()
    assert (row.state, row.attempts, len(row.history)) == ("succeeded", 1, 2)


# --- the address rules -------------------------------------------------------------------------------------


def test_a_private_address_is_refused_without_the_allow_list(receiver, settings):
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = []
    WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"])
    WebhookEndpoint.objects.create(url="https://127.0.0.1/hooks", event_types=["version.created"])
    ids = a_version_event()
    for delivery_id in ids:
        assert deliver(delivery_id) is None
    plain = WebhookDelivery.objects.get(pk__in=ids, endpoint__url__startswith="http:")
    https = WebhookDelivery.objects.get(pk__in=ids, endpoint__url__startswith="https:")
    assert plain.state == https.state == "failed"
    assert "not allowed: Only https links are accepted" in plain.last_error
    assert "not allowed: That address is private" in https.last_error
    time.sleep(0.2)
    assert receiver.received == []  # refused before connecting


@pytest.mark.parametrize("url", ["https://10.0.0.1/hooks", "https://169.254.169.254/latest", "http://[::1]:8080/",
                                 "https://192.168.0.10/"])
def test_other_private_ranges_stay_refused_with_loopback_allowed(url, loopback_allowed):
    WebhookEndpoint.objects.create(url=url, event_types=["version.created"])
    [delivery_id] = a_version_event()
    deliver(delivery_id)
    row = WebhookDelivery.objects.get(pk=delivery_id)
    assert row.state == "failed" and "not allowed" in row.last_error


# --- who hears what ------------------------------------------------------------------------------------------


def test_only_endpoints_that_want_the_event_and_may_see_the_owner_get_it(receiver, loopback_allowed, alice, bob):
    everyone = WebhookEndpoint.objects.create(url=receiver.url("/all"), event_types=["version.created"])
    alices = WebhookEndpoint.objects.create(url=receiver.url("/alice"), event_types=["version.created"], owner=alice)
    WebhookEndpoint.objects.create(url=receiver.url("/bob"), event_types=["version.created"], owner=bob)
    WebhookEndpoint.objects.create(url=receiver.url("/fails"), event_types=["returned_export.failed"])
    WebhookEndpoint.objects.create(url=receiver.url("/off"), event_types=["version.created"], enabled=False)
    ids = a_version_event(owner=alice)
    rows = WebhookDelivery.objects.filter(pk__in=ids)
    assert {r.endpoint_id for r in rows} == {everyone.pk, alices.pk}
    assert len({r.webhook_id for r in rows}) == 1  # one message, delivered to each endpoint


def test_the_sweep_nudges_deliveries_whose_nudge_was_lost(endpoint):
    [lost] = a_version_event()
    [recent] = a_version_event()
    long_ago = timezone.now() - timedelta(seconds=eid_settings.EID_WEBHOOK_STALE_SECONDS + 60)
    WebhookDelivery.objects.filter(pk=lost).update(next_attempt_at=long_ago)
    assert requeue_lost() == 1
    assert WebhookDelivery.objects.get(pk=lost).next_attempt_at > long_ago
    assert requeue_lost() == 0  # nudged once, not at every sweep
    assert WebhookDelivery.objects.get(pk=recent).state == "pending"


def test_a_nudge_long_before_its_time_is_dropped_and_the_sweep_command_nudges_lost_ones(endpoint):
    from io import StringIO

    from django.core.management import call_command

    [delivery_id] = a_version_event()
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert deliver(delivery_id) is None  # stale: whoever moved the row an hour on nudged it for then
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("eid_sweep", stdout=out)
    assert "re-enqueued 1 webhook delivery(ies)" in out.getvalue()


def test_system_checks_name_bad_webhook_settings(settings):
    from eid.webhooks.checks import webhook_settings

    settings.EID_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-range", "0.0.0.0/0"]
    settings.EID_WEBHOOK_RETRY_SCHEDULE = []
    ids = {problem.id for problem in webhook_settings(None)}
    assert ids == {"eid_webhooks.E001", "eid_webhooks.W001", "eid_webhooks.E002"}
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.EID_WEBHOOK_RETRY_SCHEDULE = [5, 30]
    assert webhook_settings(None) == []
