"""What `manage.py descript` exits with, and the failure that carries the code and its words."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..client import Job, JobsError

EXIT_CODES_HELP = """exit codes:
  0  success
  1  failure: Descript refused (402, 403, 404...), a job ended in error or was cancelled,
     or every recording of a batch was refused or failed
  2  bad input: a refused media link, bad arguments, an unknown preset or user
  3  partial success: an import where some files were skipped or failed,
     a batch where some recordings failed
  4  Descript (or the bucket) unreachable or not configured
  130 interrupted (Ctrl-C): the job goes on at Descript"""


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    PARTIAL = 3
    UNREACHABLE = 4
    INTERRUPTED = 130


class CliFailure(Exception):
    """Stop the command: `words` for people, `kind` for scripts, `extra` for --json."""

    def __init__(self, code: ExitCode, kind: str, words: str, **extra: Any) -> None:
        super().__init__(words)
        self.code = code
        self.kind = kind
        self.words = words
        self.extra = extra


# Descript is there but says no -> 1; it cannot be reached or we cannot talk to it -> 4.
_UNREACHABLE_KINDS = frozenset({"timeout", "upstream_error", "misconfigured", "unauthorized", "rate_limited"})


def from_jobs_error(error: JobsError) -> CliFailure:
    if error.kind == "bad_request" and error.status is None:
        # Refused by the request builders before anything was sent: the arguments are wrong.
        code = ExitCode.BAD_INPUT
    elif error.kind in _UNREACHABLE_KINDS:
        code = ExitCode.UNREACHABLE
    else:
        code = ExitCode.FAILED
    extra: dict[str, Any] = {}
    if error.status is not None:
        extra["status"] = error.status
    if error.retry_after is not None:
        extra["retry_after"] = error.retry_after
    return CliFailure(code, str(error.kind), error.words, **extra)


def for_job(job: Job) -> ExitCode:
    """A stopped job's exit code: success 0, partial 3, error or cancelled 1."""
    if job.job_state == "cancelled":
        return ExitCode.FAILED
    status = job.result.status if job.result else ""
    if status == "success":
        return ExitCode.OK
    if status == "partial":
        return ExitCode.PARTIAL
    return ExitCode.FAILED


def worst(*codes: ExitCode) -> ExitCode:
    """Failure over partial over success (bad input and unreachable stop a command before this)."""
    for code in (ExitCode.FAILED, ExitCode.PARTIAL):
        if code in codes:
            return code
    return ExitCode.OK
