"""The webhook API with real service tokens: register, list, delete, rotate, the delivery log and
replay; scoped tokens see only their owner's; schemathesis against the served OpenAPI document."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from eid.api.models import ApiToken
from eid.webhooks import events
from eid.webhooks.delivery import deliver
from eid.webhooks.models import WebhookDelivery, WebhookEndpoint

from test_webhooks import Receiver, loopback_allowed, receiver  # noqa: F401  (fixtures)
from api_fuzz import api_schema, fuzz
from support import bearer

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhooks"


def register(client, key, url, **body):
    return client.post(f"{BASE}/endpoints", {"url": url, **body}, content_type="application/json", **bearer(key))


def test_register_shows_the_secret_once(client, key, receiver, loopback_allowed):  # noqa: F811
    answer = register(client, key, receiver.url(), event_types=["version.created", "handoff.failed"],
                      description="Publishing")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and "no-store" in answer["Cache-Control"]
    assert body["event_types"] == ["version.created", "handoff.failed"] and body["owner"] is None
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.secret == secret and endpoint.created_by.startswith("token:eid_")
    for path in (f"{BASE}/endpoints", f"{BASE}/endpoints/{body['id']}", f"{BASE}/endpoints/{body['id']}/deliveries"):
        later = client.get(path, **bearer(key))
        assert later.status_code == 200 and secret not in later.content.decode() and "secret\"" not in later.content.decode()


def test_default_event_types(client, key, receiver, loopback_allowed):  # noqa: F811
    body = register(client, key, receiver.url()).json()
    assert body["event_types"] == ["version.created", "returned_export.failed"]


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:9/hooks", "https"),
    ("https://10.0.0.7/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data", "private"),
    ("ftp://example.com/x", "https"),
    ("not a url", ""),
])
def test_a_private_or_odd_address_is_refused_at_registration(client, key, url, words):
    answer = register(client, key, url)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid" and words in body["errors"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_unknown_event_types_are_refused(client, key, receiver, loopback_allowed):  # noqa: F811
    answer = register(client, key, receiver.url(), event_types=["version.deleted"])
    assert answer.status_code == 400 and "event_types" in answer.json()["errors"]


def test_read_only_tokens_may_not_register(client, receiver, loopback_allowed):  # noqa: F811
    _token, read_only = ApiToken.issue("reader", read_only=True)
    answer = register(client, read_only, receiver.url())
    assert answer.status_code == 403 and answer.json()["code"] == "read_only_token"
    assert client.get(f"{BASE}/endpoints", **bearer(read_only)).status_code == 200


def test_no_token_no_api(client):
    assert client.get(f"{BASE}/endpoints").status_code == 401


def test_a_scoped_token_registers_for_its_owner_and_sees_only_that(client, key, alice_key, alice, bob, receiver,
                                                                   loopback_allowed):  # noqa: F811
    mine = register(client, alice_key, receiver.url("/alice")).json()
    assert mine["owner"] == "alice"
    named = register(client, alice_key, receiver.url("/bob"), owner="bob")
    assert named.status_code == 403 and named.json()["code"] == "owner_not_allowed"
    everyone = register(client, key, receiver.url("/all")).json()
    bobs = register(client, key, receiver.url("/bob"), owner="bob").json()
    assert bobs["owner"] == "bob"

    listed = client.get(f"{BASE}/endpoints", **bearer(alice_key)).json()["results"]
    assert [e["id"] for e in listed] == [mine["id"]]
    assert {e["id"] for e in client.get(f"{BASE}/endpoints", **bearer(key)).json()["results"]} == {
        mine["id"], everyone["id"], bobs["id"]}
    for other in (everyone["id"], bobs["id"]):
        for answer in (client.get(f"{BASE}/endpoints/{other}", **bearer(alice_key)),
                       client.get(f"{BASE}/endpoints/{other}/deliveries", **bearer(alice_key)),
                       client.delete(f"{BASE}/endpoints/{other}", **bearer(alice_key)),
                       client.post(f"{BASE}/endpoints/{other}/rotate-secret", **bearer(alice_key))):
            assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert WebhookEndpoint.objects.count() == 3

    # Events: alice's endpoint hears about alice's items only; bob's replay is not alice's to make.
    events.emit("version.created", {"item": {"ref": "1"}}, owner=bob)
    bob_delivery = WebhookDelivery.objects.get(endpoint_id=bobs["id"])
    assert not WebhookDelivery.objects.filter(endpoint_id=mine["id"]).exists()
    answer = client.post(f"{BASE}/deliveries/{bob_delivery.pk}/replay", **bearer(alice_key))
    assert answer.status_code == 404


def test_delivery_log_and_replay_keep_the_webhook_id(client, key, receiver, loopback_allowed):  # noqa: F811
    registered = register(client, key, receiver.url()).json()
    receiver.script = [__import__("test_webhooks").Reply(500)]
    [delivery_id] = events.emit("version.created", {"item": {"ref": "9"}, "version": 3}, owner=None)
    deliver(delivery_id)
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=WebhookDelivery.objects.get(
        pk=delivery_id).last_attempt_at)
    deliver(delivery_id)

    log = client.get(f"{BASE}/endpoints/{registered['id']}/deliveries", **bearer(key)).json()["results"]
    [row] = log
    assert (row["state"], row["attempts"], row["last_status"]) == ("succeeded", 2, 200)
    assert [a["status"] for a in row["history"]] == [500, 200]
    assert row["history"][0]["next_attempt_at"] and row["payload"]["data"]["version"] == 3
    assert client.get(f"{BASE}/endpoints/{registered['id']}/deliveries?state=failed",
                      **bearer(key)).json()["results"] == []

    replayed = client.post(f"{BASE}/deliveries/{delivery_id}/replay", **bearer(key))
    assert replayed.status_code == 202 and replayed.json()["state"] == "pending"
    deliver(delivery_id)
    got = receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in got} == {row["webhook_id"]}
    Webhook(registered["secret"]).verify(got[-1].body, got[-1].headers)


def test_replay_of_a_disabled_endpoint_is_refused(client, key, receiver, loopback_allowed):  # noqa: F811
    registered = register(client, key, receiver.url()).json()
    [delivery_id] = events.emit("version.created", {"item": {"ref": "9"}}, owner=None)
    WebhookEndpoint.objects.get(pk=registered["id"]).disable("test")
    answer = client.post(f"{BASE}/deliveries/{delivery_id}/replay", **bearer(key))
    assert answer.status_code == 409 and answer.json()["code"] == "replay_refused"


def test_rotate_secret_over_the_api_both_signatures_verify(client, key, receiver, loopback_allowed):  # noqa: F811
    registered = register(client, key, receiver.url()).json()
    rotated = client.post(f"{BASE}/endpoints/{registered['id']}/rotate-secret", **bearer(key))
    assert rotated.status_code == 200 and "no-store" in rotated["Cache-Control"]
    new = rotated.json()["secret"]
    assert new != registered["secret"] and rotated.json()["rotating"] is True
    [delivery_id] = events.emit("version.created", {"item": {"ref": "9"}}, owner=None)
    deliver(delivery_id)
    [got] = receiver.wait_for(1)
    Webhook(registered["secret"]).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)


def test_delete_stops_deliveries(client, key, receiver, loopback_allowed):  # noqa: F811
    registered = register(client, key, receiver.url()).json()
    events.emit("version.created", {"item": {"ref": "9"}}, owner=None)
    assert client.delete(f"{BASE}/endpoints/{registered['id']}", **bearer(key)).status_code == 204
    assert client.get(f"{BASE}/endpoints/{registered['id']}", **bearer(key)).status_code == 404
    assert not WebhookDelivery.objects.exists()


# --- schemathesis against the document the site serves -----------------------------------------------------


@pytest.fixture
def webhooks_api_schema(db, settings):
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = []
    with api_schema() as schema:
        yield schema


OPERATIONS = [("POST", "/endpoints"), ("GET", "/endpoints"), ("GET", "/endpoints/{endpoint_id}"),
              ("DELETE", "/endpoints/{endpoint_id}"), ("POST", "/endpoints/{endpoint_id}/rotate-secret"),
              ("GET", "/endpoints/{endpoint_id}/deliveries"), ("POST", "/deliveries/{delivery_id}/replay")]


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("method, address", OPERATIONS)
def test_webhook_endpoints_match_their_document_and_never_fail(webhooks_api_schema, key, method, address, mode):
    """Generated requests (valid ones, and ones the document says are invalid): never a 500, every
    answer's status, content type, headers and body as documented, and invalid input refused."""
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/a", event_types=["version.created"])
    [delivery_id] = events.emit("version.created", {"item": {"ref": "1"}}, owner=None)
    known = {"endpoint_id": str(endpoint.pk), "delivery_id": delivery_id}
    operation = webhooks_api_schema[BASE + address][method]

    def prepare(case, seen):
        negative = {location for location, info in case.meta.components.items() if info.mode.is_negative}
        if mode == "negative" and negative <= {"header"}:
            return False  # only the Authorization header was left out, and the test sends it anyway
        if mode == "positive" and case.path_parameters and len(seen) % 2:
            case.path_parameters = {**case.path_parameters,  # every other case names rows that exist
                                    **{k: v for k, v in known.items() if k in case.path_parameters}}
        return True

    seen = fuzz(operation, mode, key, max_examples=15, prepare=prepare)
    assert seen and 500 not in seen


def test_unknown_query_parameters_are_refused(client, key):
    answer = client.get(f"{BASE}/endpoints?stat=failed", **bearer(key))
    assert answer.status_code == 400 and answer.json()["errors"] == {"stat": ["Unknown query parameter."]}
    assert client.get(f"{BASE}/endpoints?page_size=x", **bearer(key)).status_code == 400
    assert client.get(f"{BASE}/endpoints?page_size=5", **bearer(key)).status_code == 200
