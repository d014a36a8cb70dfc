"""Registering recordings in bulk: the API against the bare ORM, side by side in one run.

    .venv/bin/python -m bench.bulk_register [--n 10000] [--batch 1000] [--rounds 3] [--no-postgres]

For each database (a scratch SQLite file; and a scratch PostgreSQL database when one answers on
127.0.0.1:5432), two fresh databases are migrated: one behind the site, served as the
Dockerfile serves it (uvicorn, partner_site.asgi, one worker here), one for the ORM. Each round:
- API: N recordings in N/batch requests of `POST /api/v1/recordings/bulk` over real HTTP
  (keep-alive, bodies encoded before the clock starts), with a real service token; every answer
  is checked (200, one "created" per recording);
- ORM: the same rows (a Recording and its three MediaFiles: a mix and two tracks) with
  `bulk_create`, one transaction per batch, in a Django process of its own on the same settings
  (its start-up not timed).
The order alternates by round (API first, then ORM first, ...) and each round writes new ids,
so both tables grow alike. Figures: recordings per second for both (median of the rounds), the
ratio ORM rate / API rate (target: <= 3, the API within 3x of the bare ORM), and the API's rate
when the same 1 000-recording batches are sent again (every one "unchanged").
It is a measurement, not a test: it exits 0 when it measured, whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import requests

from ._common import PY, ROOT, Stack, free_port, print_command, sigterm_as_interrupt, site_env

TARGET = 3.0
OWNER = "bench"
PG = ("127.0.0.1", 5432, "postgres")


def recording(round_: int, i: int) -> dict[str, Any]:
    """One recording as the API takes it: a mix and two tracks."""
    base = f"bench/{round_}/{i}"
    return {
        "external_id": f"bench-{round_}-{i}",
        "owner": OWNER,
        "title": f"Recording {round_}.{i}",
        "mix": {"key": f"{base}/mix.wav", "content_type": "audio/wav", "size": 100_000 + i},
        "tracks": [
            {"key": f"{base}/host.wav", "name": "Host", "offset": 0},
            {"key": f"{base}/guest.wav", "name": "Guest", "offset": 1.5},
        ],
    }


# --- the ORM side: a child process with Django set up ----------------------------------------


def orm_child(round_: int, n: int, batch: int) -> None:
    """Bulk-create the same rows as the API would, print {"seconds": ...} as the last line."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from partner_site.library.models import MediaFile, Recording

    owner = get_user_model().objects.get(username=OWNER)

    def write(round_: int, start: int, count: int) -> None:
        with transaction.atomic():
            specs = [recording(round_, i) for i in range(start, start + count)]
            recordings = Recording.objects.bulk_create(
                Recording(external_id=s["external_id"], owner=owner, title=s["title"]) for s in specs)
            files = []
            for rec, spec in zip(recordings, specs):
                mix = spec["mix"]
                files.append(MediaFile(recording=rec, role="mix", key=mix["key"], content_type=mix["content_type"],
                                       size=mix["size"]))
                files.extend(MediaFile(recording=rec, role="track", key=t["key"], name=t["name"],
                                       start_offset=t["offset"], position=p) for p, t in enumerate(spec["tracks"]))
            MediaFile.objects.bulk_create(files)

    write(-1 - round_, 0, batch)  # warm-up, on ids of its own (not timed)
    started = time.perf_counter()
    for start in range(0, n, batch):
        write(round_, start, min(batch, n - start))
    seconds = time.perf_counter() - started
    assert Recording.objects.filter(external_id__startswith=f"bench-{round_}-").count() == n
    print(json.dumps({"seconds": seconds}))


# --- the API side ----------------------------------------------------------------------------


def post_all(session: requests.Session, url: str, bodies: list[bytes], expect: str, per_batch: list[int]) -> float:
    started = time.perf_counter()
    answers = [session.post(url, data=body, timeout=120) for body in bodies]
    seconds = time.perf_counter() - started
    for answer, count in zip(answers, per_batch):
        if answer.status_code != 200:
            raise RuntimeError(f"bulk answered {answer.status_code}: {answer.text[:500]}")
        counts = answer.json()["counts"]
        if counts[expect] != count:
            raise RuntimeError(f"expected {count} {expect}, got {counts}")
    return seconds


def batches(round_: int, n: int, batch: int) -> tuple[list[bytes], list[int]]:
    bodies, sizes = [], []
    for start in range(0, n, batch):
        count = min(batch, n - start)
        bodies.append(json.dumps({"recordings": [recording(round_, i) for i in range(start, start + count)]}).encode())
        sizes.append(count)
    return bodies, sizes


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout.decode(errors='replace')[-3000:]}")
    return done.stdout.decode()


def prepare(env: dict[str, str]) -> None:
    manage(env, "migrate", "-v", "0")
    manage(env, "shell", "-c", f"from django.contrib.auth import get_user_model; "
                               f"get_user_model().objects.create_user({OWNER!r})")


def pg_reachable() -> bool:
    try:
        return subprocess.run(["pg_isready", "-q", "-h", PG[0], "-p", str(PG[1])], timeout=10,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", PG[2], "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-qAt", "-c", sql], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)


def measure(kind: str, stack: Stack, urls: tuple[str, str], args: argparse.Namespace) -> dict[str, Any]:
    api_url, orm_url = urls
    base = site_env(stack.tmp / "unused.sqlite3", "http://127.0.0.1:9", "http://127.0.0.1:9")
    base.update({"API_THROTTLE_WRITE": "1000000/min", "API_THROTTLE_READ": "1000000/min"})
    api_env, orm_env = {**base, "DATABASE_URL": api_url}, {**base, "DATABASE_URL": orm_url}
    prepare(api_env)
    prepare(orm_env)
    token = manage(api_env, "create_api_token", "bench-pipeline").strip().splitlines()[-1].strip()

    port = free_port()
    stack.start(f"uvicorn-{kind}", [PY, "-m", "uvicorn", "partner_site.asgi:application", "--host", "127.0.0.1",
                                             "--port", str(port), "--workers", "1", "--limit-concurrency", "1000",
                                             "--no-access-log"], api_env)
    site = f"http://127.0.0.1:{port}"
    stack.wait_http(f"{site}/api/v1/recordings", "uvicorn", ok=lambda r: r.status_code == 401)
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    bulk = f"{site}/api/v1/recordings/bulk"

    warm, warm_sizes = batches(-1, args.batch, args.batch)
    post_all(session, bulk, warm, "created", warm_sizes)  # warm-up (imports, connections), not timed

    api_rates, orm_rates = [], []
    for round_ in range(args.rounds):
        bodies, sizes = batches(round_, args.n, args.batch)

        def api() -> None:
            api_rates.append(args.n / post_all(session, bulk, bodies, "created", sizes))

        def orm() -> None:
            out = manage(orm_env, "shell", "-c",
                         f"from bench.bulk_register import orm_child; orm_child({round_}, {args.n}, {args.batch})")
            orm_rates.append(args.n / json.loads(out.strip().splitlines()[-1])["seconds"])

        for step in ((api, orm) if round_ % 2 == 0 else (orm, api)):
            step()
        ratio = orm_rates[-1] / api_rates[-1]
        print(f"  {kind} round {round_ + 1}: API {api_rates[-1]:>7.0f} rec/s   ORM {orm_rates[-1]:>7.0f} rec/s   "
              f"ratio {ratio:.2f}", flush=True)

    bodies, sizes = batches(0, args.n, args.batch)
    unchanged_rate = args.n / post_all(session, bulk, bodies, "unchanged", sizes)
    stack.check_alive()
    return {"kind": kind, "api": statistics.median(api_rates), "orm": statistics.median(orm_rates),
            "unchanged": unchanged_rate, "rounds": list(zip(api_rates, orm_rates))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_register", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="recordings per round and side")
    parser.add_argument("--batch", type=int, default=1000, help="recordings per request (and per ORM transaction)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating which side goes first")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    print_command()
    sigterm_as_interrupt()
    stack = Stack("bench-bulk-")
    scratch: list[str] = []
    results = []
    try:
        print(f"set-up: {args.n} recordings per side per round (a mix and two tracks each: 4 rows), "
              f"{args.n // args.batch} requests of {args.batch} / {args.n // args.batch} transactions of {args.batch}, "
              f"{args.rounds} rounds; site under uvicorn (1 worker, as the Dockerfile runs it), DEBUG=false, "
              f"keep-alive HTTP on loopback; API and ORM each on a fresh database of the same kind", flush=True)
        results.append(measure("SQLite", stack, (f"sqlite:///{stack.tmp / 'api.sqlite3'}",
                                                 f"sqlite:///{stack.tmp / 'orm.sqlite3'}"), args))
        if args.no_postgres:
            print("PostgreSQL: skipped (--no-postgres)")
        elif not pg_reachable():
            print(f"PostgreSQL: skipped (nothing answers on {PG[0]}:{PG[1]})")
        else:
            names = [f"eid_bench_bulk_{side}_{uuid.uuid4().hex[:8]}" for side in ("api", "orm")]
            for name in names:
                psql(f'CREATE DATABASE "{name}"')
                scratch.append(name)
            urls = tuple(f"postgres://{PG[2]}@{PG[0]}:{PG[1]}/{name}" for name in names)
            results.append(measure("PostgreSQL", stack, (urls[0], urls[1]), args))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the benchmark started", flush=True)
        return 130
    finally:
        stack.close()
        for name in scratch:
            try:
                psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"could not drop scratch database {name}: {exc}", file=sys.stderr)

    print()
    header = f"{'database':<11} {'API rec/s':>10} {'ORM rec/s':>10} {'ratio':>6} {'target':>7}  {'API unchanged rec/s':>20}"
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r["orm"] / r["api"]
        per_round = sorted(orm / api for api, orm in r["rounds"])
        print(f"{r['kind']:<11} {r['api']:>10.0f} {r['orm']:>10.0f} {ratio:>6.2f} {'<= 3':>7}  {r['unchanged']:>20.0f}"
              f"   {'met' if ratio <= TARGET else 'NOT MET'} (rounds: {per_round[0]:.2f} to {per_round[-1]:.2f})")
    print("\nrec/s: medians over the rounds; ratio = ORM rate / API rate (how many times faster the bare "
          "bulk_create is); API unchanged: the first round's batches sent again, every recording unchanged.")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
