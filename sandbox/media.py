"""Deterministic fake media for the sandbox.

Synthetic streams let tests and benchmarks move hundreds of megabytes without keeping
them anywhere: any byte of a stream depends only on (seed, position), so a server can
serve any Range of it and a client can check what it got against `synthetic_sha256`.
"""

from __future__ import annotations

import array
import functools
import hashlib
import io
import math
import wave
from collections.abc import Iterator, Sequence

# Stream layout: 1 MiB blocks. Every block is the same seed-derived base block, except
# its first 32 bytes, which are sha256(seed, block index). Building a block is then one
# memcpy, which keeps generation at memory speed (GB/s) while reordered or repeated
# blocks still change the digest.
BLOCK_SIZE = 1 << 20
_HEADER_SIZE = 32


@functools.lru_cache(maxsize=16)
def _base_block(seed: str) -> bytes:
    """1 MiB of sha256-counter bytes derived from the seed (cached: ~15 ms to build)."""
    key = hashlib.sha256(b"sandbox-media:" + seed.encode("utf-8")).digest()
    parts = [
        hashlib.sha256(key + i.to_bytes(8, "big")).digest()
        for i in range(BLOCK_SIZE // 32)
    ]
    return b"".join(parts)


def _block(seed: str, index: int) -> bytes:
    base = _base_block(seed)
    header = hashlib.sha256(
        seed.encode("utf-8") + b"\x00" + index.to_bytes(8, "big")
    ).digest()
    return header + base[_HEADER_SIZE:]


def synthetic_chunks(
    seed: str, size: int, chunk: int = 1 << 20, start: int = 0
) -> Iterator[bytes]:
    """Yield bytes [start, size) of the stream named by `seed`, in pieces of at most `chunk`.

    `size` is the end position (exclusive), so `synthetic_chunks(s, end + 1, start=a)`
    yields exactly the HTTP range `bytes=a-end` of the stream.
    """
    if size < 0 or start < 0 or chunk <= 0:
        raise ValueError("size and start must be >= 0 and chunk > 0")
    pos = start
    cached_index = -1
    block = b""
    while pos < size:
        index, offset = divmod(pos, BLOCK_SIZE)
        if index != cached_index:
            block = _block(seed, index)
            cached_index = index
        take = min(BLOCK_SIZE - offset, size - pos, chunk)
        if offset == 0 and take == BLOCK_SIZE:
            yield block
        else:
            yield block[offset : offset + take]
        pos += take


def synthetic_sha256(seed: str, size: int) -> str:
    """Hex sha256 of the first `size` bytes of the stream named by `seed`."""
    digest = hashlib.sha256()
    for piece in synthetic_chunks(seed, size):
        digest.update(piece)
    return digest.hexdigest()


def make_wav(seconds: float = 1.0, freq: float = 440.0, rate: int = 16000) -> bytes:
    """A valid mono 16-bit PCM WAV holding a sine tone."""
    frames = max(1, int(seconds * rate))
    step = 2 * math.pi * freq / rate
    samples = array.array(
        "h", (int(12000 * math.sin(step * i)) for i in range(frames))
    )
    if samples.itemsize != 2:  # pragma: no cover - every supported platform has 16-bit "h"
        raise RuntimeError("unexpected sample size")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        # WAV is little-endian; array uses native order.
        if array.array("h", [1]).tobytes() != b"\x01\x00":  # pragma: no cover
            samples.byteswap()
        wav.writeframes(samples.tobytes())
    return out.getvalue()


def wav_duration(data: bytes) -> float | None:
    """Duration in seconds if `data` is a readable WAV, else None."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else None
    except (wave.Error, EOFError, ValueError):
        return None


Cue = tuple[float, float, str]


def cues_from_lines(lines: Sequence[str | Cue], seconds_per_line: float = 2.0) -> list[Cue]:
    """Turn plain lines (or ready (start, end, text) cues) into timed cues."""
    cues: list[Cue] = []
    t = 0.0
    for line in lines:
        if isinstance(line, str):
            cues.append((t, t + seconds_per_line, line))
            t += seconds_per_line
        else:
            start, end, text = line
            cues.append((float(start), float(end), str(text)))
            t = float(end)
    return cues


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def make_vtt(lines: Sequence[str | Cue], seconds_per_line: float = 2.0) -> str:
    """A small valid WebVTT document, one cue per line."""
    out = ["WEBVTT", ""]
    for start, end, text in cues_from_lines(lines, seconds_per_line):
        # "-->" inside a cue payload would end it early; blank lines would too.
        clean = " ".join(text.replace("-->", "->").split())
        out += [f"{_vtt_time(start)} --> {_vtt_time(end)}", clean, ""]
    return "\n".join(out)
