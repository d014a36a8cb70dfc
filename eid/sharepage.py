"""Reading the `descript:*` meta tags of a Descript share page.

The page body holds content the Descript user wrote (titles, transcripts, comments), so only
tags in the document head count: the head is written by Descript, the body may be written by
anyone. A head that names two different partners or sources is refused as a spoofing attempt.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser

__all__ = [
    "MAX_TAG_LENGTH",
    "SHARE_PATH",
    "ShareTagError",
    "ShareTags",
    "decode_page",
    "parse_share_page",
    "share_id_from_path",
]

# Share ids are short slugs (`JNWta1T8TKX`) or uuids; the trailing slash is tolerated.
SHARE_PATH = re.compile(r"^/view/[A-Za-z0-9_-]{1,64}/?$")
MAX_TAG_LENGTH = 2048
_TAGS = ("partner", "source", "audio", "video", "subtitles", "transcript")
# Elements that may appear in a head. Any other start tag (or text) begins the body in an
# HTML parser, so descript tags after it are body content, whatever the markup claims.
_HEAD_ELEMENTS = frozenset({"html", "head", "meta", "link", "title", "style", "script", "noscript", "base", "template"})
_FEED_SLICE = 64 * 1024
# Control characters (C0, DEL, C1) other than tab, line feed and carriage return. PostgreSQL
# refuses NUL in text outright, and none of them belongs in an id, a link or a title.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _clean_title(text: str) -> str:
    """A title is display text: control characters become spaces, runs of whitespace one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


class ShareTagError(ValueError):
    """A share page we refuse to read. `reason` is plain words a user can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ShareTags:
    partner: str | None = None
    source: str | None = None
    audio: str | None = None
    video: str | None = None
    subtitles: str | None = None
    transcript: str | None = None
    title: str | None = None


def share_id_from_path(path: str) -> str:
    """'/view/JNWta1T8TKX/' -> 'JNWta1T8TKX'."""
    if not isinstance(path, str) or not SHARE_PATH.fullmatch(path):  # fullmatch: `$` allows a trailing newline
        raise ShareTagError("That is not a Descript share page link.")
    return path.split("/")[2]


class _HeadParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entity references in values and text decoded
        self.done = False  # the head has ended: nothing after this point is read
        self.values: dict[str, str] = {}
        self.og_title: str | None = None
        self.title_parts: list[str] = []
        self._in_title = False
        self._title_seen = False
        self._raw: str | None = None  # inside <script>/<style>/<noscript>/<template>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if self._in_title:
            return  # markup inside <title> is text to a browser, never a tag
        if tag == "body" or tag not in _HEAD_ELEMENTS:
            self.done = True
            return
        if tag == "title" and not self._title_seen:
            self._in_title = True
        elif tag in ("script", "style", "noscript", "template"):
            self._raw = tag
        elif tag == "meta" and self._raw is None:
            self._meta(attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.done:
            return
        if self._in_title:
            if tag == "title":
                self._in_title = False
                self._title_seen = True
            return  # any other end tag inside <title> is text too
        elif tag == self._raw:
            self._raw = None
        elif tag in ("head", "html", "body"):
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.done:
            return
        if self._in_title:
            self.title_parts.append(data)
        elif self._raw is None and data.strip():
            self.done = True  # text outside head elements starts the body

    def _meta(self, attrs: list[tuple[str, str | None]]) -> None:
        first: dict[str, str | None] = {}
        for name, value in attrs:
            first.setdefault(name, value)  # a repeated attribute: the first one counts, as in browsers
        content = first.get("content")
        keys = {(first.get(attr) or "").strip().lower() for attr in ("property", "name")} - {""}
        for key in keys:
            if key == "og:title":
                title = _clean_title(content or "")
                if self.og_title is None and title:
                    self.og_title = title
            elif key.startswith("descript:") and key[len("descript:"):] in _TAGS:
                self._record(key[len("descript:"):], content)

    def _record(self, tag: str, content: str | None) -> None:
        if content and _CONTROL.search(content):
            # Refused, not cleaned: these values decide where an edit goes, and removing
            # characters could turn one id or link into another.
            raise ShareTagError(f"The share page carries a descript:{tag} tag with characters that are not allowed.")
        value = (content or "").strip()
        if not value:
            return
        if len(value) > MAX_TAG_LENGTH:
            raise ShareTagError(f"The share page carries a descript:{tag} tag that is too long.")
        previous = self.values.get(tag)
        if previous is not None and previous != value:
            raise ShareTagError(f"The share page carries conflicting descript:{tag} tags.")
        self.values[tag] = value


def parse_share_page(html: str) -> ShareTags:
    """Read the descript:* meta tags (and the title) from the head of a share page.

    A page without any descript tags gives a ShareTags of Nones: a page we do not recognise
    is for the caller to judge, not an error here. A descript:* value with a control character
    (NUL included; tab and line breaks aside) is refused with ShareTagError; in the title such
    characters become spaces. Either way no value returned holds one, so none can reach the
    database (PostgreSQL refuses NUL in text).
    """
    parser = _HeadParser()
    # Feed in slices and stop at the end of the head: a share page's body can be large
    # (transcripts), and nothing in it is read anyway.
    for start in range(0, len(html), _FEED_SLICE):
        parser.feed(html[start:start + _FEED_SLICE])
        if parser.done:
            break
    else:
        parser.close()
    title = parser.og_title
    if title is None:
        title = _clean_title("".join(parser.title_parts)) or None
    if title is not None:
        title = title[:MAX_TAG_LENGTH]
    return ShareTags(title=title, **{tag: parser.values.get(tag) for tag in _TAGS})


def decode_page(body: bytes, content_type: str | None) -> str:
    """Decode a page with the charset of its Content-Type (utf-8 when none), strictly."""
    charset = "utf-8"
    if content_type:
        message = Message()
        message["Content-Type"] = content_type
        charset = message.get_content_charset() or "utf-8"
    try:
        codec = codecs.lookup(charset)
    except LookupError:
        raise ShareTagError("The share page uses a text encoding we do not know.") from None
    if not getattr(codec, "_is_text_encoding", True):  # e.g. "base64": a codec, but not a charset
        raise ShareTagError("The share page uses a text encoding we do not know.")
    try:
        text = body.decode(codec.name, errors="strict")
    except (UnicodeDecodeError, LookupError):
        raise ShareTagError("The share page is not valid text.") from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte order mark is not content
