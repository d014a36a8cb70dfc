"""Register the recordings already in the bucket under a prefix: one recording per folder.

    manage.py sync_bucket --prefix shows/ --owner alice [--dry-run]

Every folder under the prefix that directly holds media Descript imports is one recording,
titled after the folder. One media file is its mixed file; several are its tracks (in key
order, each starting at 0 s), except that a file named mix.* beside others is the mixed file.
Its external_id comes from the folder's path: "s3:" and the folder's segments joined by ":"
(shows/ep12 -> s3:shows:ep12); a path with other characters than letters, digits and . _ ~ -
or longer than the id allows is cleaned and given a short hash of the exact path, so two
folders never share an id.

What it leaves out is listed with the reason: objects that are not media Descript imports,
empty objects, keys the API would refuse, folders already registered and unchanged, folders
registered to another owner. Running it again changes nothing: it saves through the same
create-or-update as the API (partner_site.library.api.registry).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from eid import storage
from eid.media import is_supported_name
from partner_site.library.api import registry
from partner_site.library.api.validation import MAX_EXTERNAL_ID, MAX_TITLE, MAX_TRACKS, key_error, parse_recording

_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]")
ROOT_ID = "s3"  # objects at the bucket's root (no folder); every other id has "s3:" before the path


def external_id_for(folder: str) -> str:
    """A stable external id for a folder path (no leading or trailing slash; "" for the root)."""
    if not folder:
        return ROOT_ID
    segments = folder.split("/")
    cleaned = ":".join(_SEGMENT_UNSAFE.sub("-", segment) or "-" for segment in segments)
    candidate = f"{ROOT_ID}:{cleaned}"
    if cleaned != folder.replace("/", ":") or len(candidate) > MAX_EXTERNAL_ID:
        digest = hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        candidate = f"{candidate[:MAX_EXTERNAL_ID - 13]}~{digest}"
    return candidate


@dataclass(frozen=True)
class Skipped:
    what: str  # a key or a folder
    reason: str


def _list(prefix: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for page in storage.s3_client().get_paginator("list_objects_v2").paginate(Bucket=storage.bucket(), Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects


def plan(objects: list[dict[str, Any]], owner: str) -> tuple[list[tuple[str, str, dict[str, Any]]], list[Skipped]]:
    """The recordings' bodies (as PUT takes them) with their external ids and folders, and what was
    left out and why."""
    skipped: list[Skipped] = []
    folders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in sorted(objects, key=lambda o: o["Key"]):
        key = obj["Key"]
        if key.endswith("/"):
            continue  # a folder marker, not a file
        if problem := key_error(key):
            skipped.append(Skipped(key, f"key refused: {problem}"))
        elif not is_supported_name(key):
            skipped.append(Skipped(key, "not a media file Descript imports (audio: .wav .flac .aac .m4a .mp3; "
                                        "video: .mp4 .mov)"))
        elif int(obj.get("Size", 0)) <= 0:
            skipped.append(Skipped(key, "empty object"))
        else:
            folders[posixpath.dirname(key)].append(obj)

    bodies: list[tuple[str, str, dict[str, Any]]] = []
    for folder, files in sorted(folders.items()):
        label = f"{folder}/" if folder else "(bucket root)"
        title = (posixpath.basename(folder) or storage.bucket())[:MAX_TITLE]
        entries = [{"key": o["Key"], "size": int(o["Size"])} for o in files]
        body: dict[str, Any] = {"owner": owner, "title": title}
        if len(entries) == 1:
            body["mix"] = entries[0]
        else:
            mixes = [e for e in entries if posixpath.splitext(posixpath.basename(e["key"]))[0].lower() == "mix"]
            if len(mixes) == 1:
                body["mix"] = mixes[0]
                entries = [e for e in entries if e is not mixes[0]]
            if len(entries) > MAX_TRACKS:
                skipped.append(Skipped(label, f"{len(entries)} tracks: a recording has at most {MAX_TRACKS}"))
                continue
            body["tracks"] = [{**e, "offset": 0} for e in entries]
        bodies.append((external_id_for(folder), label, body))
    return bodies, skipped


class Command(BaseCommand):
    help = "Register the recordings already in the bucket under a prefix (one per folder)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--prefix", required=True, help='Key prefix to look under, e.g. "shows/" ("" for all).')
        parser.add_argument("--owner", required=True, help="Username of the recordings' owner.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; write nothing.")

    def handle(self, *args: Any, prefix: str, owner: str, dry_run: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise CommandError("--prefix is a key prefix in the bucket: no leading “/” and no “..”.")
        try:
            objects = _list(prefix)
        except Exception as exc:  # boto3's errors: the operator needs the words, not a traceback
            raise CommandError(f"Could not list s3://{storage.bucket()}/{prefix}: {exc}") from None

        bodies, skipped = plan(objects, user.get_username())
        items: list[registry.Item] = []
        for index, (external_id, label, body) in enumerate(bodies):
            spec, errors = parse_recording(body, external_id=external_id)
            if spec is None:
                reasons = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
                skipped.append(Skipped(label, f"refused: {reasons}"))
                continue
            items.append(registry.Item(index, spec, user))

        # Only this owner's recordings are touched: a folder registered to someone else is left alone.
        def same_owner(other: Any) -> bool:
            return bool(other.pk == user.pk)

        if dry_run:  # the same work, rolled back: what it says is what a real run would do
            with transaction.atomic():
                outcomes = registry.save(items, same_owner)
                transaction.set_rollback(True)
        else:
            outcomes = registry.save(items, same_owner)

        counts: dict[str, int] = defaultdict(int)
        left_alone: list[Skipped] = []
        verb = "would be " if dry_run else ""
        for item, outcome in zip(items, outcomes):
            files = len(item.spec.files)
            if outcome.result == registry.Result.UNCHANGED:
                left_alone.append(Skipped(item.spec.external_id, "already registered, unchanged"))
            elif outcome.result == registry.Result.ERROR:
                left_alone.append(Skipped(item.spec.external_id,
                                       "registered to another owner: left alone" if outcome.code == "not_found"
                                       else outcome.detail))
            else:
                self.stdout.write(f"{verb}{outcome.result}: {item.spec.external_id}  “{item.spec.title}”, "
                                  f"{files} file{'s' if files != 1 else ''}")
            counts[str(outcome.result)] += 1
        for skip in skipped + left_alone:
            self.stdout.write(f"skipped: {skip.what}  ({skip.reason})")
        summary = (f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged, "
                   f"{counts['error']} refused, {len(skipped)} objects or folders skipped")
        if dry_run:
            summary += " (dry run: nothing was written)"
        self.stdout.write(summary)
