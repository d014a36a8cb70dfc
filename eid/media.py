"""What Descript imports (FACTS: audio WAV, FLAC, AAC, MP3; video H.264/HEVC in MOV or MP4).

Judged by file extension where only a name is known (the button), and by the Content-Type S3
reports where the object has been checked (the click). Pure: no I/O.
"""

from __future__ import annotations

import posixpath

SUPPORTED_EXTENSIONS = {
    ".wav": "audio",
    ".flac": "audio",
    ".aac": "audio",
    ".m4a": "audio",
    ".mp3": "audio",
    ".mp4": "video",
    ".mov": "video",
}
SUPPORTED_CONTENT_TYPES = frozenset({
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/aac",
    "audio/x-aac",
    "audio/mp4",
    "audio/x-m4a",
    "audio/m4a",
    "audio/mpeg",
    "audio/mp3",
    "video/mp4",
    "video/quicktime",
})
_GENERIC_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})


def is_supported_name(key: str) -> bool:
    return posixpath.splitext(key.lower())[1] in SUPPORTED_EXTENSIONS


def is_supported_object(key: str, content_type: str) -> bool:
    """Judge by the stored Content-Type, falling back to the extension for generic types."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in SUPPORTED_CONTENT_TYPES:
        return True
    return ctype in _GENERIC_TYPES and is_supported_name(key)
