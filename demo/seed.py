"""Seed a demo user and three recordings whose media is generated and uploaded to the bucket."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from eid import storage
from partner_site.library.models import MediaFile, Recording

from .media import mp4_standin, wav_bytes

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-pass-1234"
OPERATOR_USER = "operator"
OPERATOR_PASSWORD = "operator-pass-1234"


# Prompts an operator would keep ready (eid.jobs' PromptPreset); the recording page offers them.
DEMO_PRESETS = [
    ("Clean up", "Remove filler words and long pauses, and apply Studio Sound."),
    ("Show notes", "Remove filler words, then write a short summary of the conversation."),
]


def ensure_presets() -> None:
    from eid.jobs.models import PromptPreset

    for position, (name, prompt) in enumerate(DEMO_PRESETS):
        PromptPreset.objects.get_or_create(name=name, defaults={"prompt": prompt, "position": position})


def ensure_operator() -> None:
    User = get_user_model()
    if not User.objects.filter(username=OPERATOR_USER).exists():
        User.objects.create_superuser(OPERATOR_USER, password=OPERATOR_PASSWORD)


def ensure_bucket() -> None:
    client = storage.s3_client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if storage.bucket() not in existing:
        client.create_bucket(Bucket=storage.bucket())


def seed(username: str = DEMO_USER, password: str = DEMO_PASSWORD, prefix: str = "demo") -> list[Recording]:
    ensure_bucket()
    objects = {
        f"{prefix}/interview/mix.wav": (wav_bytes(3.0, 330.0), "audio/wav"),
        f"{prefix}/launch/video.mp4": (mp4_standin(), "video/mp4"),
        f"{prefix}/roundtable/host.wav": (wav_bytes(3.0, 220.0), "audio/wav"),
        f"{prefix}/roundtable/guest-1.wav": (wav_bytes(2.5, 440.0), "audio/wav"),
        f"{prefix}/roundtable/guest-2.wav": (wav_bytes(2.0, 660.0), "audio/wav"),
    }
    for key, (data, ctype) in objects.items():
        storage.put_bytes(key, data, ctype)

    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if created or not user.has_usable_password():
            user.set_password(password)
            user.save()
        if user.recordings.exists():
            return list(user.recordings.all())
        interview = Recording.objects.create(owner=user, title="Interview with a guest (single WAV)")
        MediaFile.objects.create(recording=interview, role="mix", key=f"{prefix}/interview/mix.wav")
        launch = Recording.objects.create(owner=user, title="Product launch (video)")
        MediaFile.objects.create(recording=launch, role="mix", key=f"{prefix}/launch/video.mp4")
        table = Recording.objects.create(owner=user, title="Roundtable (three tracks)")
        for position, (name, offset) in enumerate([("host", 0.0), ("guest-1", 0.5), ("guest-2", 1.25)]):
            MediaFile.objects.create(recording=table, role="track", key=f"{prefix}/roundtable/{name}.wav",
                                     name=name.replace("-", " ").title(), start_offset=offset, position=position)
    return [interview, launch, table]
