"""Where the command's words and data go.

With --json, stdout carries only JSON, one object per line (results, each change of a watched
job, and errors with their exit code); words for people go to stderr. Without it, words go to
stdout and errors to stderr. Nothing printed carries a signed link: jobs are shown without
Descript's `download_url`, and bucket keys are shown instead of their presigned URLs.
"""

from __future__ import annotations

import json
from typing import IO, Any, cast

from django.core.management.base import OutputWrapper

from ..client import Job
from .exits import CliFailure


def job_data(job: Job) -> dict[str, Any]:
    """A job as JSON for scripts, less the signed download link."""
    return job.model_dump(mode="json", exclude_none=True, exclude={"result": {"download_url"}})


class Output:
    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper, *, json_mode: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode

    @property
    def words_stream(self) -> OutputWrapper:
        return self.stderr if self.json_mode else self.stdout

    def raw_words_stream(self) -> IO[str]:
        """The file under the words stream, for rich (OutputWrapper adds newlines to each write)."""
        return cast(IO[str], self.words_stream._out)

    def live(self) -> bool:
        """Whether a live display can be drawn: people are reading a terminal."""
        return self.words_stream.isatty()

    def emit(self, data: dict[str, Any], words: str | None = None) -> None:
        """One result: `data` as a JSON line with --json, else `words` (if any) for people."""
        if self.json_mode:
            self.stdout.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
            self.stdout.flush()
        elif words is not None:
            self.stdout.write(words)
            self.stdout.flush()

    def say(self, words: str) -> None:
        """Words for people only (progress, hints): never on stdout with --json."""
        self.words_stream.write(words)
        self.words_stream.flush()

    def failure(self, failure: CliFailure) -> None:
        if self.json_mode:
            error = {"kind": failure.kind, "words": failure.words, **failure.extra}
            self.emit({"error": error, "exit_code": int(failure.code)})
        else:
            self.stderr.write(f"error: {failure.words}")
            for item in failure.extra.get("refused", ()):
                self.stderr.write(f"  {item['media']}: {item['reason']}")
            self.stderr.flush()
