"""Webhooks out: 1 000 version.created events to a local receiver, through real db_worker processes.

    .venv/bin/python -m bench.webhooks [--events 1000] [--workers 2] [--rate 25] [--database-url URL]

Django is set up in this process on a temporary SQLite database (or the PostgreSQL database of
--database-url, migrated here, which must have no webhook endpoint yet: the bench's events would
go to them too), with the site's own settings plus
EID_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 for the receiver. Each event lands as ingest lands a
version: in one transaction the adapter's store_edit makes a RecordingVersion of a real
recording and eid.webhooks.version_created writes the delivery (the outbox); the worker is
nudged when the transaction commits. "Landed" is the moment that commit returned.

Two runs of --events each: a burst (the events as fast as they can be made: the throughput, and
the latency of a backlog), then the same number paced at --rate a second (the latency of one
delivery when the workers keep up; --rate 0 skips it).

The receiver is an HTTP server on 127.0.0.1 in this process (a thread per request) that verifies
every signature with the standardwebhooks package, as a pipeline would, and answers 200. It
records when each 200 was written. Deliveries go out from --workers db_worker processes (the
database queue, polling every 0.05 s), each POST through eid.netsafe's checked connection.

Figures: deliveries per second (events / (last 200 - first landing)), the time from a version
landing to the receiver's 200 (median, p95, p99, max), attempts, and anything not delivered.
Exits 0 after a completed measurement (1 if a delivery was lost or failed a signature check):
it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ._common import PY, Stack, free_port, percentile, run_benchmark, setup_django_here, site_env


class Receiver:
    """Verifies each delivery with standardwebhooks and answers 200; keeps webhook-id -> time of the 200."""

    def __init__(self, secret: str) -> None:
        from standardwebhooks import Webhook, WebhookVerificationError

        self.answered: dict[str, float] = {}
        self.requests = 0
        self.bad_signatures = 0
        lock = threading.Lock()
        verifier = Webhook(secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    verifier.verify(body, dict(self.headers.items()), json_parse=False)
                    status = 200
                except WebhookVerificationError:
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.wfile.flush()
                done = time.time()
                with lock:
                    receiver.requests += 1
                    if status == 200:
                        receiver.answered.setdefault(self.headers["webhook-id"], done)
                    else:
                        receiver.bad_signatures += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="version.created events (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="db_worker processes (default 2)")
    parser.add_argument("--rate", type=float, default=25.0,
                        help="events per second of the paced run; 0: no paced run (default 25)")
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of a temporary SQLite file")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="give up waiting for deliveries after this long (default 300)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.workers < 1 or args.rate < 0:
        parser.error("--events and --workers must be >= 1, --rate >= 0")

    return run_benchmark("eid-bench-webhooks-", lambda stack: _run(stack, args))


def _run(stack: Stack, args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    env = site_env(stack.tmp / "bench.sqlite3", "http://127.0.0.1:9", "http://127.0.0.1:9")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    env.update({
        "EID_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the local receiver (an operator's allow-list)
        "EID_EXPORT_POLL_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
    })
    setup_django_here(env)
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from eid import webhooks
    from eid.content import ReturnedEdit, ReturnedFile, Source, get_adapter
    from eid.models import ReturnedExport
    from eid.webhooks.models import WebhookDelivery, WebhookEndpoint
    from partner_site.library.models import MediaFile, Recording

    if WebhookEndpoint.objects.exists():
        print("this database has webhook endpoints already: the bench's events would go to them too; "
              "use an empty database", flush=True)
        return 2
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password="bench-pass-12345678")
    recording = Recording.objects.create(owner=user, title="Bench show")
    MediaFile.objects.create(recording=recording, role="mix", key="bench/mix.wav")
    exports = ReturnedExport.objects.bulk_create(
        ReturnedExport(user=user, share_id=f"bench{i}", share_url=f"https://share.descript.com/view/bench{i}",
                       title=f"Cut {i}", match=ReturnedExport.Match.OWN_SOURCE, target_ref=str(recording.pk),
                       target_title=recording.title, state=ReturnedExport.State.COPYING)
        for i in range(args.events * (2 if args.rate else 1))
    )
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:1/placeholder", event_types=["version.created"])
    receiver = Receiver(endpoint.secret)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
    connection.close()  # the workers start on a quiet database

    for n in range(args.workers):
        stack.start(f"worker{n}", [PY, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"], env)
    time.sleep(3.0)  # the workers' start-up (Django, checks) is not what is measured
    stack.check_alive()
    engine = connection.vendor
    print(f"receiver {receiver.url} (this process, verifies every signature); {args.workers} db_worker "
          f"process(es); database {engine}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"set-up took {time.monotonic() - t0:.1f} s", flush=True)

    adapter = get_adapter()
    files = (ReturnedFile("audio", "returns/bench/audio.m4a", 4_812_345, "audio/mp4"),
             ReturnedFile("subtitles", "returns/bench/subtitles.vtt", 2_345, "text/vtt"))

    def phase(name: str, batch: list[ReturnedExport], rate: float) -> bool:
        receiver.answered.clear()
        landed: dict[int, float] = {}  # delivery id -> when its version's transaction committed
        started = time.time()
        for i, export in enumerate(batch):
            if rate:
                wait = started + i / rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            with transaction.atomic():  # as eid.ingest._publish_version: the version and its deliveries at once
                stored = adapter.store_edit(ReturnedEdit(user=user, title=export.title,
                                                         source=Source(str(recording.pk), recording.title),
                                                         files=files, duration_seconds=61.5))
                webhooks.version_created(export, stored, files, 61.5)
            at = time.time()
            newest = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-pk").values_list("pk", flat=True)[:1]
            landed[newest[0]] = at  # one endpoint: the newest delivery is this version's
        emitted = time.time() - started
        deadline = time.monotonic() + args.max_seconds
        while len(receiver.answered) < len(landed) and time.monotonic() < deadline:
            stack.check_alive()
            time.sleep(0.05)
        rows = dict(WebhookDelivery.objects.filter(pk__in=landed).values_list("pk", "webhook_id"))
        attempts = list(WebhookDelivery.objects.filter(pk__in=landed).values_list("attempts", flat=True))
        latencies = [receiver.answered[rows[pk]] - at for pk, at in landed.items()
                     if rows.get(pk) in receiver.answered]
        missing = len(landed) - len(latencies)
        print(f"\n{name}: {len(batch)} versions landed in {emitted:.2f} s ({len(batch) / emitted:.0f}/s)")
        print(f"  delivered {len(latencies)} of {len(landed)} ({missing} missing), {receiver.bad_signatures} bad "
              f"signature(s) so far; attempts per delivery: max {max(attempts)}")
        if not latencies:
            return False
        last = max(receiver.answered.values())
        first = min(landed.values())
        ms = sorted(x * 1000 for x in latencies)
        print(f"  throughput: {len(latencies) / (last - first):.1f} deliveries/s "
              f"(first landing to last 200: {last - first:.2f} s)")
        print(f"  version landed -> receiver's 200: median {statistics.median(ms):.0f} ms, "
              f"p95 {percentile(ms, 95):.0f} ms, p99 {percentile(ms, 99):.0f} ms, max {ms[-1]:.0f} ms", flush=True)
        return not missing

    ok = phase("Burst", exports[:args.events], 0.0)
    if args.rate:
        ok = phase(f"Paced at {args.rate:g}/s", exports[args.events:], args.rate) and ok
    receiver.close()
    return 0 if ok and not receiver.bad_signatures else 1


if __name__ == "__main__":
    sys.exit(main())
