"""Media arguments of `manage.py descript import`: share links become direct links, the rest is judged.

Pure table tests of eid.jobs.links (no I/O: bucket keys are checked by the command itself).
"""

from __future__ import annotations

import pytest

from eid.jobs.links import LinkRefused, MediaSource, SourceKind, media_from_argument

DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123-"


@pytest.mark.parametrize(
    "given, kind, url, name",
    [
        # https links are kept exactly, query and all (a presigned URL's signature must survive).
        ("https://cdn.example.com/show/ep1.mp3", SourceKind.URL, "https://cdn.example.com/show/ep1.mp3", "ep1.mp3"),
        ("https://s3.example.com/b/ep%201.wav?X-Amz-Signature=abc&X-Amz-Expires=3600", SourceKind.URL,
         "https://s3.example.com/b/ep%201.wav?X-Amz-Signature=abc&X-Amz-Expires=3600", "ep 1.wav"),
        ("  https://cdn.example.com/a.MOV  ", SourceKind.URL, "https://cdn.example.com/a.MOV", "a.MOV"),
        ("HTTPS://cdn.example.com/a.m4a", SourceKind.URL, "HTTPS://cdn.example.com/a.m4a", "a.m4a"),
        # No extension, or a program's: the type cannot be judged from the name.
        ("https://media.example.com/download?id=42", SourceKind.URL, "https://media.example.com/download?id=42",
         "download"),
        ("https://media.example.com/get.php?f=7", SourceKind.URL, "https://media.example.com/get.php?f=7", "get.php"),
        # Google Drive: FACTS' conversion, whatever follows the id.
        (f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing", SourceKind.DRIVE,
         f"https://drive.google.com/uc?export=download&id={DRIVE_ID}", f"drive-{DRIVE_ID[:16]}"),
        (f"https://drive.google.com/file/d/{DRIVE_ID}/view", SourceKind.DRIVE,
         f"https://drive.google.com/uc?export=download&id={DRIVE_ID}", f"drive-{DRIVE_ID[:16]}"),
        (f"https://drive.google.com/file/d/{DRIVE_ID}", SourceKind.DRIVE,
         f"https://drive.google.com/uc?export=download&id={DRIVE_ID}", f"drive-{DRIVE_ID[:16]}"),
        (f"https://drive.google.com/open?id={DRIVE_ID}", SourceKind.DRIVE,
         f"https://drive.google.com/uc?export=download&id={DRIVE_ID}", f"drive-{DRIVE_ID[:16]}"),
        (f"https://drive.google.com/uc?id={DRIVE_ID}&export=download", SourceKind.DRIVE,
         f"https://drive.google.com/uc?export=download&id={DRIVE_ID}", f"drive-{DRIVE_ID[:16]}"),
        # Dropbox: dl=0 becomes dl=1, dl=1 is added when absent, other parameters stay.
        ("https://www.dropbox.com/s/abc123/interview.wav?dl=0", SourceKind.DROPBOX,
         "https://www.dropbox.com/s/abc123/interview.wav?dl=1", "interview.wav"),
        ("https://www.dropbox.com/s/abc123/interview.wav", SourceKind.DROPBOX,
         "https://www.dropbox.com/s/abc123/interview.wav?dl=1", "interview.wav"),
        ("https://www.dropbox.com/s/abc123/interview.wav?dl=1", SourceKind.DROPBOX,
         "https://www.dropbox.com/s/abc123/interview.wav?dl=1", "interview.wav"),
        ("https://www.dropbox.com/scl/fi/xyz789/Take%202.mp4?rlkey=k3y&dl=0", SourceKind.DROPBOX,
         "https://www.dropbox.com/scl/fi/xyz789/Take%202.mp4?rlkey=k3y&dl=1", "Take 2.mp4"),
        ("https://dropbox.com/s/abc123/a.mp3?dl=0&e=1", SourceKind.DROPBOX,
         "https://dropbox.com/s/abc123/a.mp3?e=1&dl=1", "a.mp3"),
    ],
)
def test_links_descript_can_fetch(given, kind, url, name):
    source = media_from_argument(given)
    assert (source.kind, source.url, source.key, source.name) == (kind, url, "", name)


@pytest.mark.parametrize(
    "given, name",
    [
        ("alice/ep12/mix.wav", "mix.wav"),
        ("mix.wav", "mix.wav"),
        ("recordings/2026/Roundtable take 3.mp4", "Roundtable take 3.mp4"),
        ("raw/no-extension", "no-extension"),
        ("users/7/guest@home.flac", "guest@home.flac"),  # an @ in a key is not a credential
        ("take:2/mix.wav", "mix.wav"),  # nor is a colon a scheme unless a link follows
    ],
)
def test_anything_that_could_be_an_object_key_is_a_bucket_key(given, name):
    assert media_from_argument(given) == MediaSource(SourceKind.BUCKET_KEY, given=given, key=given, name=name)


@pytest.mark.parametrize(
    "given, kind, words",
    [
        ("", "empty", "An empty media argument"),
        ("   ", "empty", "An empty media argument"),
        ("http://cdn.example.com/ep1.mp3", "not_https", "plain http link: Descript fetches media over https only"),
        ("ftp://files.example.com/ep1.mp3", "not_https", "is a ftp: link"),
        ("ftp:ep1.mp3", "not_https", "is a ftp: link"),
        ("s3://bucket/ep1.mp3", "not_https", "is a s3: link"),
        ("data:audio/wav;base64,UklGRg==", "not_https", "is a data: link"),
        ("file:///home/me/ep1.wav", "local_path", "local files are not uploaded"),
        ("/home/me/ep1.wav", "local_path", "looks like a path on this machine"),
        ("./ep1.wav", "local_path", "looks like a path on this machine"),
        ("../ep1.wav", "local_path", "looks like a path on this machine"),
        ("~/Music/ep1.wav", "local_path", "looks like a path on this machine"),
        ("C:\\Users\\me\\ep1.wav", "local_path", "looks like a path on this machine"),
        ("alice/../bob/ep1.wav", "local_path", "looks like a path on this machine"),
        ("alice//ep1.wav", "local_path", "looks like a path on this machine"),
        ("https://user:secret@cdn.example.com/ep1.mp3", "credentials", "carries a user name or password"),
        ("https://token@cdn.example.com/ep1.mp3", "credentials", "carries a user name or password"),
        ("https://cdn.example.com/ep 1.mp3", "malformed", "not a well-formed link"),
        ("https://cdn.example.com:port/ep1.mp3", "malformed", "not a well-formed link"),
        ("https:///ep1.mp3", "malformed", "no host Descript could reach"),
        ("https://localhost/ep1.mp3", "malformed", "no host Descript could reach"),
        ("https://cdn.example.com/ep1\x00.mp3", "malformed", "control characters"),
        ("https://cdn.example.com/" + "a" * 2100 + ".mp3", "malformed", "longer than 2048"),
        ("https://cdn.example.com/notes.pdf", "unsupported_type", "“notes.pdf” is a PDF file"),
        ("https://cdn.example.com/ep1.mkv?sig=1", "unsupported_type", "“ep1.mkv” is a MKV file"),
        ("https://cdn.example.com/episode.html", "unsupported_type", "a web page, not a media file"),
        ("alice/ep12/cover.jpg", "unsupported_type", "“cover.jpg” is a JPG file, which Descript does not import"),
        ("https://drive.google.com/drive/folders/1AbCdEfGhIjKlMn", "folder", "Google Drive link is a folder"),
        ("https://drive.google.com/file/d/short/view", "malformed", "file id is not one Drive would give"),
        ("https://drive.google.com/", "malformed", "does not point at a file"),
        ("https://www.dropbox.com/sh/abc/AAB?dl=0", "folder", "Dropbox link is a folder"),
        ("https://www.dropbox.com/scl/fo/abc/h?rlkey=x", "folder", "Dropbox link is a folder"),
        ("https://www.dropbox.com/home/Music", "folder", "Dropbox link is a folder"),
        ("https://www.dropbox.com/s/abc/cover.png?dl=0", "unsupported_type", "“cover.png” is a PNG file"),
        ("https://www.dropbox.com/login", "malformed", "not a file's share link"),
    ],
)
def test_refused_with_the_reason(given, kind, words):
    with pytest.raises(LinkRefused) as refused:
        media_from_argument(given)
    assert refused.value.kind == kind
    assert words in refused.value.reason


def test_a_refusal_never_repeats_a_query_string_or_a_password():
    for given in ("http://cdn.example.com/ep1.mp3?X-Amz-Signature=s3cr3t",
                  "https://user:s3cr3t@cdn.example.com/ep1.mp3",
                  "ftp://cdn.example.com/ep1.mp3?token=s3cr3t"):
        with pytest.raises(LinkRefused) as refused:
            media_from_argument(given)
        assert "s3cr3t" not in refused.value.reason


def test_redacted_drops_the_query_of_a_link_and_keeps_a_key():
    assert media_from_argument("https://cdn.example.com/a.mp3?sig=s3cr3t").redacted == "https://cdn.example.com/a.mp3"
    assert media_from_argument("alice/a.mp3").redacted == "alice/a.mp3"
