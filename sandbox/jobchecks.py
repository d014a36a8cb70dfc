"""Checking jobs-API request bodies and queries the way openapi.yml describes them.

Pure functions: each returns what is wrong in Descript's words (for a 400), or None.
References between items (tracks and clips naming media) are checked against the names a
project will hold, which the caller passes in.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

TEAM_ACCESS = ("edit", "comment", "view", "none")
MEDIA_TYPES = ("Video", "Audio")
RESOLUTIONS = ("480p", "720p", "1080p", "1440p", "4K")
ACCESS_LEVELS = ("public", "unlisted", "drive", "private")
MAX_MEDIA_BYTES = 1 << 30  # Descript: files must be under 1 GB

IMPORT_KEYS = {"project_id", "project_name", "team_access", "folder_name", "add_media",
               "add_compositions", "callback_url"}
AGENT_KEYS = {"project_id", "project_name", "composition_id", "model", "prompt", "team_access",
              "callback_url"}
PUBLISH_KEYS = {"project_id", "composition_id", "media_type", "resolution", "callback_url",
                "access_level"}


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unknown(body: dict[str, Any], allowed: set[str], where: str = "") -> str | None:
    extra = sorted(set(body) - allowed)
    return f'"{where}{extra[0]}" is not allowed' if extra else None


def _common(body: Any, allowed: set[str]) -> str | None:
    if not isinstance(body, dict):
        return "Invalid request body"
    problem = _unknown(body, allowed)
    if problem:
        return problem
    if "project_id" in body and not is_uuid(body["project_id"]):
        return "Invalid project_id format"
    if "project_name" in body and not isinstance(body["project_name"], str):
        return '"project_name" must be a string'
    if "team_access" in body and body["team_access"] not in TEAM_ACCESS:
        return f'"team_access" must be one of [{", ".join(TEAM_ACCESS)}]'
    if "callback_url" in body and not is_http_url(body["callback_url"]):
        return '"callback_url" must be a valid http or https URL'
    return None


def media_kind(item: dict[str, Any]) -> str:
    """Which of openapi's three add_media shapes an item is: url, upload or sequence."""
    if "tracks" in item:
        return "sequence"
    if "url" in item:
        return "url"
    return "upload"


def _check_media_item(name: str, item: Any) -> str | None:
    where = f'add_media["{name}"]'
    if not name.strip():
        return "Media reference IDs must not be empty"
    if not isinstance(item, dict):
        return f"{where} must be an object"
    kind = media_kind(item)
    if kind == "url":
        problem = _unknown(item, {"url", "language"}, f"{where}.")
        if problem:
            return problem
        if not is_http_url(item["url"]):
            return "Invalid media URL format"
    elif kind == "sequence":
        problem = _unknown(item, {"tracks"}, f"{where}.")
        if problem:
            return problem
        tracks = item["tracks"]
        if not isinstance(tracks, list) or not tracks:
            return f"{where}.tracks must be a non-empty array"
        for i, track in enumerate(tracks):
            if not isinstance(track, dict):
                return f"{where}.tracks[{i}] must be an object"
            problem = _unknown(track, {"media", "offset"}, f"{where}.tracks[{i}].")
            if problem:
                return problem
            if not isinstance(track.get("media"), str):
                return f"{where}.tracks[{i}].media is required"
            if "offset" in track and (not _is_number(track["offset"]) or track["offset"] < 0):
                return f"{where}.tracks[{i}].offset must be a number >= 0"
    else:
        if "content_type" not in item or "file_size" not in item:
            return f"{where} needs url, tracks, or content_type and file_size"
        problem = _unknown(item, {"content_type", "file_size", "language"}, f"{where}.")
        if problem:
            return problem
        if not isinstance(item["content_type"], str) or "/" not in item["content_type"]:
            return f"{where}.content_type must be a MIME type"
        size = item["file_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            return f"{where}.file_size must be a positive integer"
        if size > MAX_MEDIA_BYTES:
            return f"{where}.file_size is over the 1 GB limit"
    if "language" in item and not isinstance(item["language"], str):
        return f"{where}.language must be a string"
    return None


def check_import(body: Any, existing_media: Collection[str] = ()) -> str | None:
    """What is wrong with a POST /v1/jobs/import/project_media body, or None.

    `existing_media` are the names already in the project the body imports into.
    """
    problem = _common(body, IMPORT_KEYS)
    if problem:
        return problem
    if "folder_name" in body and not isinstance(body["folder_name"], str):
        return '"folder_name" must be a string'
    add_media = body.get("add_media", {})
    if not isinstance(add_media, dict):
        return '"add_media" must be an object'
    for name, item in add_media.items():
        problem = _check_media_item(name, item)
        if problem:
            return problem
    conflicts = sorted(set(add_media) & set(existing_media))
    if conflicts:
        return "Media filename conflicts with existing files in the project"
    files = {n for n, i in add_media.items() if media_kind(i) != "sequence"} | set(existing_media)
    known = set(add_media) | set(existing_media)
    for name, item in add_media.items():
        for track in item.get("tracks", []):
            if track["media"] not in files:
                return f'add_media["{name}"] names media "{track["media"]}" that is not in the request or the project'
    comps = body.get("add_compositions", [])
    if not isinstance(comps, list):
        return '"add_compositions" must be an array'
    for i, comp in enumerate(comps):
        where = f"add_compositions[{i}]"
        if not isinstance(comp, dict):
            return f"{where} must be an object"
        problem = _unknown(comp, {"name", "width", "height", "fps", "clips"}, f"{where}.")
        if problem:
            return problem
        if "name" in comp and not isinstance(comp["name"], str):
            return f"{where}.name must be a string"
        for dim in ("width", "height"):
            if dim in comp and (not isinstance(comp[dim], int) or isinstance(comp[dim], bool) or comp[dim] <= 0):
                return f"{where}.{dim} must be a positive integer"
        if "fps" in comp and (not _is_number(comp["fps"]) or comp["fps"] <= 0):
            return f"{where}.fps must be a positive number"
        clips = comp.get("clips")
        if not isinstance(clips, list):
            return f"{where}.clips is required"
        for j, clip in enumerate(clips):
            if not isinstance(clip, dict) or _unknown(clip, {"media"}) or not isinstance(clip.get("media"), str):
                return f"{where}.clips[{j}] must be an object with a media name"
            if clip["media"] not in known:
                return f'{where}.clips[{j}] names media "{clip["media"]}" that is not in the request or the project'
    return None


def check_agent(body: Any) -> str | None:
    """What is wrong with a POST /v1/jobs/agent body (before looking projects up), or None."""
    problem = _common(body, AGENT_KEYS)
    if problem:
        return problem
    prompt = body.get("prompt")
    if prompt is None:
        return '"prompt" is required'
    if not isinstance(prompt, str) or not prompt.strip():
        return "Prompt cannot be empty"
    if ("project_id" in body) == ("project_name" in body):
        return "Provide exactly one of project_id or project_name"
    if "composition_id" in body:
        if "project_id" not in body:
            return "composition_id requires project_id"
        if not isinstance(body["composition_id"], str) or not body["composition_id"].strip():
            return "Invalid composition_id format"
    if "team_access" in body and "project_id" in body:
        return "team_access only applies when project_name creates a new project"
    if "model" in body and not isinstance(body["model"], str):
        return '"model" must be a string'
    return None


def check_publish(body: Any) -> str | None:
    """What is wrong with a POST /v1/jobs/publish body, or None."""
    problem = _common(body, PUBLISH_KEYS)
    if problem:
        return problem
    if "project_id" not in body:
        return '"project_id" is required'
    if "composition_id" in body and not isinstance(body["composition_id"], str):
        return "Invalid composition_id format"
    if "media_type" in body and body["media_type"] not in MEDIA_TYPES:
        return f'"media_type" must be one of [{", ".join(MEDIA_TYPES)}]'
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        return f'"resolution" must be one of [{", ".join(RESOLUTIONS)}]'
    if "access_level" in body and body["access_level"] not in ACCESS_LEVELS:
        return f'"access_level" must be one of [{", ".join(ACCESS_LEVELS)}]'
    return None


# --------------------------------------------------------------------------- queries


def parse_time(value: str) -> float | None:
    """An ISO 8601 timestamp as epoch seconds (naive means UTC), or None if it is not one."""
    text = value.strip().replace(" ", "+")  # an unencoded "+00:00" arrives as " 00:00"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_limit(raw: str | None) -> int | None:
    """`limit` (1 to 100, default 20), or None if it is not one."""
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= 100 else None


def make_cursor(kind: str, position: int) -> str:
    raw = json.dumps({"k": kind, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(kind: str, cursor: str) -> int | None:
    """The position a cursor from make_cursor(kind, ...) holds, or None if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("k") != kind:
        return None
    position = data.get("p")
    return position if isinstance(position, int) and not isinstance(position, bool) and position >= 0 else None
