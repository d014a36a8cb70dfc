"""The Descript job subcommands: import, agent, publish, and jobs list|get|cancel|watch.

Each takes the parsed options and an Output, and returns an exit code or raises CliFailure; the
command turns either into the process's exit. Option names follow the openapi request fields.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ...conf import eid_settings
from ..client import MAX_LOOKBACK, JobCreated, JobsClient, JobsError, import_body
from .exits import CliFailure, ExitCode, for_job, from_jobs_error, worst
from .media import classify, parse_offset, plan_media
from .output import Output, job_data
from .watch import TYPE_WORDS, state_words, summary_words, watch_job

MAX_LIST = 10_000


def new_client() -> JobsClient:
    # The CLI waits (for the shared budget, for Retry-After) where a worker would reschedule.
    return JobsClient(wait_for_budget=True)


def run_import(opts: dict[str, Any], out: Output) -> ExitCode:
    sources = classify(opts["media"])
    offsets: dict[str, float] | None = None
    if opts["offset"] and not opts["multitrack"]:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", "--offset applies only with --multitrack.")
    if opts["multitrack"]:
        try:
            offsets = dict(parse_offset(spec) for spec in opts["offset"])
        except ValueError as exc:
            raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", str(exc)) from None
    plan = plan_media(sources, language=opts["language"] or eid_settings.EID_JOBS_LANGUAGE or None,
                      multitrack_offsets=offsets, composition_name=opts["composition"])
    project_name = opts["project_name"] or posixpath.splitext(plan.file_names[0])[0] or "Imported media"
    body = import_body(
        project_name=project_name, media=plan.add_media, compositions=plan.compositions or None,
        folder_name=opts["folder"] if opts["folder"] is not None else (eid_settings.EID_JOBS_FOLDER or None),
        team_access=opts["team_access"] or eid_settings.EID_JOBS_TEAM_ACCESS or None,
        callback_url=opts["callback_url"],
    )
    client = new_client()
    created = _submit(lambda: client.import_project_media(body))
    skipped_code = ExitCode.PARTIAL if plan.skipped else ExitCode.OK
    data = {**_created_data(created), "project_name": project_name, "media": plan.shown, "skipped": plan.skipped}
    lines = [f"Import job {created.job_id} started: project “{project_name}”"]
    if created.project_url:
        lines.append(f"  project: {created.project_url}")
    lines += [f"  {name}: {given}" for name, given in plan.shown.items()]
    lines += [f"  skipped {item['media']}: {item['reason']}" for item in plan.skipped]
    out.emit(data, "\n".join(lines))
    if not opts["wait"]:
        return skipped_code
    return worst(skipped_code, _wait(client, created.job_id, out))


def run_agent(opts: dict[str, Any], out: Output) -> ExitCode:
    client = new_client()
    created = _submit(lambda: client.agent(
        prompt=opts["prompt"], project_id=opts["project_id"], project_name=opts["project_name"],
        composition_id=opts["composition_id"], model=opts["model"], team_access=opts["team_access"],
        callback_url=opts["callback_url"],
    ))
    words = f"Underlord job {created.job_id} started" + (f": {created.project_url}" if created.project_url else "")
    out.emit(_created_data(created), words)
    return _wait(client, created.job_id, out) if opts["wait"] else ExitCode.OK


def run_publish(opts: dict[str, Any], out: Output) -> ExitCode:
    client = new_client()
    created = _submit(lambda: client.publish(
        project_id=opts["project_id"], composition_id=opts["composition_id"], media_type=opts["media_type"],
        resolution=opts["resolution"], access_level=opts["access_level"], callback_url=opts["callback_url"],
    ))
    out.emit(_created_data(created), f"Publish job {created.job_id} started")
    return _wait(client, created.job_id, out) if opts["wait"] else ExitCode.OK


def run_jobs_list(opts: dict[str, Any], out: Output) -> ExitCode:
    created_after, created_before = _window(opts)
    limit = opts["limit"]
    if not 1 <= limit <= MAX_LIST:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", f"--limit must be 1 to {MAX_LIST}.")
    page_size = opts["page_size"]
    if not 1 <= page_size <= 100:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", "--page-size must be 1 to 100.")
    client = new_client()
    jobs = []
    try:
        for job in client.iter_jobs(project_id=opts["project_id"], type=opts["type"], created_after=created_after,
                                    created_before=created_before, page_size=min(limit, page_size)):
            jobs.append(job)
            if len(jobs) >= limit:
                break
    except JobsError as exc:
        raise from_jobs_error(exc) from None
    rows = [f"{j.job_id}  {TYPE_WORDS.get(j.job_type, j.job_type):<9}  {j.job_state:<9}  "
            f"{(j.result.status if j.result else ''):<7}  {j.created_at.isoformat() if j.created_at else ''}  "
            f"{j.project_id or ''}" for j in jobs]
    out.emit({"jobs": [job_data(j) for j in jobs], "count": len(jobs)},
             "\n".join(rows) if rows else "No jobs match.")
    return ExitCode.OK


def run_jobs_get(opts: dict[str, Any], out: Output) -> ExitCode:
    client = new_client()
    try:
        job = client.get_job(opts["job_id"])
    except JobsError as exc:
        raise from_jobs_error(exc) from None
    out.emit(job_data(job), summary_words(job) if job.stopped else state_words(job))
    return ExitCode.OK


def run_jobs_cancel(opts: dict[str, Any], out: Output) -> ExitCode:
    client = new_client()
    try:
        client.cancel_job(opts["job_id"])
    except JobsError as exc:
        raise from_jobs_error(exc) from None
    out.emit({"job_id": opts["job_id"], "cancelled": True},
             f"Asked Descript to cancel job {opts['job_id']} (it reports `cancelled` once it has stopped).")
    return ExitCode.OK


def run_jobs_watch(opts: dict[str, Any], out: Output) -> ExitCode:
    return _wait(new_client(), opts["job_id"], out, just_submitted=False)


def _wait(client: JobsClient, job_id: str, out: Output, *, just_submitted: bool = True) -> ExitCode:
    try:
        job = watch_job(client, job_id, out, just_submitted=just_submitted)
    except JobsError as exc:
        raise from_jobs_error(exc) from None
    except KeyboardInterrupt:
        raise CliFailure(ExitCode.INTERRUPTED, "interrupted",
                         f"Stopped watching. The job goes on at Descript: descript jobs watch {job_id}",
                         job_id=job_id) from None
    if not out.json_mode:
        out.say(summary_words(job))
    return for_job(job)


def _submit(send: Callable[[], JobCreated]) -> JobCreated:
    try:
        return send()
    except JobsError as exc:
        failure = from_jobs_error(exc)
        if exc.maybe_created:
            failure.words += (" The job may have been created anyway: look for it with "
                              "`descript jobs list` before trying again.")
            failure.extra["maybe_created"] = True
        raise failure from None


def _created_data(created: JobCreated) -> dict[str, Any]:
    # upload_urls (signed PUT links) stay out: this CLI uploads nothing directly.
    return created.model_dump(mode="json", exclude_none=True, exclude={"upload_urls"})


def _window(opts: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """--since/--days and --until as aware datetimes, within Descript's 30 days."""
    now = datetime.now(UTC)
    after = _instant(opts["since"], "--since") if opts["since"] else None
    if opts["days"] is not None:
        if not 0 < opts["days"] <= MAX_LOOKBACK.days:
            raise CliFailure(ExitCode.BAD_INPUT, "bad_argument",
                             f"--days must be more than 0 and at most {MAX_LOOKBACK.days} (Descript keeps jobs 30 days).")
        after = now - timedelta(days=opts["days"])
    before = _instant(opts["until"], "--until") if opts["until"] else None
    if after and after < now - MAX_LOOKBACK:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", "--since is more than 30 days ago: Descript keeps jobs 30 days.")
    if after and before and before <= after:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument", "--until must be later than --since.")
    return after, before


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliFailure(ExitCode.BAD_INPUT, "bad_argument",
                         f"{option} {text!r} is not an ISO 8601 time (such as 2026-05-01T09:00:00Z).") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
