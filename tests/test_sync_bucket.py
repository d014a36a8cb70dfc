"""`manage.py sync_bucket`: the recordings already in the bucket, registered one per folder,
against moto's S3 server; a second run changes nothing."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from demo.media import wav_bytes
from partner_site.library.models import MediaFile, Recording

pytestmark = pytest.mark.django_db

BUCKET = settings.AWS_STORAGE_BUCKET_NAME


def put(s3, key, data=b"x" * 64, ctype="audio/wav"):
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=ctype)


def sync(*args):
    out = io.StringIO()
    call_command("sync_bucket", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def shows(s3):
    prefix = "sync-test/shows/"
    put(s3, f"{prefix}ep1/episode.mp3")  # one file: the mix
    put(s3, f"{prefix}ep2/host.wav", wav_bytes(0.1))  # several: the tracks
    put(s3, f"{prefix}ep2/guest.wav", wav_bytes(0.1))
    put(s3, f"{prefix}ep2/notes.txt", b"show notes", "text/plain")  # not media
    put(s3, f"{prefix}ep3/mix.flac")  # mix.* beside others: the mix
    put(s3, f"{prefix}ep3/a.flac")
    put(s3, f"{prefix}ep3/b.flac")
    put(s3, f"{prefix}ep4/empty.wav", b"")  # empty: skipped, and so the folder has nothing
    put(s3, f"{prefix}Season 2/Ep 1.mov", ctype="video/quicktime")  # spaces: a cleaned id with a hash
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}ep5/", Body=b"")  # a folder marker
    return prefix


def test_one_recording_per_folder_and_a_second_run_changes_nothing(alice, shows):
    out = sync("--prefix", shows, "--owner", "alice")
    assert "4 created, 0 updated, 0 unchanged" in out, out
    assert f"skipped: {shows}ep2/notes.txt  (not a media file" in out
    assert f"skipped: {shows}ep4/empty.wav  (empty object)" in out

    ep1 = Recording.objects.get(external_id="s3:sync-test:shows:ep1")
    assert (ep1.owner, ep1.title) == (alice, "ep1")
    assert [(f.role, f.key, f.size) for f in ep1.files.all()] == [("mix", f"{shows}ep1/episode.mp3", 64)]
    ep2 = Recording.objects.get(external_id="s3:sync-test:shows:ep2")
    assert [(f.role, f.key, f.start_offset) for f in ep2.files.all()] == [
        ("track", f"{shows}ep2/guest.wav", 0.0), ("track", f"{shows}ep2/host.wav", 0.0)]
    ep3 = Recording.objects.get(external_id="s3:sync-test:shows:ep3")
    assert [(f.role, f.key) for f in ep3.files.all()] == [
        ("mix", f"{shows}ep3/mix.flac"), ("track", f"{shows}ep3/a.flac"), ("track", f"{shows}ep3/b.flac")]
    season = Recording.objects.get(title="Season 2")
    assert season.external_id.startswith("s3:sync-test:shows:Season-2~") and len(season.external_id) <= 200
    assert not Recording.objects.filter(external_id__contains="ep4").exists()

    state = sorted(Recording.objects.values_list("external_id", "source_id", "updated_at"))
    files = sorted(MediaFile.objects.values_list("pk", "key", "size"))
    again = sync("--prefix", shows, "--owner", "alice")
    assert "0 created, 0 updated, 4 unchanged" in again, again
    assert "skipped: s3:sync-test:shows:ep1  (already registered, unchanged)" in again
    assert sorted(Recording.objects.values_list("external_id", "source_id", "updated_at")) == state
    assert sorted(MediaFile.objects.values_list("pk", "key", "size")) == files


def test_a_changed_folder_is_updated_in_place(alice, shows, s3):
    sync("--prefix", shows, "--owner", "alice")
    source_id = Recording.objects.get(external_id="s3:sync-test:shows:ep1").source_id
    put(s3, f"{shows}ep1/episode.mp3", b"y" * 128)  # re-uploaded: another size
    out = sync("--prefix", shows, "--owner", "alice")
    assert "updated: s3:sync-test:shows:ep1" in out and "1 updated" in out
    ep1 = Recording.objects.get(external_id="s3:sync-test:shows:ep1")
    assert ep1.source_id == source_id and ep1.files.get().size == 128


def test_dry_run_writes_nothing_and_says_what_it_would_do(alice, shows):
    out = sync("--prefix", shows, "--owner", "alice", "--dry-run")
    assert "would be created: s3:sync-test:shows:ep2" in out
    assert "(dry run: nothing was written)" in out
    assert Recording.objects.count() == 0 and MediaFile.objects.count() == 0


def test_folders_of_another_owner_are_left_alone(alice, bob, shows):
    sync("--prefix", f"{shows}ep1/", "--owner", "bob")
    out = sync("--prefix", shows, "--owner", "alice")
    assert "skipped: s3:sync-test:shows:ep1  (registered to another owner: left alone)" in out
    assert Recording.objects.get(external_id="s3:sync-test:shows:ep1").owner == bob


def test_too_many_tracks_and_bad_arguments(alice, s3):
    for i in range(33):
        put(s3, f"sync-test/big/t{i:02}.wav")
    out = sync("--prefix", "sync-test/big/", "--owner", "alice")
    assert "skipped: sync-test/big/  (33 tracks: a recording has at most 32)" in out
    with pytest.raises(CommandError, match="No user named"):
        sync("--prefix", "x/", "--owner", "nobody")
    with pytest.raises(CommandError, match="no leading"):
        sync("--prefix", "/x/", "--owner", "alice")
