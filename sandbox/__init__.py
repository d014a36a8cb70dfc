"""Offline stand-in for Descript (API, import page, share pages) for tests and local demos.

Never imported by the Django site: run it with `python -m sandbox` or start a
`SandboxServer` from a test.
"""

from .app import SandboxApp, SandboxConfig
from .media import make_vtt, make_wav, synthetic_chunks, synthetic_sha256
from .server import SandboxServer

__all__ = [
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
    "make_vtt",
    "make_wav",
    "synthetic_chunks",
    "synthetic_sha256",
]
