"""Where the site's CPU goes under bench/click_load's load: py-spy on the uvicorn workers while wrk runs.

    .venv/bin/python -m bench.click_spy [--path click|library] [--latency 250] [--seconds 15] [--conns 200]
        [--sqlite] [--top 45]

The same stack as bench/click_load (moto, the sandbox, scratch PostgreSQL or SQLite, uvicorn with 2
workers and bench/settings.py, wrk with bench/load.lua). One load phase of --seconds runs while
`py-spy record --format raw` samples every thread of each worker (py-spy must be installed in the
venv: it is a tool for this study, not a requirement). Printed: the answers per second, and the
share of samples by function (own and inclusive), stacks of every worker merged. Idle threads
(waiting in recv, select, a lock) are left out with --idle off (py-spy's default), so the shares
are of time spent running Python, i.e. of CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections import Counter

from ._common import (
    PY, ScratchDatabase, Stack, descendants, ensure_wrk, free_port, postgres_reachable, run_benchmark, site_env,
    start_s3, start_sandbox,
)
from .click_load import SCHEMA_PATH, Wrk, _find_cases, _login

import requests


def _frame(text: str) -> str:
    """py-spy's "func (path/to/file.py:12)" as "func (to/file.py)": lines merged, paths shortened."""
    name, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if where else name


def _pg_sessions(scratch: ScratchDatabase | None) -> int:
    """Sessions PostgreSQL has opened on the scratch database so far (a pool that churns shows here)."""
    if scratch is None:
        return 0
    done = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAt", "-c",
                           f"SELECT sessions FROM pg_stat_database WHERE datname = '{scratch.name}'"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
    return int(done.stdout.decode().strip() or 0)


def _run(stack: Stack, args) -> int:
    spy = shutil.which("py-spy", path=os.path.dirname(PY)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy is not installed (.venv/bin/pip install py-spy)")
    wrk_binary = ensure_wrk()
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), f"{site}/descript/import/new")
    scratch: ScratchDatabase | None = None
    try:
        if not args.sqlite and postgres_reachable():
            scratch = ScratchDatabase()
            env = site_env(None, sandbox, s3_url, database_url=scratch.url, settings="bench.settings")
        else:
            env = site_env(stack.tmp / "spy.sqlite3", sandbox, s3_url, settings="bench.settings")
        stack.run("migrate", [PY, "manage.py", "migrate", "--no-input", "-v", "0"], env)
        stack.run("seed_demo", [PY, "manage.py", "seed_demo", "--without-debug"], env)
        uvicorn = stack.start("uvicorn", [PY, "-m", "uvicorn", "partner_site.asgi:application", "--host", "127.0.0.1",
                                          "--port", str(port), "--workers", "2", "--limit-concurrency", "1000",
                                          "--backlog", "2048", "--no-access-log"], env)
        stack.wait_http(f"{site}/accounts/login/", "uvicorn", ok=lambda r: r.status_code == 200)
        deadline = time.monotonic() + 30
        while len(descendants(uvicorn.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = descendants(uvicorn.pid)
        browser = _login(site)
        cases = _find_cases(site, browser)
        csrf = browser.cookies.get("csrftoken") or ""
        wrk = Wrk(wrk_binary, site, f"sessionid={browser.cookies['sessionid']}; csrftoken={csrf}", csrf)
        method, path = ("POST", cases[1]["click"]) if args.path == "click" else ("GET", "/")
        requests.delete(f"{sandbox}/_sandbox/faults", timeout=5)
        requests.post(f"{sandbox}/_sandbox/faults", json={"path": SCHEMA_PATH, "method": "POST",
                                                          "latency_ms": args.latency}, timeout=5).raise_for_status()
        Wrk.finish(wrk.start(method, path, 50, 3), 60)  # warm-up
        sessions0 = _pg_sessions(scratch)
        load = wrk.start(method, path, args.conns, args.seconds)
        time.sleep(1)
        raws = []
        spies = []
        for pid in workers:
            raw = stack.tmp / f"spy-{pid}.txt"
            raws.append(raw)
            spies.append(subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                                           "--duration", str(max(1, args.seconds - 3)), "--output", str(raw),
                                           "--nonblocking"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for p in spies:
            p.wait(timeout=args.seconds + 60)
        result = Wrk.finish(load, args.seconds + 60)
        print(f"{method} {args.path} at {args.conns} clients, Descript {args.latency} ms: {result['rate']:.1f}/s "
              f"({result['statuses']}); PostgreSQL sessions opened during the phase: "
              f"{_pg_sessions(scratch) - sessions0 if scratch else 'n/a (SQLite)'}")
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        total = 0
        for raw in raws:
            if not raw.exists():
                continue
            for line in raw.read_text(errors="replace").splitlines():
                stack_text, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                n = int(count)
                frames = [_frame(f) for f in stack_text.split(";") if f]
                total += n
                if frames:
                    own[frames[-1]] += n
                for f in set(frames):
                    inclusive[f] += n
        print(f"{total} samples over {len(raws)} workers")
        print("\nown time (share of samples):")
        for f, n in own.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {f}")
        print("\ninclusive time (share of samples):")
        for f, n in inclusive.most_common(args.top * 2):
            print(f"  {100 * n / total:5.1f}%  {f}")
        return 0
    finally:
        if scratch is not None:
            stack.close()
            scratch.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=("click", "library"), default="click")
    parser.add_argument("--latency", type=int, default=250)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args(argv)
    return run_benchmark("eid-bench-spy-", lambda stack: _run(stack, args))


if __name__ == "__main__":
    raise SystemExit(main())
