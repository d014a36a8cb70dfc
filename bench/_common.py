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
from collections.abc import Callable
from pathlib import Path

import requests

from demo.ports import free_port  # the one implementation (click_load and export_copy import it from here)

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

    def stop(self, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        """Stop one child (SIGTERM to its session, SIGKILL after `timeout`) and forget it."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        self.procs = [entry for entry in self.procs if entry[1] is not proc]

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
    """moto's S3 server as the demo runs it (demo/s3.py: without moto's per-request log line)."""
    port = free_port()
    stack.start("moto", [PY, "-m", "demo.s3", "--host", "127.0.0.1", "--port", str(port)], env)
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


def site_env(db_path: Path | None, sandbox_url: str, s3_url: str, *, database_url: str = "",
             settings: str = "demo.settings") -> dict[str, str]:
    """The settings' environment variables, as demo/run.py:demo_env() sets them, for a bench run.

    The database is the SQLite file `db_path`, or `database_url` when given (PostgreSQL).
    """
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": settings,  # demo.settings: the site's settings + seed_demo, as in the demo
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DATABASE_URL": database_url or f"sqlite:///{db_path}",
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


# --- PostgreSQL --------------------------------------------------------------------------------

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def postgres_reachable() -> bool:
    """A PostgreSQL answering on 127.0.0.1:5432 (pg_isready), with psql to create a database."""
    if not (shutil.which("pg_isready") and shutil.which("psql")):
        return False
    try:
        done = subprocess.run(["pg_isready", "-q", "-h", PG_HOST, "-p", str(PG_PORT)], timeout=10,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class ScratchDatabase:
    """A database made for one run on the local PostgreSQL (trust auth), dropped by `drop()`."""

    def __init__(self, prefix: str = "eid_bench") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._psql(f'CREATE DATABASE "{self.name}"')
        self._dropped = False

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    @staticmethod
    def _psql(sql: str) -> None:
        done = subprocess.run(["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", "postgres",
                               "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stdout.decode(errors='replace')[-500:]}")

    def drop(self) -> None:
        if not self._dropped:
            self._dropped = True
            self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- wrk ---------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """Path of Debian's `wrk`, installing it with apt-get when missing (root only); RuntimeError if it cannot."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("installing Debian's wrk (the load generator) with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                     ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600)
            found = shutil.which("wrk")
            if found:
                return found
    raise RuntimeError("the load generator `wrk` is missing and could not be installed: "
                       "run `apt-get install -y wrk` (Debian's package) as root, then run the benchmark again")


# --- CPU accounting (Linux /proc) ---------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; field 3 (state) is index 0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 when it is gone."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def processes_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot: /proc/stat less idle and iowait."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK


def run_benchmark(prefix: str, run: Callable[[Stack], int]) -> int:
    """Print the command, give `run` a fresh Stack; Ctrl-C or SIGTERM stops all it started."""
    print_command()
    sigterm_as_interrupt()
    stack = Stack(prefix)
    try:
        return run(stack)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the benchmark started", flush=True)
        return 130
    finally:
        stack.close()


def setup_django_here(env: dict[str, str]) -> None:
    """Django in this process on the site's environment (database queue), migrated."""
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    os.environ.pop("TASKS_BACKEND", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
