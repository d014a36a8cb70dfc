"""Imports side by side: one media link that drips must not hold back everyone else's imports.

    .venv/bin/python -m bench.import_fairness [--normal 10] [--mb 8] [--drip-bps 50] [--before]

moto's S3 server, the Descript sandbox and one task worker (`manage.py db_worker`) run as
subprocesses on a temporary SQLite database. This process creates the imports as the landing's
Import button does (`eid.returns.preview` + `eid.returns.confirm`, which enqueue the task), and
reads the rows: an import's completion time is its row's finished_at - created_at (confirm to
version published), both written by the same clock.

Measured in one run, on the same worker process, one after the other (after one warm-up import):
1. alone: N normal imports (synthetic media of --mb MiB each) confirmed at once;
2. with the drip: one import whose media link drips at --drip-bps bytes/s (the sandbox's throttle
   fault; 50 bytes/s is what held the landed code's worker for 800 s) is confirmed and its copy
   under way first, then N normal imports confirmed at once.
Ratio = p95 completion with the drip / p95 alone (nearest rank). Then the drip's outcome: how
long its copy ran before the copy watch stopped it, and what its row says (reason, next try).
The worker runs the production defaults of what is measured (EID_WORKER_COPY_SLOTS,
EID_EXPORT_MIN_BYTES_PER_SECOND, EID_EXPORT_RATE_WINDOW_SECONDS, ...), printed below.
With --before, a third phase runs the drip and N normal imports again on a second worker set up
as the landed code behaved (copies in the task: EID_WORKER_COPY_SLOTS=0; no minimum rate:
EID_EXPORT_MIN_BYTES_PER_SECOND=0) and says how many normal imports were done after 60 s.
Every finished copy is checked: its S3 object has the sandbox's sha256. Exits 0 after a completed
measurement (1 if an import failed or a copy was wrong): it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time

import requests

from ._common import (
    BUCKET, PY, Stack, free_port, percentile, run_benchmark, setup_django_here, site_env, start_s3,
    start_sandbox,
)

MiB = 1024 * 1024
WORKER = [PY, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"]
MEASURED = ("EID_WORKER_COPY_SLOTS", "EID_WORKER_BUSY_RETRY_SECONDS", "EID_EXPORT_MIN_BYTES_PER_SECOND",
            "EID_EXPORT_RATE_WINDOW_SECONDS", "EID_EXPORT_DEADLINE_BASE_SECONDS", "EID_EXPORT_SLOW_RETRY_SECONDS")
BEFORE_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_fairness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--normal", type=int, default=10, help="normal imports in each phase (default 10)")
    parser.add_argument("--mb", type=int, default=8, help="media size of a normal import in MiB (default 8)")
    parser.add_argument("--drip-bps", type=int, default=50, help="the dripping link's bytes per second (default 50)")
    parser.add_argument("--before", action="store_true",
                        help=f"also run the drip against a worker that copies in the task with no minimum "
                             f"rate, as the landed code did (adds about {BEFORE_SECONDS:.0f} s)")
    args = parser.parse_args(argv)
    if args.normal < 1 or args.mb < 1 or args.drip_bps < 1:
        parser.error("--normal, --mb and --drip-bps must be >= 1")

    return run_benchmark("eid-bench-fairness-", lambda stack: _run(stack, args))


def _run(stack: Stack, args) -> int:
    t0 = time.monotonic()
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), f"http://127.0.0.1:{free_port()}/descript/import/new")
    env = site_env(stack.tmp / "bench.sqlite3", sandbox, s3_url)
    for name in MEASURED:
        env.pop(name, None)  # the settings' own defaults: what production runs
    setup_django_here(env)
    from django.contrib.auth import get_user_model

    from eid import returns, storage
    from eid.conf import eid_settings
    from eid.ingest import object_key
    from eid.models import ReturnedExport

    s3 = storage.s3_client()
    s3.create_bucket(Bucket=BUCKET)
    user = get_user_model().objects.create_user("bench", password="bench-pass-1234")
    worker = stack.start("worker", WORKER, env)

    def share(title: str, nbytes: int, drip_bps: int | None = None) -> dict:
        r = requests.post(f"{sandbox}/_sandbox/shares", timeout=60, json={
            "title": title, "media_bytes": nbytes, "seed": title, "render_seconds": 0})
        if r.status_code != 201:
            raise RuntimeError(f"sandbox share: HTTP {r.status_code} {r.text[:200]}")
        made = r.json()
        if drip_bps:
            rule = {"path": f"/media/{made['share_id']}/audio.m4a", "throttle_bps": drip_bps}
            f = requests.post(f"{sandbox}/_sandbox/faults", timeout=10, json=rule)
            if f.status_code != 201:
                raise RuntimeError(f"sandbox fault: HTTP {f.status_code} {f.text[:200]}")
        return made

    def confirm(made: dict):
        export, created = returns.confirm(user, returns.preview(user, returns.clean_share_url(made["share_url"])))
        assert created, "confirm found an existing import for a fresh share"
        return export.pk

    def wait(predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stack.check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")

    def settled(ids) -> bool:
        return not ReturnedExport.objects.filter(pk__in=ids, state__in=["waiting", "copying"]).exists()

    problems: list[str] = []

    def completions(ids, shares) -> list[float]:
        seconds = []
        for export_id, made in zip(ids, shares):
            row = ReturnedExport.objects.get(pk=export_id)
            if row.state != "done":
                problems.append(f"import {export_id} is {row.state}: {row.reason}")
                continue
            seconds.append((row.finished_at - row.created_at).total_seconds())
            digest = hashlib.sha256()
            for piece in s3.get_object(Bucket=BUCKET, Key=object_key(row, "audio"))["Body"].iter_chunks(MiB):
                digest.update(piece)
            if digest.hexdigest() != made["media_sha256"]:
                problems.append(f"import {export_id}: the stored audio's sha256 is not the sandbox's")
        return seconds

    def copying(export_id) -> bool:
        row = ReturnedExport.objects.get(pk=export_id)
        return row.state == "copying" and row.lease_token is not None and row.bytes_total is not None

    def normal_batch(tag: str) -> tuple[list, list[dict]]:
        shares = [share(f"{tag}-{n}", args.mb * MiB + n) for n in range(args.normal)]
        return [confirm(made) for made in shares], shares

    def drip_outcome(export_id, copy_started: float, timeout: float) -> dict:
        def released():
            row = ReturnedExport.objects.get(pk=export_id)
            return row if row.lease_token is None or not row.is_active else None

        row = wait(released, timeout, "the copy watch to stop the dripping copy")
        return {"row": row, "ran": time.monotonic() - copy_started}

    print(f"S3 {s3_url} (moto), sandbox {sandbox}, one worker: {' '.join(WORKER[1:])} (pid {worker.pid}), "
          f"all subprocesses; SQLite; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.normal} normal imports of {args.mb} MiB, one drip at {args.drip_bps} bytes/s; "
          f"set-up took {time.monotonic() - t0:.1f} s", flush=True)
    print("worker settings (the defaults): " + ", ".join(f"{n}={getattr(eid_settings, n):g}" for n in MEASURED),
          flush=True)

    # 0. warm-up (not measured): the worker's first copy pays for its imports, clients and connections
    warm_ids = [confirm(share("warm-up", args.mb * MiB))]
    wait(lambda: settled(warm_ids), 120, "the warm-up import")
    print(f"  warm-up import: {ReturnedExport.objects.get(pk=warm_ids[0]).state} (not measured)", flush=True)

    # 1. alone
    started = time.monotonic()
    alone_ids, alone_shares = normal_batch("alone")
    wait(lambda: settled(alone_ids), 600, "the normal imports alone")
    alone = completions(alone_ids, alone_shares)
    print(f"  alone: {len(alone)} of {args.normal} done in {time.monotonic() - started:.1f} s", flush=True)

    # 2. with the drip
    drip_share = share("drip", 1 * MiB, drip_bps=args.drip_bps)
    drip_id = confirm(drip_share)
    wait(lambda: copying(drip_id), 60, "the dripping copy to start")
    drip_started = time.monotonic()
    started = time.monotonic()
    with_ids, with_shares = normal_batch("with-drip")
    wait(lambda: settled(with_ids), 600, "the normal imports with the drip")
    drip_then = ReturnedExport.objects.get(pk=drip_id)
    with_drip = completions(with_ids, with_shares)
    print(f"  with the drip: {len(with_drip)} of {args.normal} done in {time.monotonic() - started:.1f} s; the drip "
          f"then: {drip_then.state}, attempt {drip_then.attempts}, {drip_then.bytes_copied} bytes copied, "
          f"{'still copying' if drip_then.lease_token else 'released'}", flush=True)
    window = float(eid_settings.EID_EXPORT_RATE_WINDOW_SECONDS)
    outcome = drip_outcome(drip_id, drip_started, window + 60)

    before = None
    if args.before:
        before_env = dict(env, EID_WORKER_COPY_SLOTS="0", EID_EXPORT_MIN_BYTES_PER_SECOND="0")
        worker.terminate()  # SIGTERM: it has no copy left (the drip was released)
        worker.wait(timeout=30)
        stack.procs = [entry for entry in stack.procs if entry[1] is not worker]  # stopped on purpose
        stack.start("worker-before", WORKER, before_env)
        b_drip = confirm(share("before-drip", 1 * MiB, drip_bps=args.drip_bps))
        wait(lambda: copying(b_drip), 60, "the dripping copy to start (before)")
        b_ids, _b_shares = normal_batch("before")
        time.sleep(BEFORE_SECONDS)
        done = ReturnedExport.objects.filter(pk__in=b_ids, state="done").count()
        b_row = ReturnedExport.objects.get(pk=b_drip)
        before = (done, b_row)
    stack.check_alive()

    # --- report ---------------------------------------------------------------------------------
    print("\nCompletion time of a normal import (confirm to version published), seconds")
    print(f"  {'':<15} {'n':>3} {'median':>7} {'p95':>7} {'max':>7}")
    for label, values in (("alone", alone), ("with the drip", with_drip)):
        if values:
            print(f"  {label:<15} {len(values):>3} {statistics.median(values):>7.2f} {percentile(values, 95):>7.2f} "
                  f"{max(values):>7.2f}")
    if alone and with_drip:
        ratio = percentile(with_drip, 95) / percentile(alone, 95)
        print(f"  p95 with the drip / p95 alone: {ratio:.2f}")

    row = outcome["row"]
    print("\nThe dripping import")
    print(f"  its copy ran {outcome['ran']:.1f} s (measured from when it was seen copying) and copied "
          f"{row.bytes_copied} of {row.bytes_total} bytes; still being copied when every normal import "
          f"had finished: {'yes' if drip_then.lease_token is not None else 'no'}")
    if row.is_active:
        wait_s = (row.next_check_at - row.updated_at).total_seconds() if row.next_check_at else float("nan")
        print(f"  stopped and released: state {row.state}, attempt {row.attempts} of 5, next try in {wait_s:.0f} s")
    else:
        print(f"  state {row.state}, attempts {row.attempts}")
    print(f"  reason shown: {row.reason!r}")

    if before is not None:
        done, b_row = before
        print(f"\nBefore (a worker with EID_WORKER_COPY_SLOTS=0 and EID_EXPORT_MIN_BYTES_PER_SECOND=0, as the landed code): "
              f"{done} of {args.normal} normal imports done {BEFORE_SECONDS:.0f} s after the drip started; the drip: "
              f"{b_row.state}, {b_row.bytes_copied} bytes copied")

    print("\nCorrectness")
    if problems:
        for p in problems:
            print(f"  WRONG: {p}")
    else:
        print(f"  all {len(alone) + len(with_drip)} normal imports done; every stored audio's sha256 matches the sandbox")
    sys.stdout.flush()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
