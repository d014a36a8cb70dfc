"""The click's HEAD checks, signed with botocore's SigV4 signer and sent with urllib3 (eid.storage.head).

Against moto's S3 server over real HTTP; the request boto3 itself would send is the reference.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import threading

import pytest
from django.test import override_settings

from demo.media import wav_bytes
from eid import storage
from eid.models import Handoff

pytestmark = pytest.mark.django_db


def _boto3_head_request(key: str) -> tuple[str, dict[str, str]]:
    """What boto3's head_object would send (URL and headers), captured before it is sent."""
    client = storage.s3_client()
    seen: dict = {}

    class Captured(Exception):
        pass

    def capture(request, **kwargs):
        seen["url"], seen["headers"] = request.url, dict(request.headers)
        raise Captured  # not sent

    client.meta.events.register_first("before-send.s3.HeadObject", capture)
    try:
        with pytest.raises(Captured):
            client.head_object(Bucket=storage.bucket(), Key=key)
    finally:
        client.meta.events.unregister("before-send.s3.HeadObject", capture)
    return seen["url"], seen["headers"]


def _auth_parts(headers: dict) -> dict[str, str]:
    value = headers["Authorization"]
    value = value.decode() if isinstance(value, bytes) else value
    return dict(re.findall(r"(Credential|SignedHeaders|Signature)=([^,\s]+)", value))


@pytest.mark.parametrize("key", ["alice/plain.wav", "alice/a folder/ünïcode + plus&(1).wav", "alice/~tilde=.wav"])
def test_a_head_reads_what_boto3_stored_under_any_key_signed_as_boto3_signs_it(s3, key):
    data = wav_bytes(0.2)
    s3.put_object(Bucket=storage.bucket(), Key=key, Body=data, ContentType="audio/wav")
    info = storage.head(key)
    assert (info.key, info.size, info.content_type) == (key, len(data), "audio/wav")

    url, headers = storage._signed_head(key)
    boto_url, boto_headers = _boto3_head_request(key)
    assert url == boto_url  # same endpoint, path style, same encoding of the key
    ours, theirs = _auth_parts(headers), _auth_parts(boto_headers)
    # Same credential scope (key id, date, region, service) and the same headers signed.
    assert ours["Credential"].split("/")[0] == theirs["Credential"].split("/")[0]
    assert ours["Credential"].split("/")[2:] == theirs["Credential"].split("/")[2:]
    assert set(ours["SignedHeaders"].split(";")) == set(theirs["SignedHeaders"].split(";"))
    sha = boto_headers["X-Amz-Content-SHA256"]
    assert headers["X-Amz-Content-SHA256"] == (sha.decode() if isinstance(sha, bytes) else sha)


def test_a_missing_object_is_named(s3):
    with pytest.raises(storage.StorageError) as caught:
        storage.head("alice/never-uploaded.wav")
    assert caught.value.kind == "missing" and "never-uploaded.wav" in caught.value.reason


def test_storage_down_is_a_plain_503_with_its_row_and_no_signature_in_the_logs(
    alice_client, make_recording, alice, sandbox, caplog
):
    recording = make_recording(alice, "Solo", mix=("alice/solo.wav", wav_bytes(0.2), "audio/wav"))
    caplog.set_level(logging.DEBUG)
    from demo.ports import free_port

    with override_settings(AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"):  # nothing listens there
        response = alice_client.post(f"/descript/edit/{recording.pk}/mix/")
    assert response.status_code == 503
    assert "Storage is not reachable right now" in response.content.decode()
    handoff = Handoff.objects.get()
    assert handoff.outcome == "storage_error" and "not reachable" in handoff.detail
    assert "dropped" in handoff.detail  # Descript had made a link meanwhile; nobody was sent to it
    assert "Location" not in response
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Signature" not in logged and "AWS4-HMAC" not in logged and "X-Amz" not in logged


# --- checks sent before the click's POST and read after it (eid.storage.send_checks) ----------


def test_sent_checks_answer_as_head_does(s3):
    s3.put_object(Bucket=storage.bucket(), Key="alice/sent.wav", Body=b"RIFF" * 10, ContentType="audio/wav")
    for _ in range(3):  # moto closes each connection: the kept one reconnects
        infos = storage.finish_checks(storage.send_checks(["alice/sent.wav"]))
        assert [(i.key, i.size, i.content_type) for i in infos] == [("alice/sent.wav", 40, "audio/wav")]
    with pytest.raises(storage.StorageError) as caught:
        storage.finish_checks(storage.send_checks(["alice/sent.wav", "alice/nope.wav"]))
    assert caught.value.kind == "missing" and "nope.wav" in caught.value.reason


def _kept_connection_the_server_drops() -> http.client.HTTPConnection:
    """A connected keep-alive connection whose server reads the request and hangs up without answering."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        peer, _ = listener.accept()
        peer.recv(65536)
        peer.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
    conn.connect()
    return conn


def test_a_kept_connection_the_server_had_dropped_is_a_head_sent_again(s3):
    s3.put_object(Bucket=storage.bucket(), Key="alice/again.wav", Body=b"RIFF" * 5, ContentType="audio/wav")
    url, _ = storage._signed_head("alice/again.wav")
    origin = storage._origin(url)
    storage._give_back(origin, _kept_connection_the_server_drops())  # the next check takes it
    check = storage.send_checks(["alice/again.wav"])[0]
    assert check.result().size == 20  # the dropped answer was asked again, of the real storage

    closed = http.client.HTTPConnection(origin[1], origin[2], timeout=5)
    closed.connect()
    closed.sock.close()  # sending on it fails at once
    storage._give_back(origin, closed)
    assert storage.send_checks(["alice/again.wav"])[0].result().size == 20


@pytest.mark.parametrize("key", ["alice/plain.wav", "alice/a folder/ünïcode + plus&(1).wav"])
def test_a_click_s_presigned_url_is_the_one_boto3_makes(s3, key):
    from urllib.parse import parse_qs, urlsplit

    for _ in range(5):  # both signed within the same second (X-Amz-Date is part of the signature)
        ours = storage.presign_get(key, 48 * 3600)
        theirs = s3.generate_presigned_url("get_object", Params={"Bucket": storage.bucket(), "Key": key},
                                           ExpiresIn=48 * 3600)
        mine, boto = urlsplit(ours), urlsplit(theirs)
        if parse_qs(mine.query)["X-Amz-Date"] == parse_qs(boto.query)["X-Amz-Date"]:
            break
    assert (mine.scheme, mine.netloc, mine.path) == (boto.scheme, boto.netloc, boto.path)
    theirs_params = {k: v for k, v in parse_qs(boto.query).items() if k != "x-id"}  # botocore's routing hint
    assert parse_qs(mine.query) == theirs_params  # the same signature over the same request
