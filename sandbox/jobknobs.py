"""The jobs API's knobs: how long jobs take, whether callbacks come, and what fails on purpose.

`SandboxConfig` holds the defaults a server starts with; `JobKnobs` is the live copy that
`POST /_sandbox/jobs/config` (or `SandboxApp.configure_jobs`) changes and `reset()` puts back.
A change applies to jobs created afterwards (a job's timeline is fixed when it is created),
except `callbacks`, `fail_media`, `agent_error` and `publish_error`, which are read when
the job gets that far.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

JOB_TYPES = ("import/project_media", "agent", "publish")


@dataclass
class JobKnobs:
    # Running time of each job type, in sandbox seconds; each job draws its own from
    # [seconds, seconds + jitter_seconds]. Jobs first sit `queued_seconds` in the queue.
    import_seconds: float = 1.5
    agent_seconds: float = 1.5
    publish_seconds: float = 1.5
    queued_seconds: float = 0.3
    jitter_seconds: float = 0.0
    # Sandbox time runs this many times faster than the app clock: with import_seconds=60
    # and time_scale=40 an import takes 1.5 s. Timestamps in answers stay on the app clock.
    time_scale: float = 1.0
    callbacks: bool = True  # False: callbacks never come (polling must finish the job)
    callback_timeout: float = 5.0
    callback_retries: int = 1  # extra attempts after a failed one (no answer or not 2xx)
    media_minutes_exhausted: bool = False  # 402 on POST /v1/jobs/import/project_media
    ai_credits_exhausted: bool = False  # 402 on POST /v1/jobs/agent
    forbidden: list[str] = field(default_factory=list)  # job types answered 403
    fail_media: list[str] = field(default_factory=list)  # display names whose import fails
    agent_error: str | None = None  # agent jobs end in error with this message
    publish_error: str | None = None  # publish jobs end in error with this message
    download_url_ttl: float = 3600.0  # seconds a publish result's download_url is said to last

    def seconds_for(self, job_type: str) -> float:
        return {
            "import/project_media": self.import_seconds,
            "agent": self.agent_seconds,
            "publish": self.publish_seconds,
        }[job_type]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_NUMBERS = {
    "import_seconds": 0.0, "agent_seconds": 0.0, "publish_seconds": 0.0, "queued_seconds": 0.0,
    "jitter_seconds": 0.0, "callback_timeout": 0.1, "download_url_ttl": 1.0,
}


def updated(knobs: JobKnobs, changes: dict[str, Any]) -> JobKnobs:
    """A copy of `knobs` with `changes` applied; ValueError says which change is wrong."""
    known = {f.name for f in fields(JobKnobs)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown job settings: {', '.join(sorted(unknown))}")
    out = JobKnobs(**{**knobs.as_dict(), **changes})
    for key, minimum in _NUMBERS.items():
        value = getattr(out, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ValueError(f"{key} must be a number >= {minimum:g}")
    if isinstance(out.time_scale, bool) or not isinstance(out.time_scale, (int, float)) or out.time_scale <= 0:
        raise ValueError("time_scale must be a number > 0")
    if isinstance(out.callback_retries, bool) or not isinstance(out.callback_retries, int) or not 0 <= out.callback_retries <= 5:
        raise ValueError("callback_retries must be an integer from 0 to 5")
    for key in ("callbacks", "media_minutes_exhausted", "ai_credits_exhausted"):
        if not isinstance(getattr(out, key), bool):
            raise ValueError(f"{key} must be true or false")
    for key in ("forbidden", "fail_media"):
        value = getattr(out, key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key} must be a list of strings")
    bad = set(out.forbidden) - set(JOB_TYPES)
    if bad:
        raise ValueError(f"forbidden takes job types ({', '.join(JOB_TYPES)}), not {', '.join(sorted(bad))}")
    for key in ("agent_error", "publish_error"):
        if getattr(out, key) is not None and not isinstance(getattr(out, key), str):
            raise ValueError(f"{key} must be a string or null")
    out.forbidden = list(out.forbidden)
    out.fail_media = list(out.fail_media)
    return out
