"""Shared plumbing for the benchmarks: free ports, child processes, clean shutdown, figures.

Every child is started in its own session (so a Ctrl-C in the terminal reaches only the
benchmark, which then stops its children in order) and is stopped by its own process id.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from demo.ports import free_port  # the one implementation (click_overhead and export_copy import it from here)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

SANDBOX_TOKEN = "sandbox-token-bench"
DRIVE_ID = "9121bf3a-60fe-4a31-ad59-ed32df610cc3"
S3_KEY_ID = "bench"
S3_SECRET = "bench-secret"
BUCKET = "recordings"


def print_command() -> None:
    """The exact command line this process was started with, first thing in the output."""
    argv = list(getattr(sys, "orig_argv", []) or [PY, *sys.argv])
    print("$ " + shlex.join(argv), flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class Stack:
    """Child processes and a temporary directory, all undone by `close()` (idempotent)."""

    def __init__(self, prefix: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self._closed = False

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_path = self.tmp / f"{name}.log"
        log = open(log_path, "wb")
        try:
            proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own descriptor
        self.procs.append((name, proc, log_path))
        return proc

    def check_alive(self) -> None:
        for name, proc, log_path in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(log_path)}")

    @staticmethod
    def tail(path: Path, lines: int = 30) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_http(self, url: str, what: str, timeout: float = 60.0, ok=lambda r: r.status_code < 500) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if ok(requests.get(url, timeout=2)):
                    return
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not answer on {url} within {timeout:g} s ({last})")

    def run(self, name: str, args: list[str], env: dict[str, str], timeout: float = 120.0) -> None:
        done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout.decode(errors='replace')[-3000:]}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _name, proc, _log in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the child's own session: it and its workers
                except ProcessLookupError:
                    pass
        for _name, proc, _log in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def sigterm_as_interrupt() -> None:
    """SIGINT and SIGTERM unwind as KeyboardInterrupt, so `finally` blocks stop the children.

    SIGINT explicitly too: a shell starts background jobs with SIGINT ignored.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def start_s3(stack: Stack, env: dict[str, str]) -> str:
    port = free_port()
    stack.start("moto", [PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    stack.wait_http(f"{url}/moto-api/", "moto")
    return url


def start_sandbox(stack: Stack, env: dict[str, str], partner_import_url: str) -> str:
    port = free_port()
    stack.start(
        "sandbox",
        [PY, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--token", SANDBOX_TOKEN,
         "--drive-id", DRIVE_ID, "--partner-import-url", partner_import_url, "--render-seconds", "0"],
        env,
    )
    url = f"http://127.0.0.1:{port}"
    stack.wait_http(f"{url}/_sandbox/health", "sandbox", ok=lambda r: r.status_code == 200)
    return url


def site_env(db_path: Path, sandbox_url: str, s3_url: str) -> dict[str, str]:
    """The settings' environment variables, as demo/run.py:demo_env() sets them, for a bench run."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "demo.settings",  # the site's settings + seed_demo, as in the demo
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DESCRIPT_API_BASE": f"{sandbox_url}/v1",
        "DESCRIPT_API_TOKEN": SANDBOX_TOKEN,
        "DESCRIPT_PARTNER_DRIVE_ID": DRIVE_ID,
        "DESCRIPT_SANDBOX_ORIGINS": sandbox_url,
        "AWS_S3_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "EID_EXPORT_POLL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("TASKS_BACKEND", None)  # the settings' default (database queue; nothing runs it here)
    return env
