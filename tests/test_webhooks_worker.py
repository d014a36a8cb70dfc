"""The whole path with every part real: an edit imported through the site, a db_worker process that
copies it, publishes the version and delivers version.created to the independent receiver, retrying
a failing receiver on the (shortened) schedule."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings

from demo.media import wav_bytes
from eid.models import ReturnedExport
from eid.webhooks.models import WebhookDelivery, WebhookEndpoint

from support import ARTIFACTS, ROOT, stop_process, subprocess_env, wait_until
from support import redis_url, task_queue  # noqa: F401  (fixtures: each test runs on both queues)
from test_webhooks import Reply, receiver  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_SETTINGS = {
    "EID_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the operator's allow-list, for the local receiver
    "EID_WEBHOOK_RETRY_SCHEDULE": "1,2,4",
    "EID_WEBHOOK_RETRY_JITTER": "0",
    "EID_WEBHOOK_TIMEOUT": "3",
}


@pytest.fixture
def webhook_worker(task_queue):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    if task_queue == "redis":
        command = ["rqworker", "--with-scheduler", "default"]
    else:
        command = ["db_worker", "--interval", "0.1", "--no-startup-delay"]
    with open(ARTIFACTS / f"webhooks-worker-{task_queue}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT,
                                env=subprocess_env(**WORKER_SETTINGS), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    yield proc
    stop_process(proc)


def test_version_created_reaches_the_receiver_from_a_real_worker_with_retries_on_the_schedule(
    client, alice, make_recording, sandbox, receiver, settings, webhook_worker  # noqa: F811
):
    settings.EID_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    recording = make_recording(alice, "Interview", mix=("alice/interview.wav", wav_bytes(0.3), "audio/wav"))
    endpoint = WebhookEndpoint.objects.create(url=receiver.url(), event_types=["version.created"], owner=alice)
    receiver.script = [Reply(500), Reply(429, {"Retry-After": "3"})]  # then 200
    share = sandbox.create_share(partner=settings.DESCRIPT_PARTNER_DRIVE_ID, source=str(recording.source_id),
                                 media_bytes=20_000, duration_seconds=3.5)
    client.force_login(alice)
    client.post("/descript/import/new", {"url": share["share_url"], "title": "Tight cut"})

    export = wait_until(lambda: ReturnedExport.objects.filter(state__in=["done", "failed"]).first(), timeout=60,
                        message="the import")
    assert export.state == "done", export.reason
    first, second, third = receiver.wait_for(3, timeout=60)
    assert [r.answered for r in (first, second, third)] == [500, 429, 200]
    # Step 1 of the schedule is 1 s; then the receiver's Retry-After (3 s) outweighs step 2 (2 s).
    assert second.at - first.at >= 1.0
    assert third.at - second.at >= 3.0
    for got in (first, second, third):
        assert got.headers["webhook-id"] == first.headers["webhook-id"]
    payload = third.verify(endpoint.secret)
    data = payload["data"]
    assert payload["type"] == "version.created"
    assert (data["item"]["ref"], data["version"], data["owner"], data["duration_seconds"]) == (
        str(recording.pk), 1, "alice", 3.5)
    audio = next(f for f in data["files"] if f["kind"] == "audio")
    assert audio["size"] == 20_000 and audio["content_type"] == "audio/mp4"
    assert audio["key"] == f"returns/{export.pk}/audio.m4a"
    delivery = wait_until(lambda: WebhookDelivery.objects.filter(state="succeeded").first(), timeout=10,
                          message="the delivery row")
    assert (delivery.attempts, delivery.last_status) == (3, 200)
    assert settings.AWS_STORAGE_BUCKET_NAME  # (the copy went to the test bucket)
