"""What does the Edit in Descript click add on top of Descript's own answer time?

    .venv/bin/python -m bench.click_overhead [--n 40] [--latency-ms 100]

Starts moto's S3 server, the Descript sandbox (with a fixed latency on the schema endpoint) and
the site under gunicorn (2 workers x 4 threads) on free loopback ports, on a temporary SQLite
database with the demo seed. Then, interleaved in one loop so that machine noise hits both
alike, it times N clicks (POST /descript/edit/<id>/<option>/ -> 302 to the sandbox's import
link) and N direct schema POSTs to the sandbox with the very body the site sent, for a
1-file (mix) and a 3-file (tracks) recording. Prints medians, p90s, the overhead and the ratio
median click / median direct (target <= 1.05). Import links are never opened, so the sandbox
fetches nothing. Always exits 0 after a completed measurement: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import sys
import time
from datetime import datetime
from html.parser import HTMLParser

import requests

from ._common import (
    PY, SANDBOX_TOKEN, Stack, free_port, percentile, print_command, sigterm_as_interrupt, site_env,
    start_s3, start_sandbox,
)

SCHEMA_PATH = "/v1/edit_in_descript/schema"
TARGET = 1.05
USER, PASSWORD = "demo", "demo-pass-1234"  # demo/seed.py
CLIENT_UA = "PartnerBackend/1.0 (+Edit in Descript)"  # what eid/client.py sends


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
            self.recordings[self._current] = {"title": "", "actions": [], "labels": []}
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


def _find_cases(site: str, browser: requests.Session) -> tuple[str, list[dict]]:
    r = browser.get(f"{site}/", timeout=10)
    r.raise_for_status()
    page = _Library()
    page.feed(r.text)
    csrf = page.csrf or browser.cookies.get("csrftoken", "")
    single = tracks = None
    for rid, rec in page.recordings.items():
        slugs = dict(rec["actions"])
        if "tracks" in slugs and "(three tracks)" in rec["title"] and tracks is None:
            tracks = {"label": "3 files (tracks)", "id": rid, "option": "tracks", "action": slugs["tracks"],
                      "files": 3, "title": rec["title"]}
        if "mix" in slugs and "single WAV" in rec["title"] and single is None:
            single = {"label": "1 file (mix)", "id": rid, "option": "mix", "action": slugs["mix"],
                      "files": 1, "title": rec["title"]}
    if not (single and tracks and csrf):
        raise RuntimeError(f"library page: could not find the seeded recordings/forms in {page.recordings}")
    return csrf, [single, tracks]


def _handoff_breakdown(db_path, recording_id: int, n: int) -> dict[str, float] | None:
    """Medians over the last `n` Handoff rows of a recording (the measured clicks), from the site's DB.

    span = finished_at - started_at (HEAD checks, presigning and the schema POST);
    upstream = upstream_latency_ms, the schema POST as the site timed it.
    """
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT started_at, finished_at, upstream_latency_ms, outcome FROM eid_handoff "
            "WHERE recording_id = ? ORDER BY id DESC LIMIT ?", (recording_id, n)).fetchall()
    finally:
        con.close()
    if len(rows) < n or any(r[3] != "ok" or r[1] is None or r[2] is None for r in rows):
        return None
    spans = [(datetime.fromisoformat(str(f)) - datetime.fromisoformat(str(s))).total_seconds() * 1000
             for s, f, _u, _o in rows]
    return {"span": statistics.median(spans), "upstream": statistics.median(r[2] for r in rows)}


def _timed(fn) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = fn()
    _ = response.content  # the whole answer, as a browser would wait for it
    return (time.perf_counter() - started) * 1000.0, response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.click_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="measured clicks (and direct calls) per recording")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="sandbox latency on the schema POST")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop the measured loop after this long")
    args = parser.parse_args(argv)
    if args.n < 1 or args.warmup < 1:
        parser.error("--n and --warmup must be >= 1")

    print_command()
    sigterm_as_interrupt()
    stack = Stack("eid-bench-click-")
    try:
        _run(stack, args)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the benchmark started", flush=True)
        return 130
    finally:
        stack.close()
    return 0


def _run(stack: Stack, args) -> None:
    t0 = time.monotonic()
    site_port = free_port()
    site = f"http://127.0.0.1:{site_port}"
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), f"{site}/descript/import/new")
    env = site_env(stack.tmp / "bench.sqlite3", sandbox, s3_url)
    stack.run("migrate", [PY, "manage.py", "migrate", "--no-input", "-v", "0"], env)
    stack.run("seed_demo", [PY, "manage.py", "seed_demo", "--without-debug"], env)
    workers, threads = 2, 4
    stack.start("gunicorn", [PY, "-m", "gunicorn", "partner_site.wsgi", "-b", f"127.0.0.1:{site_port}",
                             "--workers", str(workers), "--threads", str(threads)], env)
    stack.wait_http(f"{site}/accounts/login/", "gunicorn", ok=lambda r: r.status_code == 200)

    r = requests.post(f"{sandbox}/_sandbox/faults", json={"path": SCHEMA_PATH, "latency_ms": args.latency_ms},
                      timeout=5)
    if r.status_code != 201:
        raise RuntimeError(f"could not set the sandbox latency fault: HTTP {r.status_code} {r.text[:200]}")

    browser = _login(site)
    csrf, cases = _find_cases(site, browser)
    print(f"site {site} (gunicorn {workers} workers x {threads} threads, DEBUG=false, SQLite), "
          f"sandbox {sandbox} (+{args.latency_ms:g} ms on POST {SCHEMA_PATH}), S3 {s3_url} (moto); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; set-up took {time.monotonic() - t0:.1f} s", flush=True)

    direct = requests.Session()
    direct.headers.update({"User-Agent": CLIENT_UA, "Accept": "application/json",
                           "Authorization": f"Bearer {SANDBOX_TOKEN}", "Content-Type": "application/json"})

    def click(case) -> float:
        ms, resp = _timed(lambda: browser.post(
            f"{site}{case['action']}", data={"csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{site}/"}, allow_redirects=False, timeout=(3, 30)))
        location = resp.headers.get("Location", "")
        if resp.status_code != 302 or not location.startswith(f"{sandbox}/import?nonce="):
            raise RuntimeError(f"click on {case['action']} answered {resp.status_code} -> {location!r}: "
                               f"{resp.text[:300]}")
        return ms

    def call(case) -> float:
        ms, resp = _timed(lambda: direct.post(f"{sandbox}{SCHEMA_PATH}", data=case["body"], timeout=(3, 30)))
        if resp.status_code != 201 or "/import?nonce=" not in resp.json().get("url", ""):
            raise RuntimeError(f"direct schema POST answered {resp.status_code}: {resp.text[:300]}")
        return ms

    # Warm-up clicks, then take the exact bodies the site sent as the direct calls' bodies.
    requests.delete(f"{sandbox}/_sandbox/requests", timeout=5)
    for _ in range(args.warmup):
        for case in cases:
            click(case)
    sent = requests.get(f"{sandbox}/_sandbox/requests", params={"path": SCHEMA_PATH}, timeout=5).json()
    for case in cases:
        bodies = [e["json"] for e in sent
                  if e["method"] == "POST" and isinstance(e.get("json"), dict)
                  and len(e["json"]["project_schema"]["files"]) == case["files"]]
        if len(bodies) != args.warmup:
            raise RuntimeError(f"expected {args.warmup} schema POSTs with {case['files']} files, saw {len(bodies)}")
        case["body"] = json.dumps(bodies[-1], separators=(",", ":"))
        case["body_bytes"] = len(case["body"])
        for _ in range(args.warmup):
            call(case)

    results = {c["label"]: {"click": [], "direct": []} for c in cases}
    started = time.monotonic()
    stopped_early = False
    for i in range(args.n):
        if time.monotonic() - started > args.max_seconds:
            stopped_early = True
            break
        # Alternate which case and which side goes first, so order effects cancel out too.
        for case in (cases if i % 2 == 0 else cases[::-1]):
            first, second = (("click", click), ("direct", call)) if i % 2 == 0 else (("direct", call), ("click", click))
            for side, fn in (first, second):
                results[case["label"]][side].append(fn(case))
    loop_seconds = time.monotonic() - started
    stack.check_alive()

    print(f"\n{args.n if not stopped_early else len(results[cases[0]['label']]['click'])} interleaved rounds "
          f"in {loop_seconds:.1f} s (after {args.warmup} warm-up rounds)"
          + (f"; STOPPED EARLY at the {args.max_seconds:g} s bound" if stopped_early else ""))
    header = (f"{'recording':<18} {'N':>3}  {'click med':>9}  {'click p90':>9}  {'direct med':>10}  "
              f"{'direct p90':>10}  {'overhead':>9}  {'ratio':>6}  target <= {TARGET}")
    print(header)
    print("-" * len(header))
    for case in cases:
        res = results[case["label"]]
        n = len(res["click"])
        cm, dm = statistics.median(res["click"]), statistics.median(res["direct"])
        ratio = cm / dm
        print(f"{case['label']:<18} {n:>3}  {cm:>6.1f} ms  {percentile(res['click'], 90):>6.1f} ms  "
              f"{dm:>7.1f} ms  {percentile(res['direct'], 90):>7.1f} ms  {cm - dm:>+6.1f} ms  {ratio:>6.3f}  "
              f"{'met' if ratio <= TARGET else 'NOT MET'}")
    print("\nratio = median click latency / median direct sandbox latency, both measured in this run; "
          "overhead = their difference.")
    print("\nwhere a click's time goes (medians; server side from the Handoff rows of the measured clicks):")
    print(f"{'recording':<18}  {'click':>8}  {'outside send_to_descript':>24}  {'checks+presign':>14}  "
          f"{'schema POST (site-timed)':>24}")
    for case in cases:
        res = results[case["label"]]
        cm = statistics.median(res["click"])
        b = _handoff_breakdown(stack.tmp / "bench.sqlite3", case["id"], len(res["click"]))
        if b is None:
            print(f"{case['label']:<18}  (Handoff rows not as expected; no breakdown)")
            continue
        print(f"{case['label']:<18}  {cm:>5.1f} ms  {cm - b['span']:>21.1f} ms  {b['span'] - b['upstream']:>11.1f} ms"
              f"  {b['upstream']:>21.1f} ms")
    print("  outside = HTTP + gunicorn + Django (session, auth, recording query, Handoff insert);"
          " checks+presign = S3 HEAD of every file (moto here) and SigV4 signing.")
    for case in cases:
        print(f"  {case['label']}: recording {case['id']} “{case['title']}”, POST {case['action']}, "
              f"schema body {case['body_bytes']} bytes")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
