"""Small, real media generated at start: nothing binary is committed."""

from __future__ import annotations

import struct

from sandbox.media import make_wav


def wav_bytes(seconds: float = 2.0, freq: float = 440.0, rate: int = 16000) -> bytes:
    """A mono 16-bit PCM WAV tone (the sandbox's generator; demo keeps its 2 s default)."""
    return make_wav(seconds, freq, rate)


def mp4_standin(size: int = 64 * 1024) -> bytes:
    """A stand-in video file: an ISO-BMFF `ftyp` box and an `mdat` box of filler.

    It is typed and named as MP4 (what the partner checks); no video encoder is needed here.
    """
    ftyp = b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    ftyp_box = struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
    payload = bytes((i * 31 + 7) % 251 for i in range(size))
    mdat_box = struct.pack(">I", 8 + len(payload)) + b"mdat" + payload
    return ftyp_box + mdat_box
