"""Tracking Descript's jobs: API calls and worker CPU per auto-edit, with callbacks and by polling alone.

    .venv/bin/python -m bench.jobs_tracking [--auto-edits 200] [--workers 2] [--scale 5] [--database-url URL]

moto's S3 server, the Descript sandbox, the site (uvicorn, one process: it receives the
callbacks) and --workers task workers (`manage.py db_worker`) run as subprocesses on a temporary
SQLite database (or the PostgreSQL database of --database-url, migrated here). This process
makes one recording per auto-edit (a small WAV in the bucket) and starts them all as one batch
(eid.jobs.machine.start_batch, max_in_flight = --auto-edits, so all are in flight at once), the
way the admin, the API and the CLI do; the workers take each through import, Underlord, publish
and the copy home as a new version.

Two runs of the same batch, one after the other, each on fresh workers and a reset sandbox:
1. with callbacks: the sandbox POSTs each job's callback to the site (EID_JOBS_CALLBACK_BASE);
   polls are only the fallback (EID_JOBS_POLL_WITH_CALLBACKS_SECONDS);
2. polling alone: no callbacks come and the base is empty; Descript's documented cadence.

Time is scaled. Every job takes 30 to 90 s of sandbox time (import, agent and publish: 30 s plus
a uniform 0 to 60 s), and the sandbox runs --scale times faster than the clock; the site's poll
cadence is divided by the same factor (first poll 5/scale s, then 10/scale to 15/scale s, never
under 3/scale s for one job, the callback fallback every 60/scale s), so the number of polls a
job gets, and the ratio between the modes, are those of real time. The cadence reaches the site
and the workers the way production sets it: EID_JOBS_POLL_* in the environment, read by
partner_site/settings.py (the processes run demo.settings). The task queue's own poll
(db_worker --interval, 1 s in `make demo`) is scaled too. What cannot be scaled is each call's
and each task's own cost, which counts for --scale times more sandbox seconds: the "in sandbox
seconds" line says how far the cadence held (unloaded, submit -> first poll would be 5 s and
the spacing 10 to 15 s; polling alone, a stopped job is seen about 6 s later on average).

The default scale is 5. At 30x, 200 auto-edits polled every 0.4 s each ask two cores for more
than they can do: the polls fall behind, so polling alone makes fewer calls than it would in
real time and the ratio between the modes is undercounted (the run prints a NOTE when the median
spacing is more than 10% over 12.5 s). Measured on two cores: at 30x the median spacing was
17.3 s of sandbox time, 11.8 polls per auto-edit and a ratio of 2.0; at 5x, 13.7 s (within the
10 to 15 s), 15.7 polls and 2.3, each mode taking 1 to 2 minutes. The rate budget and
the in-flight bounds are set out of the way (EID_JOBS_RATE_PER_MINUTE, EID_JOBS_MAX_IN_FLIGHT):
at a real 300 calls a minute, 200 jobs polled every 12.5 s would be held back by the budget, and
that is not what is measured.

Figures, per mode: Descript API calls per auto-edit counted from the sandbox's request record
(every /v1/ request: the jobs API's submits, polls and lists, cross-checked with the JobStep
counters, plus the way back's one published_projects call per edit brought home), the ratio
polling / callbacks, the share of polls that found nothing new, two ways: JobStep.polls_unchanged
/ polls (same state, label and percent as the poll before: the sandbox's percent moves
continuously, as Descript's does, so this stays near 0) and the polls that found the job still
running (from the record and each job's stop time: every poll but the one that sees the end),
the callbacks received, worker CPU seconds per auto-edit (user + system time of the worker
processes from /proc, from the batch's start to its end; their start-up is not counted; the
task queue's idle polling is measured for 2 s before the batch and given, and taken out in
"net"), the site's CPU per auto-edit (it answers the callbacks), and the wall time. Exits 0 after a completed measurement, 1 if any auto-edit did
not end done: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import requests

from ._common import (
    BUCKET, PY, Stack, descendants, free_port, percentile, process_cpu_seconds, run_benchmark, setup_django_here,
    site_env, start_s3, start_sandbox,
)

# The task queue's own poll, as `make demo` runs it (1 s), scaled like the rest; not under 0.02 s.
WORKER_INTERVAL, WORKER_INTERVAL_FLOOR = 1.0, 0.02
JOB_SECONDS, JITTER_SECONDS = 30.0, 60.0  # each job: 30 to 90 s of sandbox time
# Descript's cadence in real seconds (FACTS, "The jobs API"), divided by --scale for the site.
POLL_FIRST, POLL_LOW, POLL_HIGH, POLL_MIN, POLL_WITH_CALLBACKS = 5.0, 10.0, 15.0, 3.0, 60.0
PROMPT = "Remove filler words and long pauses"
MODES = ("callbacks", "polling")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs_tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--auto-edits", type=int, default=200, help="auto-edits in flight at once (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="db_worker processes (default 2)")
    parser.add_argument("--scale", type=float, default=5.0,
                        help="sandbox time runs this many times faster, and the poll cadence with it (default 5)")
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of a temporary SQLite file")
    parser.add_argument("--max-seconds", type=float, default=900.0,
                        help="give up waiting for one run's auto-edits after this long (default 900)")
    args = parser.parse_args(argv)
    if args.auto_edits < 1 or args.workers < 1 or args.scale <= 0:
        parser.error("--auto-edits and --workers must be >= 1, --scale > 0")

    return run_benchmark("eid-bench-jobs-", lambda stack: _run(stack, args))


def _cadence_env(scale: float, n: int) -> dict[str, str]:
    return {
        "EID_JOBS_POLL_FIRST_SECONDS": f"{POLL_FIRST / scale:.6g}",
        "EID_JOBS_POLL_SECONDS": f"{POLL_LOW / scale:.6g},{POLL_HIGH / scale:.6g}",
        "EID_JOBS_POLL_MIN_SECONDS": f"{POLL_MIN / scale:.6g}",
        "EID_JOBS_POLL_WITH_CALLBACKS_SECONDS": f"{POLL_WITH_CALLBACKS / scale:.6g}",
        "EID_JOBS_MAX_IN_FLIGHT": str(n),
        "EID_JOBS_BATCH_IN_FLIGHT": str(n),
        "EID_JOBS_RATE_PER_MINUTE": "1000000",
        "EID_JOBS_GIVE_UP_SECONDS": "86400",
        "EID_JOBS_STALE_SECONDS": "86400",  # no sweep runs; nothing should look stale
    }


def _cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(p) for pid in pids for p in (pid, *descendants(pid)))


def _sandbox(url: str, method: str, path: str, **kwargs: Any) -> Any:
    answer = requests.request(method, f"{url}{path}", timeout=120, **kwargs)
    if answer.status_code >= 300:
        raise RuntimeError(f"sandbox {method} {path}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json() if answer.content else None


def _run(stack: Stack, args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    n, scale = args.auto_edits, args.scale
    s3_url = start_s3(stack, dict(os.environ))
    site_port = free_port()
    site = f"http://127.0.0.1:{site_port}"
    sandbox = start_sandbox(stack, dict(os.environ), f"{site}/descript/import/new")
    env = site_env(stack.tmp / "bench.sqlite3", sandbox, s3_url, database_url=args.database_url)
    env.update(_cadence_env(scale, n))
    env["EID_JOBS_CALLBACK_BASE"] = ""
    setup_django_here(env)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from demo.media import wav_bytes
    from eid import storage
    from partner_site.library.models import MediaFile, Recording

    s3 = storage.s3_client()
    s3.create_bucket(Bucket=BUCKET)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password="bench-pass-12345678")
    media = wav_bytes(0.2, 330)
    items = []
    for i in range(n):
        recording = Recording.objects.create(owner=user, title=f"Episode {i}")
        key = f"bench/episode-{i}.wav"
        s3.put_object(Bucket=BUCKET, Key=key, Body=media, ContentType="audio/wav")
        MediaFile.objects.create(recording=recording, role="mix", key=key)
        items.append((user, str(recording.pk)))
    connection.close()

    site_proc = stack.start("site", [PY, "-m", "uvicorn", "partner_site.asgi:application", "--host", "127.0.0.1",
                                     "--port", str(site_port), "--workers", "1", "--no-access-log",
                                     "--limit-concurrency", "1000"], env)
    stack.wait_http(f"{site}/accounts/login/", "the site", ok=lambda r: r.status_code == 200)
    print(f"S3 {s3_url} (moto), sandbox {sandbox}, site {site} (uvicorn, 1 process), {args.workers} db_worker "
          f"process(es), all subprocesses; database {connection.vendor}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; {n} auto-edits in flight at once; jobs of {JOB_SECONDS:g} to "
          f"{JOB_SECONDS + JITTER_SECONDS:g} s of sandbox time at {scale:g}x; set-up took "
          f"{time.monotonic() - t0:.1f} s", flush=True)

    results: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        results[mode] = _one_run(stack, args, mode, env, sandbox, site, site_proc.pid, items)
        _print_run(mode, results[mode], n, scale)
        if results[mode]["not_done"] and mode != MODES[-1]:
            print("  (going on with the next run: the figures above count the auto-edits that did not finish too)")

    cb, poll = results["callbacks"], results["polling"]
    print(f"\nSummary, {n} auto-edits at {scale:g}x (polling alone vs with callbacks):")
    print(f"  Descript API calls per auto-edit: {poll['calls'] / n:.2f} vs {cb['calls'] / n:.2f}, ratio polling / "
          f"callbacks {poll['calls'] / max(cb['calls'], 1):.2f} (jobs API alone: {poll['jobs_calls'] / n:.2f} vs "
          f"{cb['jobs_calls'] / n:.2f}, ratio {poll['jobs_calls'] / max(cb['jobs_calls'], 1):.2f})")
    print(f"  polls per auto-edit: {poll['polls'] / n:.2f} vs {cb['polls'] / n:.2f}; found the job still running: "
          f"{_share(poll['running'], poll['polls'])} vs {_share(cb['running'], cb['polls'])}; progress unchanged: "
          f"{_share(poll['unchanged'], poll['polls'])} vs {_share(cb['unchanged'], cb['polls'])}")
    print(f"  worker CPU per auto-edit: {_ms(poll['worker_cpu'], n)} vs {_ms(cb['worker_cpu'], n)} (net of the idle "
          f"task-queue polling: {_ms(poll['worker_cpu'] - poll['idle_cpu'], n)} vs "
          f"{_ms(cb['worker_cpu'] - cb['idle_cpu'], n)}); the site's: {_ms(poll['site_cpu'], n)} vs "
          f"{_ms(cb['site_cpu'], n)}")
    print(f"  wall time: {poll['wall']:.1f} s vs {cb['wall']:.1f} s", flush=True)
    spacing = poll["cadence"]["spacing"]
    if spacing and statistics.median(spacing) > (POLL_LOW + POLL_HIGH) / 2 * 1.1:
        print(f"  NOTE: the workers fell behind the cadence at {scale:g}x (median spacing between polls "
              f"{statistics.median(spacing):.1f} s of sandbox time, not {(POLL_LOW + POLL_HIGH) / 2:g}): polling alone "
              f"made fewer calls than it would in real time, so the ratio is a lower bound; a lower --scale "
              f"gives the real-time figure", flush=True)
    return 1 if any(r["not_done"] for r in results.values()) else 0


def _one_run(stack: Stack, args: argparse.Namespace, mode: str, env: dict[str, str], sandbox: str, site: str,
             site_pid: int, items: list[tuple[Any, str]]) -> dict[str, Any]:
    from django.db.models import Sum

    from eid.jobs.machine import batch_counts, start_batch
    from eid.jobs.models import AutoEdit, JobStep

    callbacks = mode == "callbacks"
    _sandbox(sandbox, "POST", "/_sandbox/reset")
    _sandbox(sandbox, "POST", "/_sandbox/jobs/config", json={
        "import_seconds": JOB_SECONDS, "agent_seconds": JOB_SECONDS, "publish_seconds": JOB_SECONDS,
        "jitter_seconds": JITTER_SECONDS, "time_scale": args.scale, "callbacks": callbacks})
    worker_env = dict(env, EID_JOBS_CALLBACK_BASE=site if callbacks else "")
    interval = f"{max(WORKER_INTERVAL_FLOOR, WORKER_INTERVAL / args.scale):.3g}"
    command = [PY, "manage.py", "db_worker", "--interval", interval, "--no-startup-delay"]
    workers = [stack.start(f"{mode}-worker{i}", command, worker_env) for i in range(args.workers)]
    time.sleep(3.0)  # the workers' start-up (Django, checks) is not what is measured
    stack.check_alive()
    pids = [w.pid for w in workers]
    idle_from = _cpu(pids)
    time.sleep(2.0)
    idle_rate = (_cpu(pids) - idle_from) / 2.0  # CPU seconds per second with nothing to do

    cpu_from, site_from = _cpu(pids), _cpu([site_pid])
    started = time.time()
    batch, outcomes = start_batch(items=items, prompt=PROMPT, via="cli", requested_by="bench",
                                  name=f"bench {mode}", max_in_flight=len(items))
    refused = [o for _, o in outcomes if not isinstance(o, AutoEdit)]
    if refused:
        raise RuntimeError(f"{len(refused)} auto-edit(s) refused at the start: {refused[0]}")
    rows = AutoEdit.objects.filter(batch=batch)
    deadline = time.monotonic() + args.max_seconds
    while rows.active().exists() and time.monotonic() < deadline:
        stack.check_alive()
        time.sleep(0.5)
    ended = time.time()
    worker_cpu, site_cpu = _cpu(pids) - cpu_from, _cpu([site_pid]) - site_from
    last = rows.exclude(finished_at=None).order_by("-finished_at").values_list("finished_at", flat=True).first()
    for worker in workers:
        stack.stop(worker)

    calls = _sandbox(sandbox, "GET", "/_sandbox/requests", params={"path": "/v1/"})
    jobs = _sandbox(sandbox, "GET", "/_sandbox/jobs")
    steps = JobStep.objects.filter(auto_edit__batch=batch)
    sums = steps.aggregate(calls=Sum("calls"), polls=Sum("polls"), unchanged=Sum("polls_unchanged"),
                           callbacks=Sum("callbacks"))
    counts = batch_counts(batch)
    jobs_api = [c for c in calls if c["path"].startswith("/v1/jobs")]
    return {
        "calls": len(calls),
        "jobs_calls": len(jobs_api),
        "kinds": _kinds(calls),
        "polls": sums["polls"] or 0,
        "unchanged": sums["unchanged"] or 0,
        "running": _polls_while_running(calls, jobs),
        "step_calls": sums["calls"] or 0,
        "step_callbacks": sums["callbacks"] or 0,
        "callbacks_sent": sum(1 for j in jobs for a in j["callback_attempts"] if 200 <= (a["status"] or 0) < 300),
        "jobs": len(jobs),
        "worker_cpu": worker_cpu,
        "idle_cpu": min(worker_cpu, idle_rate * (ended - started)),
        "site_cpu": site_cpu,
        "wall": (last.timestamp() if last else ended) - started,
        "counts": counts,
        "not_done": counts["total"] - counts["done"],
        "reasons": Counter(rows.exclude(state="done").values_list("reason", flat=True)),
        "cadence": _cadence(calls, jobs, args.scale),
    }


def _kinds(calls: list[dict[str, Any]]) -> Counter:
    kinds: Counter = Counter()
    for c in calls:
        if c["method"] == "POST" and c["path"].startswith("/v1/jobs/"):
            kinds["submits"] += 1
        elif c["method"] == "GET" and c["job_id"]:
            kinds["polls"] += 1
        elif c["method"] == "GET" and c["path"].rstrip("/") == "/v1/jobs":
            kinds["lists"] += 1
        elif c["path"].startswith("/v1/published_projects"):
            kinds["published_projects"] += 1
        else:
            kinds[f"{c['method']} {c['path']}"] += 1
    return kinds


def _stop(job: dict[str, Any]) -> float:
    """When the sandbox's job stopped (or will): cancelled, or its planned end once its work was done."""
    return job["cancelled_at"] or max(job["planned_stop"], job["work_done_at"] or job["planned_stop"])


def _polls_while_running(calls: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> int:
    """Answered polls that found their job not yet stopped (found nothing that lets the edit go on)."""
    stops = {job["job_id"]: _stop(job) for job in jobs}
    return sum(1 for c in calls if c["method"] == "GET" and c["job_id"] in stops and c["status"] == 200
               and c["at"] < stops[c["job_id"]])


def _cadence(calls: list[dict[str, Any]], jobs: list[dict[str, Any]], scale: float) -> dict[str, list[float]]:
    """In sandbox seconds: submit -> first poll, poll -> next poll of one job, job stopped -> the poll that saw it."""
    submitted: dict[str, float] = {}
    polls: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        if c["method"] == "POST" and c["job_id"]:
            submitted[c["job_id"]] = c["at"]
        elif c["method"] == "GET" and c["job_id"] and c["status"] == 200:
            polls[c["job_id"]].append(c["at"])
    first, spacing, seen = [], [], []
    for job in jobs:
        times = sorted(polls.get(job["job_id"], []))
        if not times:
            continue
        if job["job_id"] in submitted:
            first.append((times[0] - submitted[job["job_id"]]) * scale)
        spacing += [(b - a) * scale for a, b in zip(times, times[1:])]
        after = [t for t in times if t >= _stop(job)]
        if after:
            seen.append((after[0] - _stop(job)) * scale)
    return {"first": first, "spacing": spacing, "seen": seen}


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _ms(seconds: float, n: int) -> str:
    return f"{seconds / n * 1000:.0f} ms"


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"median {statistics.median(values):.1f} s, p95 {percentile(values, 95):.1f} s, "
            f"max {max(values):.1f} s (n={len(values)})")


def _print_run(mode: str, r: dict[str, Any], n: int, scale: float) -> None:
    title = "With callbacks" if mode == "callbacks" else "Polling alone (no callbacks)"
    counts = r["counts"]
    states = ", ".join(f"{counts[s]} {s}" for s in ("done", "failed", "cancelled") if counts[s] or s == "done")
    others = counts["total"] - sum(counts[s] for s in ("done", "failed", "cancelled"))
    print(f"\n{title}: {states}{f', {others} still running' if others else ''} of {n}; wall time {r['wall']:.1f} s "
          f"({r['wall'] * scale / 60:.1f} min of sandbox time)")
    for reason, k in r["reasons"].most_common(3):
        print(f"  not done ({k}): {reason or '(no reason yet)'}")
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(r["kinds"].items()))
    check = "equal" if r["step_calls"] == r["jobs_calls"] else "DIFFERENT"
    print(f"  Descript API calls (the sandbox's record): {r['calls']} = {r['calls'] / n:.2f} per auto-edit ({kinds}); "
          f"jobs API {r['jobs_calls']}, JobStep counters {r['step_calls']} ({check}); {r['jobs']} jobs at Descript")
    print(f"  polls: {r['polls']}; found the job still running: {r['running']} ({_share(r['running'], r['polls'])}); "
          f"progress unchanged since the poll before (JobStep.polls_unchanged): {r['unchanged']} "
          f"({_share(r['unchanged'], r['polls'])})")
    print(f"  callbacks: {r['callbacks_sent']} answered 2xx by the site, {r['step_callbacks']} counted on steps")
    print(f"  worker CPU: {r['worker_cpu']:.1f} s = {_ms(r['worker_cpu'], n)} per auto-edit; the task queue's idle "
          f"polling about {r['idle_cpu']:.1f} s of it, net {_ms(r['worker_cpu'] - r['idle_cpu'], n)} per auto-edit; "
          f"the site's CPU {r['site_cpu']:.1f} s = {_ms(r['site_cpu'], n)} per auto-edit")
    c = r["cadence"]
    print(f"  in sandbox seconds: submit -> first poll {_spread(c['first'])}; between polls of a job "
          f"{_spread(c['spacing'])}; job stopped -> the poll that saw it {_spread(c['seen'])}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
