"""Operators' commands: register_recording (files already in the bucket) and eid_sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from demo.media import wav_bytes
from support import ROOT
from partner_site.library.management.commands.register_recording import parse_track
from eid.models import ReturnedExport
from partner_site.library.models import MediaFile, Recording

pytestmark = pytest.mark.django_db


def put(s3, key: str, data: bytes = b"RIFF....WAVE", ctype: str = "audio/wav") -> str:
    s3.put_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key, Body=data, ContentType=ctype)
    return key


def register(*args: str) -> list[str]:
    out = StringIO()
    call_command("register_recording", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_it_registers_a_mix_and_tracks_and_prints_the_id_last(s3, alice):
    put(s3, "ep12/mix.wav", wav_bytes(0.2))
    put(s3, "ep12/host.wav")
    put(s3, "ep12/guest@home.wav")

    lines = register("--owner", "alice", "--title", "Episode 12", "--mix", "ep12/mix.wav",
                     "--track", "ep12/host.wav=Host@0", "--track", "ep12/guest@home.wav=Guest@1.5")

    recording = Recording.objects.get(pk=int(lines[-1]))
    assert (recording.owner, recording.title) == (alice, "Episode 12")
    files = [(f.role, f.key, f.name, f.start_offset) for f in recording.files.order_by("role", "position")]
    assert files == [
        ("mix", "ep12/mix.wav", "", 0.0),
        ("track", "ep12/host.wav", "Host", 0.0),
        ("track", "ep12/guest@home.wav", "Guest", 1.5),
    ]


def test_it_refuses_an_object_that_is_not_in_the_bucket_and_writes_nothing(s3, alice):
    put(s3, "ep13/host.wav")
    with pytest.raises(CommandError, match="“missing.wav” is not in storage"):
        register("--owner", "alice", "--title", "Ep 13", "--track", "ep13/host.wav", "--track", "ep13/missing.wav")
    assert Recording.objects.count() == 0 and MediaFile.objects.count() == 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--owner", "nobody", "--title", "T", "--mix", "a.wav"], "No user named 'nobody'"),
        (["--owner", "alice", "--title", "T"], "at least one file"),
        (["--owner", "alice", "--title", "  ", "--mix", "a.wav"], "--title must not be empty"),
        (["--owner", "alice", "--title", "T", "--mix", "a.wav", "--track", "a.wav"], "given twice"),
    ],
)
def test_bad_arguments_get_a_clear_error(s3, alice, args, words):
    with pytest.raises(CommandError, match=words):
        register(*args)
    assert Recording.objects.count() == 0


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("a.wav", ("a.wav", "", 0.0)),
        ("a.wav=Host", ("a.wav", "Host", 0.0)),
        ("a.wav@2.25", ("a.wav", "", 2.25)),
        ("dir/x=y.wav=Guest@3", ("dir/x=y.wav", "Guest", 3.0)),
        ("user@host.wav=Ann@0.5", ("user@host.wav", "Ann", 0.5)),
    ],
)
def test_track_specs_keep_keys_with_at_and_equals_signs(spec, parsed):
    assert parse_track(spec) == parsed


def test_sweep_requeues_only_imports_no_worker_is_moving(alice):
    from django_tasks_db.models import DBTaskResult

    old = timezone.now() - timedelta(seconds=settings.EID_EXPORT_STALE_SECONDS + 60)

    def export(share_id: str, **fields) -> ReturnedExport:
        row = ReturnedExport.objects.create(user=alice, share_id=share_id, share_url=f"https://x/view/{share_id}",
                                            title=share_id, match="no_tags", **fields)
        ReturnedExport.objects.filter(pk=row.pk).update(updated_at=fields.get("heartbeat_at") or old)
        return row

    dead = export("dead", state="copying", lease_token="00000000-0000-0000-0000-000000000001", heartbeat_at=old)
    lost = export("lost", state="waiting", next_check_at=old)
    export("alive", state="copying", lease_token="00000000-0000-0000-0000-000000000002",
           heartbeat_at=timezone.now())
    export("later", state="waiting", next_check_at=timezone.now() + timedelta(minutes=5))
    export("finished", state="done", next_check_at=old)

    out = StringIO()
    call_command("eid_sweep", stdout=out)

    assert "re-enqueued 2 stale import(s)" in out.getvalue()
    queued = sorted(r.args_kwargs["args"][0] for r in DBTaskResult.objects.all())
    assert queued == sorted([str(dead.pk), str(lost.pk)])


def test_seed_demo_refuses_a_site_without_debug(settings, django_user_model):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo", stdout=StringIO())
    assert not django_user_model.objects.filter(username__in=["demo", "operator"]).exists()


def test_seed_demo_creates_the_demo_library_with_real_media(settings, s3, django_user_model):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # twice: nothing doubles
    demo = django_user_model.objects.get(username="demo")
    assert demo.check_password("demo-pass-1234")
    assert django_user_model.objects.get(username="operator").is_superuser
    recordings = {r.title: r for r in demo.recordings.all()}
    assert len(recordings) == 3
    table = recordings["Roundtable (three tracks)"]
    assert [(t.name, t.start_offset) for t in table.tracks] == [("Host", 0.0), ("Guest 1", 0.5), ("Guest 2", 1.25)]
    for f in MediaFile.objects.filter(recording__owner=demo):
        head = s3.head_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=f.key)
        assert head["ContentLength"] > 1000


def test_the_sites_own_settings_have_no_seed_demo_and_import_nothing_from_demo_or_the_sandbox():
    """What the production image runs: partner_site.settings. Every command loads; none is the demo's."""
    probe = (
        "import sys, django; django.setup()\n"
        "from django.core.management import get_commands, load_command_class\n"
        "for name, app in get_commands().items(): load_command_class(app, name)\n"
        "print(sorted(get_commands()))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'demo', 'sandbox', 'moto', 'pytest'}))\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="partner_site.settings", SECRET_KEY="x" * 50)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    commands, imported = done.stdout.strip().splitlines()
    assert "register_recording" in commands and "eid_sweep" in commands and "db_worker" in commands
    assert "seed_demo" not in commands
    assert imported == "[]"
