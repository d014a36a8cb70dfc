"""The media of `descript import`: arguments -> an import body's `add_media`, and what was left out.

Links are judged and converted by eid.jobs.links (pure). Bucket keys are checked with a HEAD (in
parallel, as the click does) and presigned for 48 hours, the longest Descript recommends. A key
that is not in the bucket, or holds no bytes, is skipped when other files remain (a partial
import, exit 3); a refused link or an unsupported file stops the command before anything is sent.
Presigned URLs go only into the request body, never into output.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from ... import storage
from ...media import is_supported_object
from ..client import JobsError, composition, multitrack, url_media
from ..links import SUPPORTED_WORDS, LinkRefused, MediaSource, SourceKind, media_from_argument
from .exits import CliFailure, ExitCode

PRESIGN_SECONDS = 48 * 3600
SEQUENCE_NAME = "Multitrack"


@dataclass
class MediaPlan:
    """What goes to Descript (`add_media`, `compositions`) and what the person is told."""

    add_media: dict[str, dict[str, Any]] = field(default_factory=dict)
    compositions: list[dict[str, Any]] = field(default_factory=list)
    shown: dict[str, str] = field(default_factory=dict)  # display name -> the argument (no signature)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"media", "reason"}

    @property
    def file_names(self) -> list[str]:
        return list(self.shown)


def parse_offset(spec: str) -> tuple[str, float]:
    """NAME=SECONDS -> (NAME, seconds); ValueError in plain words."""
    name, sep, seconds = spec.rpartition("=")
    if not sep or not name.strip():
        raise ValueError(f"--offset {spec!r} is not NAME=SECONDS.")
    try:
        value = float(seconds)
    except ValueError:
        raise ValueError(f"--offset {spec!r}: {seconds!r} is not a number of seconds.") from None
    if not 0 <= value < 1e7:
        raise ValueError(f"--offset {spec!r}: the offset must be 0 or more seconds.")
    return name.strip(), value


def classify(arguments: list[str]) -> list[MediaSource]:
    """Every argument judged at once, so one run names every refused link."""
    sources: list[MediaSource] = []
    refused: list[dict[str, str]] = []
    for argument in arguments:
        try:
            sources.append(media_from_argument(argument))
        except LinkRefused as exc:
            refused.append({"media": _shown(argument), "kind": str(exc.kind), "reason": exc.reason})
    if refused:
        words = refused[0]["reason"] if len(refused) == 1 else f"{len(refused)} media arguments were refused."
        raise CliFailure(ExitCode.BAD_INPUT, "media_refused", words, refused=refused)
    return sources


def plan_media(
    sources: list[MediaSource],
    *,
    language: str | None,
    multitrack_offsets: dict[str, float] | None,
    composition_name: str | None,
) -> MediaPlan:
    """Check bucket keys, presign them, name every file uniquely, add the sequence and composition.

    `multitrack_offsets` is None for separate files, else NAME -> seconds (NAME: a display name
    or an argument as given; files not named start at 0).
    """
    plan = MediaPlan()
    present = _check_keys([s for s in sources if s.kind is SourceKind.BUCKET_KEY], plan)
    kept: list[tuple[str, MediaSource]] = []
    for source in sources:
        if source.kind is SourceKind.BUCKET_KEY and source.key not in present:
            continue
        name = _unique(source.name or "media", plan.shown)
        url = source.url or _presign(source.key)
        try:
            plan.add_media[name] = url_media(url, language=language)
        except JobsError as exc:
            raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", exc.words) from None
        plan.shown[name] = source.redacted
        kept.append((name, source))
    if not kept:
        raise CliFailure(ExitCode.BAD_INPUT, "nothing_to_import",
                         "None of the media can be imported: " + "; ".join(s["reason"] for s in plan.skipped),
                         skipped=plan.skipped)
    clips = [name for name, _ in kept]
    try:
        if multitrack_offsets is not None:
            offsets = _offsets_by_name(multitrack_offsets, kept, plan.skipped)
            sequence = _unique(composition_name or SEQUENCE_NAME, plan.add_media)
            plan.add_media[sequence] = multitrack([(name, offsets.get(name, 0.0)) for name in clips])
            clips = [sequence]
        if composition_name:
            plan.compositions.append(composition(composition_name, clips))
    except JobsError as exc:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", exc.words) from None
    return plan


def _check_keys(sources: list[MediaSource], plan: MediaPlan) -> set[str]:
    """HEAD every key at once; returns the keys that can go. Unsupported types stop everything."""
    if not sources:
        return set()
    present: set[str] = set()
    checks = storage.start_checks([s.key for s in sources])
    for source, check in zip(sources, checks):
        try:
            info = check.result()
        except storage.StorageError as exc:
            if exc.kind == "missing":
                plan.skipped.append({"media": source.key, "reason": _not_in_bucket(source.key)})
                continue
            raise CliFailure(ExitCode.UNREACHABLE, "storage_unavailable", exc.reason) from None
        if info.size <= 0:
            plan.skipped.append({"media": source.key, "reason": f"“{source.key}” in the bucket is empty."})
            continue
        if not is_supported_object(info.key, info.content_type):
            raise CliFailure(
                ExitCode.BAD_INPUT, "media_refused",
                f"“{source.key}” is not a type Descript imports ({SUPPORTED_WORDS}).",
                refused=[{"media": source.key, "kind": "unsupported_type",
                          "reason": f"Its type ({info.content_type or 'unknown'}) is not one Descript imports."}],
            )
        present.add(source.key)
    return present


def _presign(key: str) -> str:
    try:
        return storage.presign_get(key, PRESIGN_SECONDS)
    except storage.StorageError as exc:  # credentials that expire before the link would
        raise CliFailure(ExitCode.UNREACHABLE, "storage_credentials", exc.reason) from None


def _offsets_by_name(offsets: dict[str, float], kept: list[tuple[str, MediaSource]],
                     skipped: list[dict[str, str]]) -> dict[str, float]:
    by_name: dict[str, float] = {}
    skipped_keys = {s["media"] for s in skipped}
    for given, seconds in offsets.items():
        match = [name for name, source in kept if given in (name, source.given, source.key, source.redacted)]
        if match:
            by_name[match[0]] = seconds
        elif given not in skipped_keys:
            raise CliFailure(ExitCode.BAD_INPUT, "bad_argument",
                             f"--offset names “{given}”, which is not one of the media given.")
    return by_name


def _unique(name: str, taken: dict[str, Any]) -> str:
    if name not in taken:
        return name
    stem, ext = posixpath.splitext(name)
    number = 2
    while f"{stem} ({number}){ext}" in taken:
        number += 1
    return f"{stem} ({number}){ext}"


def _not_in_bucket(key: str) -> str:
    return (f"“{key}” is not in the bucket (local files are not uploaded: put the file in the bucket, "
            "or give an https link).")


def _shown(argument: str) -> str:
    """A refused argument as it may be printed: no query (signatures), no credentials."""
    shown = argument.strip().split("?", 1)[0].split("#", 1)[0]
    if "://" in shown and "@" in shown.split("://", 1)[1].split("/", 1)[0]:
        return "(a link with credentials)"
    return shown[:200]
