"""Following one Descript job until it stops, at Descript's documented cadence.

The first GET comes 5 s after a submit (a job being watched by id is asked at once), then every
10 to 15 s (eid.jobs.cadence), never two GETs of one job closer than EID_JOBS_POLL_MIN_SECONDS.
A 429 is the client's to wait out (Retry-After, through the token's shared budget). Each change
is shown: a rich progress bar with Descript's label and percent on a terminal, a plain line
otherwise, a JSON line with --json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..cadence import earliest_poll, next_poll_delay
from ..client import Job, JobsClient
from .output import Output, job_data

TYPE_WORDS = {"import/project_media": "Import", "agent": "Underlord", "publish": "Publish"}


def watch_job(
    client: JobsClient,
    job_id: str,
    out: Output,
    *,
    just_submitted: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """Poll `job_id` until it stops, showing each change; returns the stopped job."""
    display = _Display(out)
    polls = 0
    last_polled: datetime | None = None
    seen: tuple[object, ...] | None = None
    try:
        if just_submitted:
            sleep(next_poll_delay(polls_so_far=0, callbacks_expected=False))
        while True:
            now = timezone.now()
            wait = (earliest_poll(last_polled, now) - now).total_seconds()
            if wait > 0:
                sleep(wait)
            last_polled = timezone.now()
            job = client.get_job(job_id)
            polls += 1
            progress = job.progress
            state = (job.job_state, progress and progress.label, progress and progress.percent,
                     job.result and job.result.status)
            if state != seen:
                display.show(job)
                seen = state
            if job.stopped:
                return job
            sleep(next_poll_delay(polls_so_far=polls, callbacks_expected=False))
    finally:
        display.close()


def state_words(job: Job) -> str:
    """One line for people: "Import of <id>: running, Transcribing 40%"."""
    words = f"{TYPE_WORDS.get(job.job_type, job.job_type)} job {job.job_id}: {job.job_state}"
    if job.progress and not job.stopped:
        if job.progress.label:
            words += f", {job.progress.label}"
        if job.progress.percent is not None:
            words += f" {job.progress.percent:.0f}%"
    if job.result:
        words += f" ({job.result.status})"
    return words


def summary_words(job: Job) -> str:
    """What a stopped job did, for people: per-file import results, the agent's answer, the share page."""
    lines = [state_words(job)]
    if job.project_url:
        lines.append(f"  project: {job.project_url}")
    result = job.result
    if result:
        for name, media in result.media_status.items():
            detail = f"{media.duration_seconds:.1f} s" if media.duration_seconds is not None else ""
            if media.status != "success":
                detail = media.error_message or "could not be imported"
            lines.append(f"  {name}: {media.status}" + (f" ({detail})" if detail else ""))
        for comp in result.created_compositions:
            lines.append(f"  composition: {comp.name or ''} {comp.id}".rstrip())
        if result.agent_response:
            lines.append(f"  Underlord: {result.agent_response}")
        if result.share_url:
            lines.append(f"  share page: {result.share_url}")
        if result.error_message:
            lines.append(f"  error: {result.error_message}")
    return "\n".join(lines)


class _Display:
    """JSON lines, plain lines, or a live bar: chosen once from --json and whether it is a terminal."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if not out.json_mode and out.live():
            self.progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), console=Console(file=out.raw_words_stream()),
            )
            self.progress.start()

    def show(self, job: Job) -> None:
        if self.out.json_mode:
            self.out.emit(job_data(job))
            return
        if self.progress is None:
            self.out.say(state_words(job))
            return
        label = f"{TYPE_WORDS.get(job.job_type, job.job_type)}: {job.job_state}"
        if job.progress and job.progress.label and not job.stopped:
            label += f", {job.progress.label}"
        percent = job.progress.percent if job.progress and not job.stopped else None
        total: float | None = 100.0 if percent is not None or job.stopped else None
        completed = 100 if job.stopped else round(percent or 0)
        if self.task is None:
            self.task = self.progress.add_task(label, total=total, completed=completed)
        else:
            self.progress.update(self.task, description=label, total=total, completed=completed)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()

