"""Download options of a recording: what a user can take away, and what Descript can import.

Descript's UX guidance: put "Edit in Descript" in context with each download option (mixed
file vs. separate tracks); eid's button tag shows it only beside the options Descript imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import MediaFile, Recording

MIX = "mix"
TRACKS = "tracks"


@dataclass(frozen=True)
class DownloadOption:
    slug: str
    label: str
    files: tuple[MediaFile, ...]

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
