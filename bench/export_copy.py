"""Bringing an edit back: copy a large media file from Descript into S3 through the worker code.

    .venv/bin/python -m bench.export_copy [--mb 200] [--pairs 6]

moto's S3 server and the Descript sandbox run as subprocesses (their memory is not counted);
the copy runs in this process with Django set up on a temporary SQLite database, exactly as
the task worker runs it: a synthetic share is published on the sandbox, then
`eid.returns.preview` + `eid.returns.confirm` create the ReturnedExport and `eid.ingest.advance`
is called until the row is done (render check, then `eid.copier.stream_to_s3`: a multipart
upload in 8 MiB parts). DESCRIPT_API_TOKEN is set to the sandbox's token, so the worker takes
its production path through the published_projects API.

Measured side by side in the same run, alternating (copy, baseline, baseline, copy, ...):
- the worker copy: wall time of the advance() calls, and peak RSS growth of this process
  (VmRSS sampled every 10 ms; baseline taken just before the copy, after a warm-up copy);
- a plain boto3 `upload_file` (default TransferConfig) of the same bytes from a file on disk
  to the same moto server.
Throughput ratio = baseline seconds / copy seconds (target >= 0.7), per adjacent pair (median) and
best vs best; RSS growth target < 50 MiB.
Every copy is checked: ReturnedExport done, RecordingVersion and asset present, S3 object of
the right size whose sha256 equals the sandbox's. Exits 0 after a completed measurement
(1 if a copy was wrong): it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import sys
import threading
import time

import requests

from ._common import (
    BUCKET, S3_KEY_ID, S3_SECRET, Stack, free_port, run_benchmark, setup_django_here, site_env, start_s3,
    start_sandbox,
)

MiB = 1024 * 1024
RSS_TARGET_MIB = 50
RATIO_TARGET = 0.7
WARMUP_BYTES = 16 * MiB


# --- RSS ------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset VmHWM (peak RSS) so it can cross-check the sampler; Linux >= 4.0."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS every `interval` seconds on a thread; `peak` is the largest sample (KiB)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib("VmRSS"))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = _status_kib("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib("VmRSS"))


# --- the bench --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_copy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="media size in MiB (default 200)")
    parser.add_argument("--pairs", type=int, default=6, help="(copy, baseline) pairs to measure (default 6)")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="start no new pair after this many seconds of measuring (default 120)")
    args = parser.parse_args(argv)
    if args.mb < 1 or args.pairs < 1:
        parser.error("--mb and --pairs must be >= 1")

    return run_benchmark("eid-bench-export-", lambda stack: _run(stack, args))


def _run(stack: Stack, args) -> int:
    t0 = time.monotonic()
    size = args.mb * MiB
    s3_url = start_s3(stack, dict(os.environ))
    sandbox = start_sandbox(stack, dict(os.environ), f"http://127.0.0.1:{free_port()}/descript/import/new")
    env = site_env(stack.tmp / "bench.sqlite3", sandbox, s3_url)
    setup_django_here(env)
    import boto3
    from botocore.config import Config
    from django.contrib.auth import get_user_model

    import eid.ingest
    from eid import returns, storage
    from eid.models import ReturnedExport
    from partner_site.library.models import RecordingVersion, VersionAsset
    from sandbox.media import synthetic_chunks

    s3 = storage.s3_client()
    s3.create_bucket(Bucket=BUCKET)
    user = get_user_model().objects.create_user("bench", password="bench-pass-1234")

    # Instrumentation only: time the streaming part of the copy inside advance().
    real_stream = eid.ingest.stream_to_s3
    stream_times: list[float] = []

    def timed_stream(*a, **kw):
        started = time.perf_counter()
        try:
            return real_stream(*a, **kw)
        finally:
            stream_times.append(time.perf_counter() - started)

    eid.ingest.stream_to_s3 = timed_stream

    def share(nbytes: int, title: str) -> dict:
        r = requests.post(f"{sandbox}/_sandbox/shares", timeout=60, json={
            "title": title, "media_bytes": nbytes, "seed": "bench", "render_seconds": 0})
        if r.status_code != 201:
            raise RuntimeError(f"sandbox share: HTTP {r.status_code} {r.text[:200]}")
        return r.json()

    def sha256_of(key: str) -> tuple[int, str]:
        digest, n = hashlib.sha256(), 0
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        for piece in body.iter_chunks(MiB):
            digest.update(piece)
            n += len(piece)
        return n, digest.hexdigest()

    def drop(prefix: str) -> None:
        """Free moto's memory between runs."""
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])

    def worker_copy(nbytes: int, title: str, verify: bool = True) -> dict:
        info = share(nbytes, title)
        preview = returns.preview(user, returns.clean_share_url(info["share_url"]))
        export, created = returns.confirm(user, preview)
        assert created, "confirm found an existing export for a fresh share"
        stream_times.clear()
        gc.collect()
        hwm_reset = _reset_hwm()
        baseline_kib = _status_kib("VmRSS")
        calls: list[float] = []
        deadline = time.monotonic() + 120
        with RssSampler() as sampler:
            for _ in range(10):  # bounded: with render_seconds 0 one call does it all
                started = time.perf_counter()
                step = eid.ingest.advance(export.pk)
                calls.append(time.perf_counter() - started)
                export.refresh_from_db()
                if export.state in (ReturnedExport.State.DONE, ReturnedExport.State.FAILED):
                    break
                if time.monotonic() > deadline:
                    break
                if step.run_again_at is not None:
                    from django.utils import timezone

                    time.sleep(min(5.0, max(0.0, (step.run_again_at - timezone.now()).total_seconds())))
        hwm_kib = _status_kib("VmHWM") if hwm_reset else None
        result = {
            "export": export, "calls": calls, "seconds": sum(calls), "stream": sum(stream_times),
            "baseline_kib": baseline_kib, "peak_kib": sampler.peak, "samples": sampler.samples, "hwm_kib": hwm_kib,
            "problems": [],
        }
        problems = result["problems"]
        if export.state != ReturnedExport.State.DONE:
            problems.append(f"export {export.pk} is {export.state!r}: {export.reason}")
            return result
        version = RecordingVersion.objects.filter(recording_id=int(export.result_ref or 0),
                                                  number=export.version_number).first()
        if version is None:
            problems.append("no RecordingVersion for the export")
        asset = VersionAsset.objects.filter(version=version, kind="audio").first() if version else None
        if asset is None or asset.size != nbytes:
            problems.append(f"audio asset missing or wrong size: {asset and asset.size}")
        if verify and asset is not None:
            head = s3.head_object(Bucket=BUCKET, Key=asset.key)
            got_size, got_sha = sha256_of(asset.key)
            if head["ContentLength"] != nbytes or got_size != nbytes:
                problems.append(f"S3 object {asset.key}: {head['ContentLength']}/{got_size} bytes, want {nbytes}")
            if got_sha != info["media_sha256"]:
                problems.append(f"S3 object {asset.key}: sha256 {got_sha} != sandbox {info['media_sha256']}")
            result["verified"] = f"{asset.key}: {got_size} bytes, sha256 {got_sha[:16]}… matches the sandbox"
            result["version"] = f"RecordingVersion {version.number} of recording {version.recording_id}" if version else ""
        drop(f"returns/{export.pk}/")
        return result

    plain = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                         aws_secret_access_key=S3_SECRET, config=Config(s3={"addressing_style": "path"}))

    base_growth: list[float] = []

    def baseline(path, nbytes: int, key: str) -> float:
        gc.collect()
        before = _status_kib("VmRSS")
        with RssSampler() as sampler:  # sampled too, so both sides pay the same (tiny) sampling cost
            started = time.perf_counter()
            plain.upload_file(str(path), BUCKET, key)  # default TransferConfig
            seconds = time.perf_counter() - started
        if nbytes == size:
            base_growth.append((sampler.peak - before) / 1024)
        got = plain.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        if got != nbytes:
            raise RuntimeError(f"baseline upload stored {got} bytes, want {nbytes}")
        plain.delete_object(Bucket=BUCKET, Key=key)
        return seconds

    # The same bytes on disk for the baseline.
    media_path = stack.tmp / "media.bin"
    with open(media_path, "wb") as f:
        for piece in synthetic_chunks("bench", size):
            f.write(piece)
    warm_path = stack.tmp / "warm.bin"
    with open(warm_path, "wb") as f:
        for piece in synthetic_chunks("bench", WARMUP_BYTES):
            f.write(piece)

    print(f"S3 {s3_url} (moto, subprocess), sandbox {sandbox} (subprocess), copy in this process "
          f"(pid {os.getpid()}); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; media {args.mb} MiB; set-up took {time.monotonic() - t0:.1f} s",
          flush=True)

    warm = worker_copy(WARMUP_BYTES, "bench warm-up", verify=True)
    if warm["problems"]:
        raise RuntimeError("warm-up copy failed: " + "; ".join(warm["problems"]))

    copies: list[dict] = []
    bases: list[float] = []
    warmed_baseline = False
    started = time.monotonic()
    stopped_early = False
    for k in range(args.pairs):
        if k and time.monotonic() - started > args.max_seconds:
            stopped_early = True
            break
        order = ("copy", "baseline") if k % 2 == 0 else ("baseline", "copy")  # ABBA: drift cancels
        for what in order:
            stack.check_alive()
            if what == "copy":
                copies.append(worker_copy(size, f"bench copy {k + 1}"))
                c = copies[-1]
                print(f"  copy {len(copies)}: {c['seconds']:.2f} s ({size / MiB / c['seconds']:.1f} MiB/s), "
                      f"RSS +{(c['peak_kib'] - c['baseline_kib']) / 1024:.1f} MiB"
                      + (f"  PROBLEMS: {c['problems']}" if c["problems"] else ""), flush=True)
            else:
                if not warmed_baseline:
                    baseline(warm_path, WARMUP_BYTES, "bench/warm.bin")
                    warmed_baseline = True
                bases.append(baseline(media_path, size, f"bench/baseline-{k}.bin"))
                print(f"  baseline {len(bases)}: {bases[-1]:.2f} s ({size / MiB / bases[-1]:.1f} MiB/s)", flush=True)
    stack.check_alive()
    elapsed = time.monotonic() - started

    # --- report ---------------------------------------------------------------------------------
    bad = [p for c in copies for p in c["problems"]]
    pairs = list(zip(copies, bases))
    print(f"\n{len(pairs)} (copy, baseline) pairs of {args.mb} MiB in {elapsed:.1f} s, order ABBA"
          + (f"; STOPPED EARLY at the {args.max_seconds:g} s bound" if stopped_early else ""))

    print("\nMemory (this process; moto and the sandbox are subprocesses and not counted)")
    for i, c in enumerate(copies, 1):
        growth = (c["peak_kib"] - c["baseline_kib"]) / 1024
        hwm = (f", VmHWM cross-check +{(c['hwm_kib'] - c['baseline_kib']) / 1024:.1f} MiB"
               if c["hwm_kib"] is not None else "")
        note = f" (first {args.mb} MiB transfer in this process: the clean figure)" if i == 1 else \
            " (after baseline uploads in this process)"
        print(f"  copy {i}: baseline RSS {c['baseline_kib'] / 1024:.1f} MiB, peak {c['peak_kib'] / 1024:.1f} MiB, "
              f"growth {growth:.1f} MiB over {c['samples']} samples{hwm}{note}")
    worst = max((c["peak_kib"] - c["baseline_kib"]) / 1024 for c in copies)
    if base_growth:
        print(f"  for reference, plain boto3 upload_file of the file: RSS growth "
              f"{', '.join(f'{g:.1f}' for g in base_growth)} MiB")
    print(f"  peak RSS growth (worst copy): {worst:.1f} MiB   target < {RSS_TARGET_MIB} MiB: "
          f"{'met' if worst < RSS_TARGET_MIB else 'NOT MET'}")

    print("\nThroughput (ratio = baseline seconds / copy seconds = copy MiB/s ÷ baseline MiB/s)")
    print(f"  {'pair':<5} {'copy s':>7} {'copy MiB/s':>10} {'(stream s)':>10}  {'baseline s':>10} {'base MiB/s':>10}  "
          f"{'ratio':>6}")
    ratios = []
    for i, (c, b) in enumerate(pairs, 1):
        ratio = b / c["seconds"]
        ratios.append(ratio)
        print(f"  {i:<5} {c['seconds']:>7.2f} {size / MiB / c['seconds']:>10.1f} {c['stream']:>10.2f}  {b:>10.2f} "
              f"{size / MiB / b:>10.1f}  {ratio:>6.3f}")
    best = min(bases) / min(c["seconds"] for c in copies)
    med = statistics.median(ratios)

    def verdict(x: float) -> str:
        return "met" if x >= RATIO_TARGET else "NOT MET"

    print(f"  median of pair ratios: {med:.3f} (target >= {RATIO_TARGET}: {verdict(med)});  "
          f"best copy vs best baseline: {best:.3f} (target >= {RATIO_TARGET}: {verdict(best)})")
    print("  copy s = the advance() call(s): published_projects check, media probes, the copy, captions, "
          "publishing the version; stream s = eid.copier.stream_to_s3 alone.")

    print("\nCorrectness")
    for i, c in enumerate(copies, 1):
        e = c["export"]
        if c["problems"]:
            print(f"  copy {i}: WRONG: {'; '.join(c['problems'])}")
        else:
            print(f"  copy {i}: export {e.pk} done after {len(c['calls'])} advance() call(s); {c.get('version')}; "
                  f"{c.get('verified')}")
    sys.stdout.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
