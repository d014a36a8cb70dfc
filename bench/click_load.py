"""Does a slow Descript slow the site? Clicks under load, the library beside them, the click's overhead.

    .venv/bin/python -m bench.click_load [--seconds 10] [--conns 200] [--n 40] [--sqlite]

Set-up, all on free loopback ports and stopped at the end: moto's S3 server and the Descript
sandbox as their own processes; a scratch PostgreSQL database on 127.0.0.1:5432 when one answers
(created and dropped here; the site's psycopg pool, as in production), else a temporary SQLite
file (--sqlite forces it); `migrate` and the demo seed (user `demo`, a 1-file and a 3-file
recording); the site under uvicorn exactly as the Dockerfile runs it (2 workers,
--limit-concurrency 1000), with bench/settings.py: the demo's settings with per-user throttles
raised (so the server is measured, not the throttle) and one extra route, the floor view
(bench/proxyview.py). Load comes from Debian's `wrk` (1 thread, keep-alive, redirects not
followed; bench/load.lua sets the method, the session cookie, the CSRF header and Referer), which
costs little CPU. Every load phase runs a fixed time; the run takes about three minutes.

Printed, from one run (issue 8):
1. clicks/s at --conns concurrent clients with Descript answering the schema POST in 250 ms, and
   in 10 ms (the sandbox's latency fault), 1-file recording;
2. the library page's own rate (logged-in GET /) on the same server, same wrk, same concurrency,
   measured before and after the clicks (their mean is used); each phase starts once the site has
   finished the requests the previous one left in flight (CpuMeter.drain); ratio clicks/s / min(conns/latency,
   library rate): target >= 0.8 at 250 ms;
3. the library page's p95 (wrk at --lib-conns) while every schema POST hangs and --conns clients
   keep clicking (each click after a random 0-8 s pause, so that arrivals are steady rather than
   200 at once every 8 s), over its idle p95 (mean of before and after): target <= 2;
4. the click's overhead: median click latency over the median of the floor view (same server,
   same schema to the same sandbox, then 302; it signs fresh URLs but does not HEAD or write
   rows), at 100 ms upstream, sequential, N rounds interleaved in rotating order: 1 file target
   <= 1.05, 3 files <= 1.10. Also printed: the sandbox answered directly, and the floor with URLs
   signed once (what signing costs).
And the errors: every click must be answered 302 (no 5xx) and recorded once as a Handoff row
(rows are counted against the requests wrk sent and answered); CPU per answer by process
(site, S3, sandbox, PostgreSQL, wrk, the rest of the machine) for each load phase.
Exits 0 after a completed measurement, whether targets are met or not: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import requests

from ._common import (
    PY, ROOT, SANDBOX_TOKEN, ScratchDatabase, Stack, descendants, ensure_wrk, free_port, machine_busy_seconds,
    percentile, postgres_reachable, print_command, process_cpu_seconds, processes_named, sigterm_as_interrupt,
    site_env, start_s3, start_sandbox,
)

SCHEMA_PATH = "/v1/edit_in_descript/schema"
USER, PASSWORD = "demo", "demo-pass-1234"  # demo/seed.py
CLIENT_UA = "PartnerBackend/1.0 (+Edit in Descript)"  # what eid/client.py sends
LUA = ROOT / "bench" / "load.lua"
WORKERS = 2  # the Dockerfile's WEB_CONCURRENCY
TARGET_RATIO, TARGET_HANG = 0.8, 2.0
TARGET_OVERHEAD = {1: 1.05, 3: 1.10}
CLICK_READ_TIMEOUT = 8.0  # DESCRIPT_READ_TIMEOUT's default: how long a click waits on a hanging Descript


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


# --- the site's pages -----------------------------------------------------------------------


class _Library(HTMLParser):
    """Recording sections of the library page: id, title, option forms and their CSRF token."""

    def __init__(self) -> None:
        super().__init__()
        self.recordings: dict[int, dict] = {}
        self._current: int | None = None
        self._in_h2 = False
        self.csrf = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("data-recording"):
            self._current = int(a["data-recording"])
            self.recordings[self._current] = {"title": "", "actions": []}
        elif tag == "h2" and self._current is not None:
            self._in_h2 = True
        elif tag == "form" and self._current is not None:
            m = re.fullmatch(r"/descript/edit/(\d+)/([\w-]+)/", a.get("action") or "")
            if m and (a.get("method") or "").lower() == "post":
                self.recordings[self._current]["actions"].append((m.group(2), m.group(0)))
        elif tag == "input" and a.get("name") == "csrfmiddlewaretoken" and not self.csrf:
            self.csrf = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        elif tag == "section":
            self._current = None

    def handle_data(self, data):
        if self._in_h2 and self._current is not None:
            self.recordings[self._current]["title"] += data.strip()


def _login(site: str) -> requests.Session:
    s = requests.Session()
    r = s.get(f"{site}/accounts/login/", timeout=10)
    r.raise_for_status()
    token = s.cookies.get("csrftoken")
    if not token:
        raise RuntimeError("the login page set no csrftoken cookie (SESSION/CSRF_COOKIE_SECURE?)")
    r = s.post(
        f"{site}/accounts/login/",
        data={"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/"},
        headers={"Referer": f"{site}/accounts/login/"},
        allow_redirects=False, timeout=10,
    )
    if r.status_code != 302 or "sessionid" not in s.cookies:
        raise RuntimeError(f"login failed: HTTP {r.status_code}")
    return s


def _find_cases(site: str, browser: requests.Session) -> dict[int, dict]:
    """The seeded 1-file (mix) and 3-file (tracks) recordings, from the library page."""
    r = browser.get(f"{site}/", timeout=10)
    r.raise_for_status()
    page = _Library()
    page.feed(r.text)
    cases: dict[int, dict] = {}
    for rid, rec in page.recordings.items():
        slugs = dict(rec["actions"])
        if "tracks" in slugs and "(three tracks)" in rec["title"] and 3 not in cases:
            cases[3] = {"label": "3 files (tracks)", "id": rid, "option": "tracks", "files": 3, "title": rec["title"]}
        if "mix" in slugs and "single WAV" in rec["title"] and 1 not in cases:
            cases[1] = {"label": "1 file (mix)", "id": rid, "option": "mix", "files": 1, "title": rec["title"]}
    if len(cases) != 2:
        raise RuntimeError(f"library page: could not find the seeded recordings/forms in {page.recordings}")
    for case in cases.values():
        case["click"] = f"/descript/edit/{case['id']}/{case['option']}/"
        case["floor"] = f"/bench/floor/{case['id']}/{case['option']}/"
    return cases


# --- the site's Handoff rows ----------------------------------------------------------------


class Handoffs:
    """Reads eid_handoff from the site's database (SQLite file or PostgreSQL), read-only use."""

    def __init__(self, *, sqlite_path: Path | None = None, database_url: str = "") -> None:
        self.sqlite_path, self.database_url = sqlite_path, database_url

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.database_url:
            import psycopg  # the site's own driver (requirements.txt)

            with psycopg.connect(self.database_url, autocommit=True) as pg:
                return pg.execute(sql, params).fetchall()
        lite = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=20)
        try:
            return lite.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            lite.close()

    def last_id(self) -> int:
        return self._rows("SELECT COALESCE(MAX(id), 0) FROM eid_handoff")[0][0]

    def outcomes_after(self, row_id: int) -> Counter:
        return Counter(dict(self._rows(
            "SELECT outcome, COUNT(*) FROM eid_handoff WHERE id > %s GROUP BY outcome", (row_id,))))

    def settle(self, row_id: int, expected: int, timeout: float, quiet: float = 2.0) -> Counter:
        """Outcomes of the rows after `row_id`, once `expected` rows exist, or no row came for
        `quiet` seconds (requests cut off by wrk's stop may never reach the view), or after `timeout`."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            outcomes = self.outcomes_after(row_id)
            count, now = sum(outcomes.values()), time.monotonic()
            if count != last:
                last, last_change = count, now
            if count >= expected or now > deadline or now - last_change >= quiet:
                return outcomes
            time.sleep(0.25)

    def spans(self, item_ref: str, row_id: int) -> list[tuple[float, float, str]]:
        """(finished - started in ms, upstream_latency_ms, outcome) of an item's rows after `row_id`."""
        out = []
        for started, finished, upstream, outcome in self._rows(
                "SELECT started_at, finished_at, upstream_latency_ms, outcome FROM eid_handoff "
                "WHERE item_ref = %s AND id > %s ORDER BY id", (item_ref, row_id)):
            if finished is None or upstream is None:
                out.append((float("nan"), float("nan"), outcome))
                continue
            s = started if isinstance(started, datetime) else datetime.fromisoformat(str(started))
            f = finished if isinstance(finished, datetime) else datetime.fromisoformat(str(finished))
            out.append(((f - s).total_seconds() * 1000.0, float(upstream), outcome))
        return out


# --- CPU by process -------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by the site (uvicorn and its workers), moto, the sandbox, PostgreSQL and wrk."""

    def __init__(self, site_pid: int, moto_pid: int, sandbox_pid: int, database: str = "") -> None:
        self.site_pid, self.moto_pid, self.sandbox_pid, self.database = site_pid, moto_pid, sandbox_pid, database

    def _postgres(self) -> dict[int, float]:
        """CPU of the PostgreSQL backends serving this run's database (their title names it), by pid."""
        if not self.database:
            return {}
        found = {}
        for pid in processes_named("postgres"):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f" {self.database} " in f" {title} ":
                found[pid] = process_cpu_seconds(pid)
        return found

    def snapshot(self) -> dict:
        site = [self.site_pid, *descendants(self.site_pid)]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: only wrk runs end here
        return {
            "site": sum(process_cpu_seconds(p) for p in site),
            "S3 (moto)": process_cpu_seconds(self.moto_pid),
            "sandbox": process_cpu_seconds(self.sandbox_pid),
            "PostgreSQL": self._postgres(),
            "wrk": children.ru_utime + children.ru_stime,
            "this script": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
            "machine": machine_busy_seconds(),
            "wall": time.monotonic(),
        }

    def drain(self, limit: float = 60.0) -> float:
        """Wait until the site has finished what the last phase left it (seconds waited).

        wrk stops with --conns requests in flight, and the server goes on answering them after
        wrk has hung up (a synchronous view is not interrupted): 200 library pages at 25 ms of CPU
        each are seconds of both cores. Without this, a phase that follows one without its own
        settle step (the library's) started while the site still served the previous phase.
        Quiet: the site used under 5 % of a core over two half-second looks in a row.
        """
        started = time.monotonic()
        quiet = 0
        last = self.snapshot()["site"]
        while quiet < 2 and time.monotonic() - started < limit:
            time.sleep(0.5)
            now = self.snapshot()["site"]
            quiet = quiet + 1 if now - last < 0.025 else 0
            last = now
        return time.monotonic() - started

    @staticmethod
    def diff(before: dict, after: dict) -> dict[str, float]:
        d = {k: after[k] - before[k] for k in before if k != "PostgreSQL"}
        # Backends that ended during the phase are left out; those that began count from zero.
        d["PostgreSQL"] = sum(cpu - before["PostgreSQL"].get(pid, 0.0) for pid, cpu in after["PostgreSQL"].items())
        named = sum(v for k, v in d.items() if k not in ("machine", "wall"))
        d["rest of machine"] = max(0.0, d["machine"] - named)
        return d


CPU_COLUMNS = ["site", "S3 (moto)", "sandbox", "PostgreSQL", "wrk", "rest of machine"]


# --- wrk ------------------------------------------------------------------------------------


class Wrk:
    def __init__(self, binary: str, site: str, cookie: str, csrf: str) -> None:
        self.binary, self.site, self.cookie, self.csrf = binary, site, cookie, csrf

    def command(self, method: str, path: str, conns: int, seconds: float, timeout: float = 30.0,
                spread_ms: int = 0) -> list[str]:
        return [self.binary, "-t1", f"-c{conns}", f"-d{seconds:g}s", f"--timeout={timeout:g}s", "-s", str(LUA),
                f"{self.site}{path}", "--", method, self.cookie, self.csrf, f"{self.site}/", str(spread_ms)]

    def start(self, method: str, path: str, conns: int, seconds: float, spread_ms: int = 0) -> subprocess.Popen:
        return subprocess.Popen(self.command(method, path, conns, seconds, spread_ms=spread_ms), cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    @staticmethod
    def finish(proc: subprocess.Popen, limit: float) -> dict:
        out, _ = proc.communicate(timeout=limit)
        text = out.decode(errors="replace")
        m = re.search(r"^BENCH_RESULT (\{.*\})$", text, re.M)
        if proc.returncode != 0 or not m:
            raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text[-2000:]}")
        result = json.loads(m.group(1))
        result["seconds"] = result["duration_us"] / 1e6
        result["rate"] = result["answered"] / result["seconds"]
        result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
        return result


def _site_errors(stack: Stack, limit: int = 15) -> list[str]:
    """The site's last error lines (uvicorn's log), to show with an unexpected answer."""
    try:
        lines = (stack.tmp / "uvicorn.log").read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if re.search(r"ERROR|Traceback|Error\b|Exception", line)][-limit:]


def _ms(us: float) -> str:
    return f"{us / 1000:.0f}" if us >= 10_000 else f"{us / 1000:.1f}"


def _statuses(st: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(st.items())) or "-"


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.click_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load phase")
    parser.add_argument("--conns", type=int, default=200, help="concurrent clients clicking (and loading the library)")
    parser.add_argument("--lib-conns", type=int, default=20, help="clients loading the library in the hang phase")
    parser.add_argument("--n", type=int, default=40, help="measured rounds of the overhead phase")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds before the overhead phase")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when PostgreSQL answers on 127.0.0.1:5432")
    args = parser.parse_args(argv)
    if args.seconds < 2 or args.conns < 1 or args.lib_conns < 1 or args.n < 1 or args.warmup < 1:
        parser.error("--seconds >= 2, and --conns, --lib-conns, --n, --warmup >= 1")

    print_command()
    sigterm_as_interrupt()
    stack = Stack("eid-bench-load-")
    scratch: list[ScratchDatabase] = []
    try:
        _run(stack, scratch, args)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the benchmark started", flush=True)
        return 130
    except RuntimeError as exc:  # a set-up that could not be done (wrk missing, a process that died...)
        print(f"\nbench.click_load stopped: {exc}", flush=True)
        return 1
    finally:
        stack.close()
        for db in scratch:
            db.drop()
    return 0


def _run(stack: Stack, scratch: list[ScratchDatabase], args) -> None:
    t0 = time.monotonic()
    wrk_binary = ensure_wrk()
    wrk_banner = subprocess.run([wrk_binary, "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
    wrk_version = wrk_banner.decode(errors="replace").splitlines()[0].split(" Copyright")[0]
    site_port = free_port()
    site = f"http://127.0.0.1:{site_port}"
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), f"{site}/descript/import/new")
    sqlite_path = stack.tmp / "bench.sqlite3"
    if not args.sqlite and postgres_reachable():
        scratch.append(ScratchDatabase())
        database = f"PostgreSQL on 127.0.0.1:5432, scratch database {scratch[0].name} (psycopg pool, at most 20 a process)"
        env = site_env(None, sandbox, s3_url, database_url=scratch[0].url, settings="bench.settings")
        rows = Handoffs(database_url=scratch[0].url)
    else:
        database = f"SQLite ({'--sqlite' if args.sqlite else 'no PostgreSQL answered on 127.0.0.1:5432'}; WAL, temporary file)"
        env = site_env(sqlite_path, sandbox, s3_url, settings="bench.settings")
        rows = Handoffs(sqlite_path=sqlite_path)
    stack.run("migrate", [PY, "manage.py", "migrate", "--no-input", "-v", "0"], env)
    stack.run("seed_demo", [PY, "manage.py", "seed_demo", "--without-debug"], env)
    server_args = ["uvicorn", "partner_site.asgi:application", "--host", "127.0.0.1", "--port", str(site_port),
                   "--workers", str(WORKERS), "--limit-concurrency", "1000", "--backlog", "2048", "--no-access-log"]
    uvicorn = stack.start("uvicorn", [PY, "-m", *server_args], env)
    stack.wait_http(f"{site}/accounts/login/", "uvicorn", ok=lambda r: r.status_code == 200)
    deadline = time.monotonic() + 30
    while len(descendants(uvicorn.pid)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.2)
    procs = {name: proc for name, proc, _log in stack.procs}
    cpu = CpuMeter(uvicorn.pid, procs["moto"].pid, procs["sandbox"].pid, scratch[0].name if scratch else "")

    browser = _login(site)
    cases = _find_cases(site, browser)
    csrf = browser.cookies.get("csrftoken") or ""
    cookie = f"sessionid={browser.cookies['sessionid']}; csrftoken={csrf}"
    wrk = Wrk(wrk_binary, site, cookie, csrf)
    load_case = cases[1]

    def fault(**rule) -> None:
        requests.delete(f"{sandbox}/_sandbox/faults", timeout=5).raise_for_status()
        if rule:
            r = requests.post(f"{sandbox}/_sandbox/faults", json={"path": SCHEMA_PATH, "method": "POST", **rule},
                              timeout=5)
            if r.status_code != 201:
                raise RuntimeError(f"sandbox fault {rule}: HTTP {r.status_code} {r.text[:200]}")
        requests.delete(f"{sandbox}/_sandbox/requests", timeout=5)  # the sandbox keeps only the last ones anyway

    print(f"site {site}: {' '.join(server_args)} (as the Dockerfile: "
          f"{WORKERS} workers, a thread per request), DEBUG=false, DJANGO_SETTINGS_MODULE=bench.settings "
          f"(demo settings, throttles raised, + the floor view)")
    print(f"database: {database}")
    print(f"Descript: the sandbox {sandbox} (python -m sandbox, its own process); S3: moto {s3_url} (python -m demo.s3)")
    print(f"load: {wrk_version}, 1 thread, keep-alive, script bench/load.lua; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} before the run; set-up took {time.monotonic() - t0:.1f} s", flush=True)
    print(f"clicks under load: POST {load_case['click']} ({load_case['label']}: “{load_case['title']}”)")
    print("example load command: " + " ".join(wrk.command("POST", load_case["click"], args.conns, args.seconds))
          .replace(cookie, "'<Cookie>'").replace(f" {csrf} ", " <csrftoken> "), flush=True)

    # --- warm-up: every worker has served both kinds of request -----------------------------
    fault(latency_ms=10)
    for method, path in (("GET", "/"), ("POST", load_case["click"])):
        Wrk.finish(wrk.start(method, path, min(args.conns, 50), 3), 60)
    stack.check_alive()

    # --- 1, 2: throughput --------------------------------------------------------------------
    results: list[tuple[str, dict, dict, str]] = []  # (label, wrk result, cpu diff, kind)
    checks: list[str] = []
    all_clicks_ok = True

    drained: list[str] = []

    def phase(label: str, kind: str, method: str, path: str, conns: int) -> dict:
        nonlocal all_clicks_ok
        drained.append(f"{cpu.drain():.1f} s before {label}")
        first_row = rows.last_id()
        before = cpu.snapshot()
        result = Wrk.finish(wrk.start(method, path, conns, args.seconds), args.seconds + 60)
        used = CpuMeter.diff(before, cpu.snapshot())
        results.append((label, result, used, kind))
        stack.check_alive()
        if kind == "click":
            outcomes = rows.settle(first_row, result["issued"], timeout=10)
            n_rows = sum(outcomes.values())
            ok = (set(result["statuses"]) == {302} and outcomes.keys() == {"ok"}
                  and result["answered"] <= n_rows <= result["issued"])
            all_clicks_ok &= ok
            checks.append(f"  {label}: {result['issued']} sent, {result['answered']} answered "
                          f"({_statuses(result['statuses'])}), {result['issued'] - result['answered']} in flight when "
                          f"wrk stopped; Handoff rows {n_rows} ({_statuses(dict(outcomes))}): "
                          + ("every answer a 302, answered <= rows <= sent, all ok" if ok else "NOT AS EXPECTED"))
        return result

    fault()
    lib1 = phase("library GET / (before)", "library", "GET", "/", args.conns)
    fault(latency_ms=250)
    c250 = phase("clicks, Descript 250 ms", "click", "POST", load_case["click"], args.conns)
    fault(latency_ms=10)
    c10 = phase("clicks, Descript 10 ms", "click", "POST", load_case["click"], args.conns)
    fault()
    lib2 = phase("library GET / (after)", "library", "GET", "/", args.conns)

    print(f"\n1-2. throughput: {args.conns} concurrent clients, {args.seconds:g} s a phase, one after another")
    head = (f"{'phase':<26} {'answers':>7} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  answers by status")
    print(head)
    print("-" * len(head))
    for label, r, _used, _kind in results:
        print(f"{label:<26} {r['answered']:>7} {r['rate']:>7.1f} {_ms(r['p50_us']):>7} {_ms(r['p95_us']):>7} "
              f"{_ms(r['p99_us']):>7}  {_statuses(r['statuses'])}"
              + (f"; socket errors {r['errors']}" if any(r["errors"].values()) else ""))
    print("each phase began once the site had finished the previous one's requests (waited "
          + ", ".join(drained) + ")")
    lib_rate = (lib1["rate"] + lib2["rate"]) / 2
    print(f"library rate: {lib1['rate']:.1f}/s before, {lib2['rate']:.1f}/s after the clicks; mean {lib_rate:.1f}/s")
    ratios = {}
    for latency, r in ((250, c250), (10, c10)):
        clicks = r["statuses"].get(302, 0) / r["seconds"]
        bound = args.conns / (latency / 1000)
        ratios[latency] = clicks / min(bound, lib_rate)
        target = (f"target >= {TARGET_RATIO}: {_verdict(ratios[latency] >= TARGET_RATIO)}" if latency == 250
                  else "(no target)")
        print(f"  Descript {latency:>3} ms: {clicks:.1f} clicks/s (302s) / min({args.conns} waits of {latency} ms "
              f"= {bound:.0f}/s, library {lib_rate:.1f}/s) = {ratios[latency]:.3f}  {target}")

    print("\nCPU per answer in each phase (ms of CPU, by process), and the machine's busy cores:")
    head = f"{'phase':<26} " + " ".join(f"{c:>10}" for c in CPU_COLUMNS) + f" {'busy cores':>10}"
    print(head)
    print("-" * len(head))
    for label, r, used, _kind in results:
        n = max(1, r["answered"])
        print(f"{label:<26} " + " ".join(f"{used[c] * 1000 / n:>10.2f}" for c in CPU_COLUMNS)
              + f" {used['machine'] / used['wall']:>7.2f}/{os.cpu_count()}")
    print("  site = uvicorn and its workers; PostgreSQL = the backends serving this run's database (0 on SQLite: "
          "in the site's processes); rest = whatever else ran (other users' jobs, PostgreSQL's shared writers).")
    own = {label: (used["site"] + used["PostgreSQL"]) * 1000 / max(1, r["answered"])
           for label, r, used, _kind in results}
    lib_own = (own["library GET / (before)"] + own["library GET / (after)"]) / 2
    standins = sum(used[c] for label, r, used, _k in results if label == "clicks, Descript 250 ms"
                   for c in ("S3 (moto)", "sandbox")) * 1000 / max(1, c250["answered"])
    print(f"  the site's own CPU (site + PostgreSQL) per click at 250 ms: {own['clicks, Descript 250 ms']:.1f} ms, "
          f"per library page: {lib_own:.1f} ms; the stand-ins for S3 and Descript add {standins:.1f} ms a click on "
          f"this machine. Were they elsewhere, a CPU-bound server would do about "
          f"{lib_own / own['clicks, Descript 250 ms']:.2f} clicks per library page (an estimate from the CPU "
          "figures, not a measurement).")

    # --- 3: the library while Descript hangs -------------------------------------------------
    hang_s = CLICK_READ_TIMEOUT + 2  # longer than the click waits: the click gives up first (503)
    fault()
    cpu.drain()
    idle1 = Wrk.finish(wrk.start("GET", "/", args.lib_conns, args.seconds), args.seconds + 60)
    fault(hang_seconds=hang_s)
    cpu.drain()
    first_row = rows.last_id()
    before = cpu.snapshot()
    # Each click waits a random 0..8 s before it is sent, so the clients fall out of step: clicks arrive
    # steadily instead of 200 at once every 8 s (a closed loop whose requests all last 8 s stays in step).
    spread_ms = int(CLICK_READ_TIMEOUT * 1000)
    ramp = CLICK_READ_TIMEOUT
    clicking = wrk.start("POST", load_case["click"], args.conns, ramp + args.seconds + 2, spread_ms=spread_ms)
    time.sleep(ramp)  # the first clicks are timing out before the library is measured
    hung = Wrk.finish(wrk.start("GET", "/", args.lib_conns, args.seconds), args.seconds + 60)
    hang_clicks = Wrk.finish(clicking, ramp + args.seconds + 60)
    hang_click_seconds = ramp + args.seconds + 2
    hang_cpu = CpuMeter.diff(before, cpu.snapshot())
    stack.check_alive()
    hang_outcomes = rows.settle(first_row, hang_clicks["issued"], timeout=CLICK_READ_TIMEOUT + 6,
                                quiet=CLICK_READ_TIMEOUT + 1)
    fault()
    cpu.drain()
    idle2 = Wrk.finish(wrk.start("GET", "/", args.lib_conns, args.seconds), args.seconds + 60)
    stack.check_alive()

    print(f"\n3. the library while Descript hangs: every schema POST held {hang_s:g} s (the click gives up after "
          f"its {CLICK_READ_TIMEOUT:g} s read timeout, 503); {args.conns} clients keep clicking, each click sent "
          f"after a random 0-{spread_ms / 1000:g} s pause (steady arrivals, not bursts of {args.conns}); the library "
          f"measured with {args.lib_conns} clients for {args.seconds:g} s, starting {ramp:g} s into the clicks")
    head = f"{'library GET /':<26} {'answers':>7} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  answers by status"
    print(head)
    print("-" * len(head))
    for label, r in (("idle (before)", idle1), ("Descript hangs", hung), ("idle (after)", idle2)):
        print(f"{label:<26} {r['answered']:>7} {r['rate']:>7.1f} {_ms(r['p50_us']):>7} {_ms(r['p95_us']):>7} "
              f"{_ms(r['p99_us']):>7}  {_statuses(r['statuses'])}")
    idle_p95 = (idle1["p95_us"] + idle2["p95_us"]) / 2
    hang_ratio = hung["p95_us"] / idle_p95
    print(f"  p95 while hanging / idle p95 (mean of before and after) = {_ms(hung['p95_us'])} / {_ms(idle_p95)} ms "
          f"= {hang_ratio:.3f}  target <= {TARGET_HANG}: {_verdict(hang_ratio <= TARGET_HANG)}")
    n_hang_rows = sum(hang_outcomes.values())
    hang_ok = (set(hang_clicks["statuses"]) <= {503} and hang_outcomes.keys() <= {"timeout"}
               and hang_clicks["answered"] <= n_hang_rows <= hang_clicks["issued"])
    print(f"  clicks while hanging: {hang_clicks['issued']} sent in {hang_click_seconds:g} s "
          f"({hang_clicks['issued'] / hang_click_seconds:.1f}/s), {hang_clicks['answered']} answered "
          f"({_statuses(hang_clicks['statuses'])}; p50 {_ms(hang_clicks['p50_us'])} ms); Handoff rows {n_hang_rows} "
          f"({_statuses(dict(hang_outcomes))}): "
          + ("every answer the 503 'Descript is taking too long', answered <= rows <= sent" if hang_ok
             else "NOT AS EXPECTED"))
    n = max(1, hung["answered"] + hang_clicks["answered"])
    print("  CPU over the hang phase (ms per answer, library and clicks together): "
          + ", ".join(f"{c} {hang_cpu[c] * 1000 / n:.2f}" for c in CPU_COLUMNS)
          + f"; busy cores {hang_cpu['machine'] / hang_cpu['wall']:.2f}/{os.cpu_count()}")

    # --- errors ------------------------------------------------------------------------------
    print("\nerrors: every click answered 302 and recorded once (rows counted against what wrk sent and answered; "
          "requests cut off by wrk's stop may or may not have reached the view):")
    for line in checks:
        print(line)
    print(f"  => {'no 5xx, every answer a 302, every answered click has its row' if all_clicks_ok else 'NOT AS EXPECTED'}",
          flush=True)
    library_5xx = any(status >= 500 for r in (lib1, lib2, idle1, hung, idle2) for status in r["statuses"])
    if not (all_clicks_ok and hang_ok) or library_5xx:
        print("  the site's last error lines (uvicorn's log):")
        for line in _site_errors(stack) or ["(none)"]:
            print("    " + line)

    # --- 4: the click's overhead -------------------------------------------------------------
    _overhead(site, sandbox, browser, csrf, cases, rows, fault, args)


def _overhead(site, sandbox, browser, csrf, cases, rows: Handoffs, fault, args) -> None:
    latency = 100
    fault(latency_ms=latency)
    direct = requests.Session()
    direct.headers.update({"User-Agent": CLIENT_UA, "Accept": "application/json",
                           "Authorization": f"Bearer {SANDBOX_TOKEN}", "Content-Type": "application/json"})

    def timed(fn) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        response = fn()
        _ = response.content  # the whole answer, as a browser waits for it
        return (time.perf_counter() - started) * 1000.0, response

    def site_post(path: str) -> float:
        ms, resp = timed(lambda: browser.post(f"{site}{path}", data={"csrfmiddlewaretoken": csrf},
                                              headers={"Referer": f"{site}/"}, allow_redirects=False, timeout=(3, 30)))
        location = resp.headers.get("Location", "")
        if resp.status_code != 302 or not location.startswith(f"{sandbox}/import?nonce="):
            raise RuntimeError(f"POST {path} answered {resp.status_code} -> {location!r}: {resp.text[:300]}")
        return ms

    def call(case) -> float:
        ms, resp = timed(lambda: direct.post(f"{sandbox}{SCHEMA_PATH}", data=case["body"], timeout=(3, 30)))
        if resp.status_code != 201 or "/import?nonce=" not in resp.json().get("url", ""):
            raise RuntimeError(f"direct schema POST answered {resp.status_code}: {resp.text[:300]}")
        return ms

    series = {
        "click": lambda c: site_post(c["click"]),
        "floor": lambda c: site_post(c["floor"]),
        "floor, URLs signed once": lambda c: site_post(c["floor"] + "?sign=once"),
        "sandbox directly": call,
    }
    # Warm-up clicks; the exact bodies the site sent become the direct calls' bodies.
    for _ in range(args.warmup):
        for case in cases.values():
            series["click"](case)
    sent = requests.get(f"{sandbox}/_sandbox/requests", params={"path": SCHEMA_PATH}, timeout=5).json()
    for case in cases.values():
        bodies = [e["json"] for e in sent if e["method"] == "POST" and isinstance(e.get("json"), dict)
                  and len(e["json"]["project_schema"]["files"]) == case["files"]]
        if not bodies:
            raise RuntimeError(f"no schema POST with {case['files']} files recorded by the sandbox")
        case["body"] = json.dumps(bodies[-1], separators=(",", ":"))
        for _ in range(args.warmup):
            for name, fn in series.items():
                if name != "click":
                    fn(case)

    first_row = rows.last_id()
    times: dict[int, dict[str, list[float]]] = {k: {name: [] for name in series} for k in cases}
    names = list(series)
    started = time.monotonic()
    for i in range(args.n):
        for k in (sorted(cases) if i % 2 == 0 else sorted(cases, reverse=True)):
            order = names[i % len(names):] + names[:i % len(names)]  # each series first in turn
            for name in order:
                times[k][name].append(series[name](cases[k]))
    loop_s = time.monotonic() - started

    print(f"\n4. the click's overhead: Descript answers in {latency} ms; one client, sequential; {args.n} rounds "
          f"in {loop_s:.1f} s after {args.warmup} warm-up rounds; in each round every series runs once per "
          f"recording, the series' order rotating")
    head = (f"{'recording':<17} {'series':<24} {'median ms':>9} {'p90 ms':>7}  {'click / this':>12}")
    print(head)
    print("-" * len(head))
    for k, case in sorted(cases.items()):
        click_med = statistics.median(times[k]["click"])
        for name in names:
            values = times[k][name]
            med = statistics.median(values)
            versus = "" if name == "click" else f"{click_med / med:>12.3f}"
            print(f"{case['label'] if name == 'click' else '':<17} {name:<24} {med:>9.1f} "
                  f"{percentile(values, 90):>7.1f}  {versus}")
    print("overhead = median click / median floor (the floor signs fresh URLs per request, as any site must; "
          "it neither HEADs nor writes rows):")
    for k, case in sorted(cases.items()):
        ratio = statistics.median(times[k]["click"]) / statistics.median(times[k]["floor"])
        print(f"  {case['label']}: {ratio:.3f}  target <= {TARGET_OVERHEAD[k]}: {_verdict(ratio <= TARGET_OVERHEAD[k])}"
              f"  (click {statistics.median(times[k]['click']) - statistics.median(times[k]['floor']):+.1f} ms "
              f"over the floor; floor {statistics.median(times[k]['floor']) - statistics.median(times[k]['sandbox directly']):+.1f}"
              f" ms over the sandbox answered directly)")

    print("where a click's time goes (medians; server side from the Handoff rows of the measured clicks):")
    for k, case in sorted(cases.items()):
        spans = [s for s in rows.spans(str(case["id"]), first_row)]
        outcomes = Counter(s[2] for s in spans)
        n_clicks = len(times[k]["click"])
        if len(spans) != n_clicks or set(outcomes) != {"ok"}:
            print(f"  {case['label']}: {n_clicks} clicks but {len(spans)} rows ({_statuses(dict(outcomes))}): NOT AS EXPECTED")
            continue
        click_med = statistics.median(times[k]["click"])
        span = statistics.median(s[0] for s in spans)
        upstream = statistics.median(s[1] for s in spans)
        print(f"  {case['label']}: click {click_med:.1f} ms = {click_med - span:.1f} outside the row's span "
              f"+ {span - upstream:.1f} in it besides the schema POST + {upstream:.1f} the schema POST as the "
              f"site timed it; {len(spans)} rows for {n_clicks} clicks, all ok")
    print("  outside the span: HTTP, uvicorn, Django's middleware, the throttle, the recording query, and the "
          "Handoff row's INSERT (finished_at is stamped before the row is saved); in the span besides the POST: "
          "presigning, the HEADs the POST did not hide, the hand-back of pooled connections")
    print(f"  load average after the overhead phase: {os.getloadavg()[0]:.2f}")
    for case in cases.values():
        print(f"  {case['label']}: recording {case['id']} “{case['title']}”, click POST {case['click']}, "
              f"floor POST {case['floor']}, schema body {len(case['body'])} bytes")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
