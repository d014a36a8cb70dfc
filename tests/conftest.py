"""Real peers for the suite: moto's S3 server and the Descript sandbox, over real HTTP.

Both run in this process on the ports settings_test picked; tests reset the sandbox's state
and faults before each test. Nothing here patches the project's own functions.
"""

from __future__ import annotations

import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=settings.TEST_S3_PORT, verbose=False)
    server.start()
    from eid import storage

    storage.s3_client().create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox_server():
    from sandbox.app import SandboxConfig
    from sandbox.server import SandboxServer

    config = SandboxConfig(
        api_token=settings.DESCRIPT_API_TOKEN,
        drive_id=settings.DESCRIPT_PARTNER_DRIVE_ID,
        partner_import_url="http://testserver/descript/import/new",
        render_seconds=0.0,
    )
    server = SandboxServer(config, port=settings.TEST_SANDBOX_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, s3_server):
    """The sandbox app, fresh for each test (no faults, no imports, no shares)."""
    import time

    app = sandbox_server.app
    app.reset()
    app.clock = time.time
    sandbox_server.config.render_seconds = 0.0
    yield app
    app.reset()
    app.clock = time.time


@pytest.fixture
def s3(s3_server):
    from eid import storage

    return storage.s3_client()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-1234")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-1234")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def make_recording(s3):
    """Upload objects and register a recording: files are (key, bytes, content_type[, name, offset])."""
    from partner_site.library.models import MediaFile, Recording

    def make(owner, title="A recording", mix=None, tracks=()):
        recording = Recording.objects.create(owner=owner, title=title)
        if mix:
            key, data, ctype = mix
            if data is not None:
                s3.put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data, ContentType=ctype)
            MediaFile.objects.create(recording=recording, role="mix", key=key)
        for position, (key, data, ctype, name, offset) in enumerate(tracks):
            if data is not None:
                s3.put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data, ContentType=ctype)
            MediaFile.objects.create(recording=recording, role="track", key=key, name=name,
                                     start_offset=offset, position=position)
        return recording

    return make


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Per-user throttles count in the cache; user ids repeat from test to test."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()
    yield


@pytest.fixture
def key(db):
    """A service token's key that acts for every user (eid.api)."""
    from eid.api.models import ApiToken

    return ApiToken.issue("pipeline")[1]


@pytest.fixture
def alice_key(alice):
    """A service token's key scoped to alice's data."""
    from eid.api.models import ApiToken

    return ApiToken.issue("alice's pipeline", owner=alice)[1]
