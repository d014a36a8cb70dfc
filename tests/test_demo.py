"""`make demo`'s supervisor (demo.run): it starts clean, everything starts, a click reaches the sandbox,
Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from demo.run import reset_database
from support import ROOT, free_port, wait_until


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def leave_a_previous_run(db: Path) -> None:
    """What an earlier `make demo` leaves behind: its database, listing media its S3 no longer has."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE left_by_the_previous_run (key TEXT)")
        conn.execute("INSERT INTO left_by_the_previous_run VALUES ('demo/interview/mix.wav')")
    conn.close()
    (db.parent / f"{db.name}-wal").write_bytes(b"stale write-ahead log")


@pytest.fixture
def demo(tmp_path):
    ports = {"DEMO_PORT": free_port(), "SANDBOX_PORT": free_port(), "S3_PORT": free_port()}
    db = tmp_path / "demo.sqlite3"
    leave_a_previous_run(db)
    env = dict(os.environ, PYTHONUNBUFFERED="1", DATABASE_URL=f"sqlite:///{db}",
               **{k: str(v) for k, v in ports.items()})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen([sys.executable, "-m", "demo.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        yield proc, ports, lines, db
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_demo_serves_the_round_trip_start_and_stops_everything_on_ctrl_c(demo):
    proc, ports, lines, db = demo
    site = f"http://127.0.0.1:{ports['DEMO_PORT']}"
    wait_until(lambda: any("log in as" in line for line in lines) or proc.poll() is not None,
               timeout=90, interval=0.2, message="the demo to print where to click")
    output = "".join(lines)
    assert proc.poll() is None, output
    assert f"Open {site}/" in output and "demo / demo-pass-1234" in output
    assert f"{site}/admin/" in output and "operator / operator-pass-1234" in output
    # A second run starts clean: the previous run's database is gone, and the terminal says so.
    assert "clean slate: removed the previous run's database" in output
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "left_by_the_previous_run" not in tables and "library_recording" in tables

    browser = requests.Session()
    browser.get(f"{site}/accounts/login/", timeout=10)
    library = browser.post(f"{site}/accounts/login/", timeout=10, headers={"Referer": f"{site}/accounts/login/"},
                           data={"username": "demo", "password": "demo-pass-1234", "next": "/",
                                 "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert library.status_code == 200 and "Your recordings" in library.text
    for title in ("single WAV", "video", "three tracks"):
        assert title in library.text
    action = re.search(r'action="(/descript/edit/\d+/tracks/)"', library.text).group(1)
    click = browser.post(f"{site}{action}", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                         headers={"Referer": f"{site}/"}, allow_redirects=False, timeout=30)
    assert click.status_code == 302
    assert click.headers["Location"].startswith(f"http://127.0.0.1:{ports['SANDBOX_PORT']}/import?nonce=")
    imported = requests.get(click.headers["Location"], timeout=30)
    assert imported.text.count('data-status="ok"') == 3 and 'data-ok="true"' in imported.text

    children = children_of(proc.pid)
    assert len(children) >= 5  # S3, sandbox, site, worker, sweep
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "stopped everything the demo started" in "".join(lines)
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=15, message="the demo's processes to end")
    assert not any(listening(port) for port in ports.values())
    log = "".join(lines)
    assert "X-Amz-Signature=" not in log and "sandbox-token-demo" not in log


def test_the_reset_removes_only_an_sqlite_database_and_says_what_it_did(tmp_path):
    db = tmp_path / "demo.sqlite3"
    leave_a_previous_run(db)
    keep = tmp_path / "other.sqlite3"
    keep.write_bytes(b"not the demo's")

    said = reset_database(f"sqlite:///{db}")

    assert said.startswith("clean slate: removed the previous run's database")
    assert not db.exists() and not (tmp_path / "demo.sqlite3-wal").exists() and keep.exists()
    assert reset_database(f"sqlite:///{db}").startswith("clean slate: a new database")
    assert "leaves it as it is" in reset_database("postgres://postgres@127.0.0.1:5432/demo")
