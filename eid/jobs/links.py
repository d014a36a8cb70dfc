"""Media given by a person (the command line): which links Descript can fetch, and which are refused.

`media_from_argument` is pure: it tells a link from a bucket key and turns share links into direct
downloads (FACTS, "The jobs API"):

- an https URL is kept as it is;
- a Google Drive file link `https://drive.google.com/file/d/<ID>/view?...` (or `open?id=<ID>`)
  becomes `https://drive.google.com/uc?export=download&id=<ID>`;
- a Dropbox share link gets `dl=1` (replacing `dl=0`), its other parameters kept (`/scl/` links
  need their `rlkey`);
- anything without a scheme that could be an object key is a bucket key: the caller checks the
  object exists (eid.storage.head) and presigns it.

Everything else is refused with a `LinkRefused` whose `reason` says why in plain words: plain
http, other schemes, URLs carrying credentials, local paths, folders, and files whose name says
they are a type Descript does not import (eid.media's rules). A name without an extension (many
share links) cannot be judged here; Descript reports it per file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import EidError
from ..media import SUPPORTED_EXTENSIONS

MAX_ARGUMENT_LENGTH = 2048
MAX_KEY_LENGTH = 1024  # S3's own limit, in bytes of UTF-8

DRIVE_HOSTS = frozenset({"drive.google.com"})
DROPBOX_HOSTS = frozenset({"www.dropbox.com", "dropbox.com"})
_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")
_DRIVE_FILE_PATH = re.compile(r"^/file/d/([^/]+)(?:/(?:view|edit|preview)?)?/?$")
# The last path segment's extension names a program, not a file type ("download.php?id=3").
_SCRIPT_EXTENSIONS = frozenset({".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".py", ".do", ".action"})
_PAGE_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# "name:rest" without "//" is a link only for schemes people paste; otherwise a key with a colon.
_BARE_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp", "file", "data", "s3", "gs", "javascript", "mailto"})
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
SUPPORTED_WORDS = "audio: WAV, FLAC, AAC, M4A, MP3; video: MP4, MOV"


class LinkRefused(EidError):
    """Media that cannot be given to Descript; `reason` says why and what to give instead."""

    class Kind(StrEnum):
        EMPTY = "empty"
        MALFORMED = "malformed"
        NOT_HTTPS = "not_https"
        CREDENTIALS = "credentials"
        LOCAL_PATH = "local_path"
        FOLDER = "folder"
        UNSUPPORTED_TYPE = "unsupported_type"


class SourceKind(StrEnum):
    URL = "url"  # an https link, as given
    DRIVE = "drive"  # a Google Drive share link, now a direct download
    DROPBOX = "dropbox"  # a Dropbox share link, now a direct download
    BUCKET_KEY = "bucket_key"  # an object in the site's bucket: still to be checked and presigned


@dataclass(frozen=True)
class MediaSource:
    """One piece of media as Descript will get it.

    `url` is the link to hand Descript ("" for a bucket key, whose presigned URL is made later and
    is never kept here). `name` is a display name for the project: the file's own name when the
    link shows one. `given` is the argument as typed, for messages about it (never a signed URL:
    people type share links, not signatures, and `redacted` strips the query anyway).
    """

    kind: SourceKind
    given: str
    url: str = ""
    key: str = ""
    name: str = ""

    @property
    def redacted(self) -> str:
        """The argument without its query string, for output that may end up in logs."""
        if self.kind is SourceKind.BUCKET_KEY:
            return self.key
        parts = urlsplit(self.given)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def media_from_argument(arg: str) -> MediaSource:
    """Classify one media argument and convert share links; raises LinkRefused with the reason."""
    text = arg.strip()
    if not text:
        raise LinkRefused("empty", "An empty media argument: give an https link or a key in the bucket.")
    if len(text) > MAX_ARGUMENT_LENGTH:
        raise LinkRefused("malformed", f"The media argument is longer than {MAX_ARGUMENT_LENGTH} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise LinkRefused("malformed", "The media argument contains control characters.")
    if _WINDOWS_DRIVE.match(text):
        raise LinkRefused("local_path", _local_words(text))
    scheme = _SCHEME.match(text)
    if scheme and (text[scheme.end():].startswith("//") or scheme.group(1).lower() in _BARE_SCHEMES):
        return _from_url(text, scheme.group(1).lower())
    return _from_key(text)


def _from_url(text: str, scheme: str) -> MediaSource:
    if scheme == "file":
        raise LinkRefused("local_path", _local_words(text))
    if scheme == "http":
        raise LinkRefused(
            "not_https",
            f"“{_shown(text)}” is a plain http link: Descript fetches media over https only. "
            "Give the https address, or put the file in the bucket and give its key.",
        )
    if scheme != "https":
        raise LinkRefused(
            "not_https",
            f"“{_shown(text)}” is a {scheme}: link: Descript fetches media over https only.",
        )
    if any(c.isspace() for c in text) or "\\" in text:
        raise LinkRefused("malformed", f"“{_shown(text)}” is not a well-formed link (spaces or backslashes).")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise LinkRefused("malformed", f"“{_shown(text)}” is not a well-formed link.") from None
    if "@" in parts.netloc:
        raise LinkRefused(
            "credentials",
            "The link carries a user name or password. Descript would see it in every request; "
            "give a link that needs no credentials (a share link or a presigned URL).",
        )
    if not host or "." not in host.strip("[]") and ":" not in host:
        raise LinkRefused("malformed", f"“{_shown(text)}” has no host Descript could reach.")
    if host in DRIVE_HOSTS:
        return _from_drive(text, parts.path, parts.query)
    if host in DROPBOX_HOSTS:
        return _from_dropbox(text, parts)
    name = _file_name(parts.path)
    _check_type(name, text)
    return MediaSource(SourceKind.URL, given=text, url=text, name=name)


def _from_drive(text: str, path: str, query: str) -> MediaSource:
    params = dict(parse_qsl(query))
    match = _DRIVE_FILE_PATH.match(path)
    if match:
        file_id = match.group(1)
    elif path.rstrip("/") in ("/open", "/uc") and "id" in params:
        file_id = params["id"]
    elif path.startswith("/drive/folders/") or path.startswith("/drive/u/"):
        raise LinkRefused("folder", "That Google Drive link is a folder: share each file and give its link.")
    else:
        raise LinkRefused(
            "malformed",
            "That Google Drive link does not point at a file: give the file's share link "
            "(https://drive.google.com/file/d/<ID>/view).",
        )
    if not _DRIVE_ID.match(file_id):
        raise LinkRefused("malformed", "That Google Drive link's file id is not one Drive would give.")
    direct = "https://drive.google.com/uc?" + urlencode({"export": "download", "id": file_id})
    return MediaSource(SourceKind.DRIVE, given=text, url=direct, name=f"drive-{file_id[:16]}")


def _from_dropbox(text: str, parts: SplitResult) -> MediaSource:
    path = parts.path
    if path.startswith("/sh/") or path.startswith("/scl/fo/") or path.startswith("/home"):
        raise LinkRefused("folder", "That Dropbox link is a folder: share each file and give its link.")
    if not (path.startswith("/s/") or path.startswith("/scl/fi/")):
        raise LinkRefused(
            "malformed", "That Dropbox link is not a file's share link (https://www.dropbox.com/s/... or /scl/fi/...)."
        )
    name = _file_name(path)
    _check_type(name, text)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dl"]
    query.append(("dl", "1"))
    direct = urlunsplit(("https", parts.netloc.lower(), path, urlencode(query), ""))
    return MediaSource(SourceKind.DROPBOX, given=text, url=direct, name=name)


def _from_key(text: str) -> MediaSource:
    if text.startswith(("/", "./", "../", "~")) or "\\" in text:
        raise LinkRefused("local_path", _local_words(text))
    segments = text.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        # "a//b", "a/../b" and "dir/" are paths someone typed, not keys the site writes.
        raise LinkRefused("local_path", _local_words(text))
    if len(text.encode("utf-8", "surrogatepass")) > MAX_KEY_LENGTH:
        raise LinkRefused("malformed", "That bucket key is longer than S3 allows.")
    name = segments[-1]
    _check_type(name, text)
    return MediaSource(SourceKind.BUCKET_KEY, given=text, key=text, name=name)


def _check_type(name: str, given: str) -> None:
    """Refuse a name whose extension says Descript will not import it; no extension: unknown."""
    ext = posixpath.splitext(name.lower())[1]
    if not ext or ext in SUPPORTED_EXTENSIONS or ext in _SCRIPT_EXTENSIONS:
        return
    if ext in _PAGE_EXTENSIONS:
        raise LinkRefused("unsupported_type", f"“{_shown(given)}” is a web page, not a media file.")
    raise LinkRefused(
        "unsupported_type",
        f"“{name}” is a {ext[1:].upper()} file, which Descript does not import ({SUPPORTED_WORDS}).",
    )


def _file_name(path: str) -> str:
    return unquote(posixpath.basename(path.rstrip("/")))


def _shown(text: str) -> str:
    """The argument without query or fragment (where signatures live), shortened for a message."""
    shown = text.split("?", 1)[0].split("#", 1)[0]
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _local_words(text: str) -> str:
    return (
        f"“{_shown(text)}” looks like a path on this machine, and local files are not uploaded: "
        "put the file in the bucket and give its key, or give an https link."
    )
