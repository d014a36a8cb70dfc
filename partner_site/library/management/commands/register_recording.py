"""Register a recording whose files are already in the bucket; prints its id on the last line.

    manage.py register_recording --owner alice --title "Episode 12" --mix ep12/mix.wav \
        --track ep12/host.wav=Host@0 --track ep12/guest.wav=Guest@1.5
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from eid import storage
from partner_site.library.models import MediaFile, Recording

# KEY[=NAME][@OFFSET]; the offset is the last "@number" so keys may contain "@" and "=".
_TRACK = re.compile(r"^(?P<key>.+?)(?:=(?P<name>[^=@]*))?(?:@(?P<offset>\d+(?:\.\d+)?))?$")


def parse_track(spec: str) -> tuple[str, str, float]:
    match = _TRACK.match(spec.strip())
    if not match or not match.group("key").strip():
        raise CommandError(f"--track {spec!r}: expected KEY[=NAME][@OFFSET]")
    offset = float(match.group("offset") or 0.0)
    return match.group("key").strip(), (match.group("name") or "").strip(), offset


class Command(BaseCommand):
    help = "Register a recording whose files are already in the bucket; prints its id on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", required=True, help="Username of the owner.")
        parser.add_argument("--title", required=True)
        parser.add_argument("--mix", help="Object key of the mixed file.")
        parser.add_argument("--track", action="append", default=[], metavar="KEY[=NAME][@OFFSET]",
                            help="A separate track; repeat for each. OFFSET in seconds.")
        parser.add_argument("--no-check", action="store_true", help="Do not HEAD the objects first.")

    def handle(self, *args, owner: str, title: str, mix: str | None, track: list[str], no_check: bool,
               **options) -> None:
        if not mix and not track:
            raise CommandError("Give at least one file: --mix KEY or --track KEY.")
        if not title.strip():
            raise CommandError("--title must not be empty.")
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        tracks = [parse_track(spec) for spec in track]
        keys = ([mix] if mix else []) + [t[0] for t in tracks]
        if len(set(keys)) != len(keys):
            raise CommandError("The same object key is given twice.")
        if not no_check:
            # Existence only: a type Descript cannot import is still a recording one can download.
            for key in keys:
                try:
                    storage.head(key)
                except storage.StorageError as exc:
                    raise CommandError(exc.reason) from None
        with transaction.atomic():
            recording = Recording.objects.create(owner=user, title=title.strip())
            if mix:
                MediaFile.objects.create(recording=recording, role=MediaFile.Role.MIX, key=mix)
            for position, (key, name, offset) in enumerate(tracks):
                MediaFile.objects.create(recording=recording, role=MediaFile.Role.TRACK, key=key, name=name,
                                         start_offset=offset, position=position)
        self.stdout.write(f"registered “{recording.title}” with {len(keys)} file(s)")
        self.stdout.write(str(recording.pk))
