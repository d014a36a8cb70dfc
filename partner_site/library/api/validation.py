"""What a storage pipeline may send for a recording, checked in plain Python (no I/O, no queries).

The bulk endpoint checks up to 1 000 recordings per request; DRF serializers cost about a
millisecond per nested item, which alone would be several times the database's own time, so
the rules are written out here once, used by PUT, bulk and sync_bucket alike, and described
for the OpenAPI document by the serializers in `partner_site.library.serializers` (the same
limits, from the constants below).

Errors are a flat dict from a field's path to its messages: "title", "mix.key",
"tracks.3.offset", "non_field_errors".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from eid.media import is_supported_object

MAX_TRACKS = 32
MAX_TITLE = 300
MAX_NAME = 300
MAX_KEY_BYTES = 1024  # S3's own limit, in UTF-8 bytes
MAX_CONTENT_TYPE = 100
MAX_USERNAME = 150
MAX_OFFSET_SECONDS = 86400.0
MAX_SIZE = 5 * 1024**4  # S3's largest object
MAX_EXTERNAL_ID = 200
# No "/" (it is one path segment of the URL) and no spaces: letters, digits and . _ ~ : -
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}$"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
# "bulk" is the bulk endpoint's own path segment.
RESERVED_EXTERNAL_IDS = frozenset({"bulk"})
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

MIX = "mix"
TRACK = "track"

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class FileSpec:
    role: str  # MIX or TRACK
    key: str
    name: str = ""
    offset: float = 0.0
    position: int = 0
    content_type: str = ""
    size: int | None = None

    def row(self) -> tuple:
        """What a stored MediaFile must hold for this file to be unchanged."""
        return (self.role, self.key, self.name, float(self.offset), self.position, self.content_type, self.size)


@dataclass(frozen=True)
class RecordingSpec:
    external_id: str
    owner: str  # a username, resolved by the caller (one query for a whole bulk request)
    title: str
    files: tuple[FileSpec, ...]

    def with_files(self, files: tuple[FileSpec, ...]) -> RecordingSpec:
        return replace(self, files=files)


def text_error(value: str) -> str | None:
    """What no database column accepts: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    if _SURROGATE.search(value):
        return "Must be valid Unicode text."
    return None


def external_id_error(value: Any) -> str | None:
    if not isinstance(value, str):
        return "Must be a string."
    if problem := text_error(value):
        return problem
    if len(value) > MAX_EXTERNAL_ID:
        return f"At most {MAX_EXTERNAL_ID} characters."
    if not _EXTERNAL_ID.match(value):
        return ("Letters, digits and . _ ~ : - only (no slash or space), starting with a letter or digit, "
                f"at most {MAX_EXTERNAL_ID} characters.")
    if value in RESERVED_EXTERNAL_IDS:
        return f"“{value}” is reserved."
    return None


def key_error(value: Any) -> str | None:
    """An object key in the site's own bucket: relative, no "..", no URL, no control characters."""
    if not isinstance(value, str):
        return "Must be a string: the object's key in the bucket."
    if not value:
        return "Must not be empty."
    if problem := text_error(value):
        return problem
    if _CONTROL.search(value):
        return "Must not contain control characters."
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        return f"At most {MAX_KEY_BYTES} bytes (UTF-8)."
    if _URL.match(value):
        return "Give the object's key in the site's bucket, not a URL: objects in other buckets or hosts are refused."
    if value.startswith("/"):
        return "Must not start with “/”: keys are relative to the bucket."
    if "\\" in value:
        return "Must not contain backslashes."
    if any(part in ("..", ".") for part in value.split("/")):
        return "Must not contain “..” or “.” path segments."
    if value.endswith("/"):
        return "Names a folder, not an object."
    return None


def _text(value: Any, *, limit: int, required: bool) -> tuple[str, str | None]:
    if value is None:
        return "", ("This field is required." if required else None)
    if not isinstance(value, str):
        return "", "Must be a string."
    if problem := text_error(value):
        return "", problem
    if len(value) > limit:
        return "", f"At most {limit} characters."
    text = value.strip()
    if required and not text:
        return "", "Must not be blank."
    return text, None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _file(data: Any, *, role: str, position: int, path: str, errors: Errors) -> FileSpec | None:
    if not isinstance(data, dict):
        errors[path] = ["Must be an object with at least a “key”."]
        return None
    before = len(errors)

    def fail(field: str, message: str) -> None:
        errors.setdefault(f"{path}.{field}", []).append(message)

    key = data.get("key")
    problem = key_error(key) if key is not None else "This field is required."
    if problem:
        fail("key", problem)
    name, problem = _text(data.get("name"), limit=MAX_NAME, required=False)
    if problem:
        fail("name", problem)
    offset = 0.0
    if role == TRACK:
        raw = data.get("offset", 0)
        if raw is None:
            raw = 0
        if not _number(raw) or not math.isfinite(raw):
            fail("offset", "Must be a number of seconds.")
        elif raw < 0:
            fail("offset", "Must not be negative.")
        elif raw > MAX_OFFSET_SECONDS:
            fail("offset", f"At most {MAX_OFFSET_SECONDS:g} seconds.")
        else:
            offset = float(raw)
    content_type = ""
    raw_type = data.get("content_type")
    if raw_type is not None:
        if not isinstance(raw_type, str):
            fail("content_type", "Must be a string.")
        elif _CONTROL.search(raw_type) or _SURROGATE.search(raw_type):
            fail("content_type", "Must not contain control characters.")
        elif len(raw_type) > MAX_CONTENT_TYPE:
            fail("content_type", f"At most {MAX_CONTENT_TYPE} characters.")
        else:
            content_type = raw_type.strip().lower()
    size = data.get("size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool):
            fail("size", "Must be a whole number of bytes.")
        elif size <= 0:
            fail("size", "The object is empty: Descript cannot import an empty file.")
        elif size > MAX_SIZE:
            fail("size", "Larger than any S3 object can be.")
    if len(errors) == before and isinstance(key, str) and not is_supported_object(key, content_type):
        # The stored type decides where it is given; otherwise the key's extension.
        if content_type:
            fail("content_type", f"“{content_type}” is not a type Descript can import "
                                 "(audio: WAV, FLAC, AAC, M4A, MP3; video: MP4, MOV).")
        else:
            fail("key", "Not a type Descript can import, judging by its extension "
                        "(audio: .wav .flac .aac .m4a .mp3; video: .mp4 .mov); give content_type if the name has none.")
    if len(errors) != before or not isinstance(key, str):
        return None
    return FileSpec(role=role, key=key, name=name, offset=offset, position=position,
                    content_type=content_type, size=size)


def parse_recording(data: Any, *, external_id: str | None = None, default_owner: str | None = None,
                    prefix: str = "") -> tuple[RecordingSpec | None, Errors]:
    """One recording's body. `external_id` comes from the URL (PUT) or, when None, from the body
    (bulk). `default_owner` is the owner a token scoped to one user implies."""
    errors: Errors = {}
    p = f"{prefix}." if prefix else ""
    if not isinstance(data, dict):
        return None, {prefix or "non_field_errors": ["Must be a JSON object."]}

    if external_id is not None:
        if data.get("external_id") not in (None, external_id):
            errors[f"{p}external_id"] = ["Differs from the external_id in the URL."]
    else:
        external_id = data.get("external_id")
        problem = external_id_error(external_id) if external_id is not None else "This field is required."
        if problem:
            errors[f"{p}external_id"] = [problem]

    owner = data.get("owner")
    if owner is None and default_owner is not None:
        owner = default_owner
    owner, problem = _text(owner, limit=MAX_USERNAME, required=True)
    if problem:
        errors[f"{p}owner"] = [problem]
    title, problem = _text(data.get("title"), limit=MAX_TITLE, required=True)
    if problem:
        errors[f"{p}title"] = [problem]

    files: list[FileSpec] = []
    mix = data.get("mix")
    if mix is not None:
        spec = _file(mix, role=MIX, position=0, path=f"{p}mix", errors=errors)
        if spec:
            files.append(spec)
    tracks = data.get("tracks")
    if tracks is None:
        tracks = []
    if not isinstance(tracks, list):
        errors[f"{p}tracks"] = ["Must be a list."]
        tracks = []
    elif len(tracks) > MAX_TRACKS:
        errors[f"{p}tracks"] = [f"At most {MAX_TRACKS} tracks."]
        tracks = []
    for position, track in enumerate(tracks):
        spec = _file(track, role=TRACK, position=position, path=f"{p}tracks.{position}", errors=errors)
        if spec:
            files.append(spec)
    if mix is None and not tracks and f"{p}tracks" not in errors:
        errors[f"{p}non_field_errors"] = ["Give the mixed file (“mix”), its tracks (“tracks”), or both."]

    seen: set[str] = set()
    for spec in files:
        if spec.key in seen:
            where = f"{p}mix" if spec.role == MIX else f"{p}tracks.{spec.position}"
            errors.setdefault(f"{where}.key", []).append("The same key is given twice in this recording.")
        seen.add(spec.key)

    if errors:
        return None, errors
    assert isinstance(external_id, str)
    return RecordingSpec(external_id=external_id, owner=owner, title=title, files=tuple(files)), {}
