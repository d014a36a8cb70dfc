"""`make demo`: the whole product on one machine, on embedded defaults.

Starts moto's S3 server, the Descript sandbox, the site (uvicorn, as in production), a task worker and the
stale-import sweep; migrates, seeds, prints where to click; Ctrl-C stops everything it started.

Every run starts from a clean slate: moto's server keeps its objects in memory only, so a
database kept from an earlier run would list versions whose media no longer exists. The
supervisor removes its SQLite database before migrating, and says so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _wait_for(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start on port {port}")


def _free(port: int, what: str) -> None:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"Port {port} ({what}) is taken. Set {what} to another port, e.g. {what}={port + 100}.")


def reset_database(database_url: str) -> str:
    """Remove the demo's SQLite database (and its WAL files); return what was done, in words.

    Any other database (a DATABASE_URL the user chose) is left alone: the demo does not drop
    someone's PostgreSQL. Only files are removed, never a directory.
    """
    config = environ.Env.db_url_config(database_url)
    if not config["ENGINE"].endswith("sqlite3"):
        return ("DATABASE_URL is not SQLite, so the demo leaves it as it is: anything an earlier run "
                "wrote there points at objects this embedded S3 does not have")
    name = config["NAME"]
    if not name or name == ":memory:":
        return "the database is in memory: nothing to reset"
    path = (ROOT / name) if not Path(name).is_absolute() else Path(name)
    removed = False
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            candidate.unlink()
            removed = True
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if removed:
        return (f"clean slate: removed the previous run's database ({shown}); the embedded S3 keeps "
                f"nothing between runs, so neither does the demo")
    return f"clean slate: a new database ({shown}); the embedded S3 keeps nothing between runs"


def demo_env(site: int, sandbox: int, s3: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "demo.settings",  # the site's settings + the seed_demo command
        "DEBUG": "true",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'demo.sqlite3'}"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DESCRIPT_API_BASE": f"http://127.0.0.1:{sandbox}/v1",
        "DESCRIPT_API_TOKEN": "sandbox-token-demo",
        "DESCRIPT_PARTNER_DRIVE_ID": "9121bf3a-60fe-4a31-ad59-ed32df610cc3",
        "DESCRIPT_SANDBOX_ORIGINS": f"http://127.0.0.1:{sandbox}",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3}",
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo-secret",
        "AWS_STORAGE_BUCKET_NAME": "recordings",
        "EID_EXPORT_POLL_SECONDS": os.environ.get("EID_EXPORT_POLL_SECONDS", "5"),
        "EID_EXPORT_STALE_SECONDS": "30",
        # Auto-edits: the sandbox tells this site when each job stops.
        "EID_JOBS_CALLBACK_BASE": f"http://127.0.0.1:{site}",
    })
    return env


def main() -> None:
    site, sandbox, s3 = _port("DEMO_PORT", 8000), _port("SANDBOX_PORT", 8001), _port("S3_PORT", 8002)
    for port, name in ((site, "DEMO_PORT"), (sandbox, "SANDBOX_PORT"), (s3, "S3_PORT")):
        _free(port, name)
    (ROOT / "var").mkdir(exist_ok=True)
    env = demo_env(site, sandbox, s3)
    # After the port checks: a demo still running on these ports keeps its database.
    print(f"· {reset_database(env['DATABASE_URL'])}", flush=True)
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> None:
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env))
        print(f"· started {name}", flush=True)

    def stop(*_args) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        print("\nstopped everything the demo started", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        start([PY, "-m", "demo.s3", "--host", "127.0.0.1", "--port", str(s3)], f"embedded S3 (moto) on :{s3}")
        start([PY, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(sandbox),
               "--token", env["DESCRIPT_API_TOKEN"], "--drive-id", env["DESCRIPT_PARTNER_DRIVE_ID"],
               "--partner-import-url", f"http://127.0.0.1:{site}/descript/import/new",
               "--render-seconds", os.environ.get("SANDBOX_RENDER_SECONDS", "10")],
              f"Descript sandbox on :{sandbox}")
        _wait_for(s3, "moto")
        _wait_for(sandbox, "sandbox")
        subprocess.run([PY, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
        start([PY, "-m", "uvicorn", "partner_site.asgi:application", "--host", "127.0.0.1", "--port", str(site),
               "--workers", "2", "--limit-concurrency", "1000"], f"site on :{site}")
        start([PY, "manage.py", "db_worker", "--interval", "1", "--no-reload"], "task worker")
        start([PY, "manage.py", "eid_sweep", "--every", "15"], "stale-import sweep")
        _wait_for(site, "site")
        print(
            f"\n  Open http://127.0.0.1:{site}/  and log in as  demo / demo-pass-1234\n"
            f"  Admin:  http://127.0.0.1:{site}/admin/  as  operator / operator-pass-1234\n"
            f"  Descript sandbox: http://127.0.0.1:{sandbox}/   Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for p in procs:
                if p.poll() is not None:
                    print(f"a demo process exited ({p.args[:3]}); stopping", flush=True)
                    stop()
            time.sleep(1)
    except BaseException:
        if not isinstance(sys.exc_info()[1], SystemExit):
            stop()
        raise


if __name__ == "__main__":
    main()
