"""A process's copy slots: imports copy on their own threads, a bounded number at a time.

A task worker (django-tasks-db's `db_worker`) runs one task at a time. If the task copied the
media itself, one slow media link would hold the worker, and every other user's import would
wait behind it. Instead the task hands the copy to a slot (`EID_WORKER_COPY_SLOTS` per
process) and returns, so the worker goes on taking tasks: other copies, render checks. When
every slot is busy the import waits on the queue, not in the worker (eid.ingest releases it and
the task is enqueued again a few seconds later); and when a copy ends, the import that has waited
longest for a slot is nudged at once (`on_free`), so a freed slot does not sit idle until then.

A copy keeps its lease and heartbeat on its own thread, as it would in the task. A process that
dies leaves a stale heartbeat, and the sweep hands the import to another worker, as before.

When the process exits (a worker stopped with SIGTERM or Ctrl-C), the slots are told to stop
before anything waits for threads: each copy stops within a moment (CopyStopped "shutdown"),
aborts its multipart upload, releases its import and queues it again for another worker. We
wait `EID_WORKER_STOP_GRACE_SECONDS` at most; copies still running then are left to the sweep,
and the process ends without waiting on them (s3transfer's pools would otherwise be joined at
exit, i.e. wait for a dripping download to finish).

The threads are daemon threads, so nothing else in the interpreter's shutdown waits for them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable

from django.db import close_old_connections, connection

from .conf import eid_settings

log = logging.getLogger(__name__)

class CopySlots:
    """At most `size` copies at once in this process, each on its own daemon thread."""

    def __init__(self, size: int, follow_up: Callable[[Any, Any], None], *, stop_grace: float = 5.0,
                 on_free: Callable[[int], None] | None = None) -> None:
        if size < 1:
            raise ValueError("a process needs at least one copy slot")
        self.size = size
        self.stop_grace = stop_grace
        self.stopping = threading.Event()
        self._follow_up = follow_up
        self._on_free = on_free
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._exit_hooked = False

    def busy(self) -> int:
        with self._lock:
            return len(self._threads)

    def has_room(self) -> bool:
        return not self.stopping.is_set() and self.busy() < self.size

    def try_start(self, export_id: Any, job: Callable[[threading.Event], Any]) -> bool:
        """Run `job(stop_event)` on a free slot's thread; False (and nothing started) when none is free.

        `job` returns when to look at the import again (a datetime) or None; `follow_up(export_id,
        when)` is then called on the same thread (the task module enqueues the nudge).
        """
        if self.stopping.is_set() or not self._free.acquire(blocking=False):
            return False
        thread = threading.Thread(target=self._run, args=(export_id, job), daemon=True,
                                  name=f"eid-copy-{export_id}")
        try:
            self._hook_exit()
            with self._lock:
                self._threads.add(thread)
            thread.start()
        except BaseException:
            with self._lock:
                self._threads.discard(thread)
            self._free.release()
            raise
        return True

    def _run(self, export_id: Any, job: Callable[[threading.Event], Any]) -> None:
        try:
            close_old_connections()
            when = job(self.stopping)
            if when is not None:
                self._follow_up(export_id, when)
        except BaseException:  # noqa: BLE001 - a thread has nobody to raise to; the row stays readable
            log.exception("export %s: copy thread failed", export_id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._free.release()
            if self._on_free is not None and not self.stopping.is_set():
                try:
                    self._on_free(self.size - self.busy())  # how many slots are free now
                except Exception:  # noqa: BLE001 - the waiting imports' own nudges still come
                    log.exception("nudging an import waiting for a copy slot failed")
            try:
                connection.close()  # this thread's connection goes back (to the pool, if there is one)
            except Exception:  # noqa: BLE001
                log.warning("export %s: closing the copy thread's database connection failed", export_id)

    def stop(self, grace: float | None = None) -> int:
        """Tell every copy to stop, wait up to `grace` seconds; the number still running."""
        self.stopping.set()
        deadline = time.monotonic() + (self.stop_grace if grace is None else grace)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for t in threads if t.is_alive())

    def _hook_exit(self) -> None:
        if self._exit_hooked:
            return
        self._exit_hooked = True
        # threading's exit hooks run before the interpreter joins any thread, and in reverse
        # order of registration: this one runs before concurrent.futures joins s3transfer's
        # pools (registered when it was imported, i.e. before us).
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(self._at_exit)
        else:  # pragma: no cover - every CPython since 3.9 has it
            import atexit

            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        if not self.busy():
            return
        log.info("stopping %s copy(ies) before exiting", self.busy())
        left = self.stop()
        if left:
            log.warning("%s copy(ies) did not stop within %g s; leaving them to the sweep", left, self.stop_grace)
            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # s3transfer's pools would be joined next: do not wait on a stuck download


def one_task_per_process() -> bool:
    """True in a process that ends with the task it runs (RQ's forking worker): no thread outlives it."""
    return bool(os.environ.get("RQ_JOB_ID") or os.environ.get("RQ_EXECUTION_ID"))


_slots: CopySlots | None = None
_slots_lock = threading.Lock()


def process_slots(follow_up: Callable[[Any, Any], None],
                  on_free: Callable[[int], None] | None = None) -> CopySlots | None:
    """This process's slots, made on first use; None when copies must run in the task itself.

    That is when EID_WORKER_COPY_SLOTS is 0, or in a process that ends with its task.
    """
    global _slots
    size = int(eid_settings.EID_WORKER_COPY_SLOTS)
    if size <= 0 or one_task_per_process():
        return None
    with _slots_lock:
        if _slots is None or _slots.size != size:
            if _slots is not None and _slots.busy():
                return _slots  # a change of setting takes effect once the running copies are done
            _slots = CopySlots(size, follow_up, on_free=on_free,
                               stop_grace=float(eid_settings.EID_WORKER_STOP_GRACE_SECONDS))
        return _slots
