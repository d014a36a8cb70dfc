"""Download options of a recording: what a user can take away, and what Descript can import.

Descript's UX guidance: put "Edit in Descript" in context with each download option (mixed
file vs. separate tracks), and only beside the options it supports.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import MediaFile, Recording, is_supported_name

MIX = "mix"
TRACKS = "tracks"


@dataclass(frozen=True)
class DownloadOption:
    slug: str
    label: str
    files: tuple[MediaFile, ...]

    @property
    def supported_by_descript(self) -> bool:
        return bool(self.files) and all(is_supported_name(f.key) for f in self.files)

    @property
    def is_multitrack(self) -> bool:
        return self.slug == TRACKS and len(self.files) > 1


def download_options(recording: Recording) -> list[DownloadOption]:
    options: list[DownloadOption] = []
    mix = recording.mix
    if mix is not None:
        options.append(DownloadOption(MIX, "Mixed file", (mix,)))
    tracks = tuple(recording.tracks)
    if len(tracks) > 1:
        options.append(DownloadOption(TRACKS, f"All tracks ({len(tracks)})", tracks))
    elif tracks:
        options.append(DownloadOption(TRACKS, tracks[0].display_name, tracks))
    return options


def find_option(recording: Recording, slug: str) -> DownloadOption | None:
    return next((o for o in download_options(recording) if o.slug == slug), None)
