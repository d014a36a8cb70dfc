"""CPU of one click in the site's process, against the library page and the floor view.

    .venv/bin/python -m bench.click_cpu [--n 400] [--sqlite] [--profile click|floor|library] [--top 40]

A focused companion to bench/click_load (which measures the whole machine under load): moto's S3
server and the Descript sandbox run as their own processes, the site runs in this process through
Django's test client (the real middleware, session, CSRF, adapter, the click's HEADs, its Handoff
row) on a scratch PostgreSQL database when one answers on 127.0.0.1:5432, else SQLite. Requests
run one at a time, in rounds that rotate the order of: the click (1 file), the floor view
(bench/proxyview.py) and the library page. Printed: this process's CPU per request (user+system,
every thread, the HEAD pool's included), median over rounds. With --profile, cProfile (the request's own
thread only: the HEAD pool's threads are not in it; use py-spy for them) of that kind of request
alone, sorted by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time

from ._common import (
    ScratchDatabase, Stack, postgres_reachable, run_benchmark, setup_django_here, site_env, start_s3,
    start_sandbox,
)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _run(stack: Stack, args) -> int:
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), "http://127.0.0.1:1/descript/import/new")
    scratch: ScratchDatabase | None = None
    try:
        if not args.sqlite and postgres_reachable():
            scratch = ScratchDatabase()
            env = site_env(None, sandbox, s3_url, database_url=scratch.url, settings="bench.settings")
            where = f"PostgreSQL (scratch {scratch.name}, psycopg pool)"
        else:
            env = site_env(stack.tmp / "cpu.sqlite3", sandbox, s3_url, settings="bench.settings")
            where = "SQLite (WAL)"
        env["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
        setup_django_here(env)
        return _measure(args, where)
    finally:
        if scratch is not None:
            from django.db import connections

            connections.close_all()
            scratch.drop()


def _measure(args, where: str) -> int:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from partner_site.library.models import Recording

    call_command("seed_demo", "--without-debug", verbosity=0)
    user = get_user_model().objects.get(username="demo")
    one = Recording.objects.get(owner=user, title__contains="single WAV")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/")
    csrf = browser.cookies["csrftoken"].value
    headers = {"HTTP_X_CSRFTOKEN": csrf}
    kinds = {
        "click": lambda: browser.post(f"/descript/edit/{one.pk}/mix/", **headers),
        "floor": lambda: browser.post(f"/bench/floor/{one.pk}/mix/", **headers),
        "library": lambda: browser.get("/"),
    }
    expect = {"click": 302, "floor": 302, "library": 200}
    for name, fn in kinds.items():  # warm-up, and each answers as it should
        for _ in range(20):
            status = fn().status_code
            if status != expect[name]:
                raise RuntimeError(f"{name}: HTTP {status}")
    _check_rows(user, one)
    connections.close_all()

    if args.parts:
        return _parts(user, one, where)
    if args.profile:
        fn = kinds[args.profile]
        profiler = cProfile.Profile()
        cpu0, t0 = _cpu(), time.perf_counter()
        profiler.enable()
        for _ in range(args.n):
            fn()
        profiler.disable()
        cpu, wall = _cpu() - cpu0, time.perf_counter() - t0
        print(f"{args.profile}: {args.n} requests, {cpu * 1000 / args.n:.2f} ms CPU each under cProfile "
              f"({wall * 1000 / args.n:.2f} ms wall); {where}")
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
            print(out.getvalue())
        out = io.StringIO()  # what the click's own steps call, and how long each took
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_callees(
            r"send_to_descript|edit_in_descript|_finish|finish_checks|send_checks")
        print(out.getvalue())
        return 0

    rounds = max(1, args.n // 20)
    per: dict[str, list[float]] = {name: [] for name in kinds}
    order = list(kinds)
    for r in range(rounds):
        order = order[1:] + order[:1]
        for name in order:
            fn = kinds[name]
            cpu0 = _cpu()
            for _ in range(20):
                fn()
            per[name].append((_cpu() - cpu0) * 1000 / 20)
    print(f"CPU per request in this process (ms, median of {rounds} rounds of 20; every thread); {where}")
    med = {name: statistics.median(v) for name, v in per.items()}
    for name, v in med.items():
        print(f"  {name:<8} {v:6.2f} ms  (min {min(per[name]):.2f}, max {max(per[name]):.2f})")
    print(f"  click / library = {med['click'] / med['library']:.3f}; "
          f"click - floor = {med['click'] - med['floor']:.2f} ms")
    return 0


def _check_rows(user, recording) -> None:
    """The warm-up's clicks left whole rows, and the connection's commits wait for the disk again after them."""
    from django.db import connection

    from eid.models import Handoff

    rows = list(Handoff.objects.filter(item_ref=str(recording.pk)))
    bad = [r.pk for r in rows if not (r.outcome == "ok" and r.user_id == user.pk and r.option == "mix"
                                      and r.file_count == 1 and r.total_bytes > 0 and r.finished_at
                                      and r.upstream_latency_ms is not None and r.upstream_attempts == 1
                                      and r.item_title == recording.title)]
    if len(rows) != 20 or bad:
        raise RuntimeError(f"Handoff rows: {len(rows)} for 20 clicks, incomplete: {bad}")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            if cursor.fetchone()[0] != "on":
                raise RuntimeError("synchronous_commit stayed off after the click")
    print(f"checked: 20 warm-up clicks left 20 whole 'ok' Handoff rows ({connection.vendor})")


def _parts(user, recording, where: str) -> int:
    """CPU of each step of a click on its own, 200 times each (the HEAD run inline, in this thread)."""
    from django.db import connections
    from django.utils import timezone

    from eid import storage, throttle
    from eid.client import DescriptClient
    from eid.content import get_adapter
    from eid.handoff import _finish
    from eid.models import Handoff
    from eid.schema import SchemaFile, build_request
    from eid.waiting import hand_back_connections
    from django.conf import settings

    content = get_adapter().get_content(user, str(recording.pk), "mix")
    key = content.files[0].key
    body = build_request(drive_id=settings.DESCRIPT_PARTNER_DRIVE_ID, source_id=content.source_id,
                         files=[SchemaFile(uri=storage.presign_get(key, 3600), name="a.wav")], multitrack=False)

    def handoff_row() -> None:
        handoff = Handoff(user=user, item_ref="1", option="mix", file_count=1, started_at=timezone.now())
        _finish(handoff, Handoff.Outcome.OK, upstream_latency_ms=1, upstream_attempts=1)

    def checkout() -> None:
        hand_back_connections()
        connections["default"].ensure_connection()

    steps = {
        "throttle.check": lambda: throttle.check("click", user.pk),
        "adapter.get_content": lambda: get_adapter().get_content(user, str(recording.pk), "mix"),
        "storage.presign_get": lambda: storage.presign_get(key, 48 * 3600),
        "storage.head": lambda: storage.head(key),
        "start+finish_checks (pool)": lambda: storage.finish_checks(storage.start_checks([key])),
        "create_import_url": lambda: DescriptClient().create_import_url(body),
        "Handoff row (_finish)": handoff_row,
        "hand back + checkout": checkout,
    }
    print(f"CPU per step (ms, median of 5 rounds of 100); {where}")
    for name, fn in steps.items():
        for _ in range(20):
            fn()
        samples = []
        for _ in range(5):
            cpu0 = _cpu()
            for _ in range(100):
                fn()
            samples.append((_cpu() - cpu0) * 1000 / 100)
        print(f"  {name:<28} {statistics.median(samples):6.3f} ms")
    connections.close_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--profile", choices=("click", "floor", "library"))
    parser.add_argument("--parts", action="store_true", help="CPU of each step of the click on its own")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    return run_benchmark("eid-bench-cpu-", lambda stack: _run(stack, args))


if __name__ == "__main__":
    raise SystemExit(main())
