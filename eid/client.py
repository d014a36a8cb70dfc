"""Descript API client: one requests.Session per process, bounded time, typed errors.

Callers get either a parsed answer or a DescriptError whose `kind` says what happened; nothing
here raises requests' own exceptions, and no message carries the token or a presigned URL.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from requests.adapters import HTTPAdapter

from .conf import eid_settings
from .errors import EidError

log = logging.getLogger(__name__)

USER_AGENT = "PartnerBackend/1.0 (+Edit in Descript)"


class DescriptError(EidError):
    """Descript could not give us what we asked for."""

    class Kind(StrEnum):
        RATE_LIMITED = "rate_limited"
        TIMEOUT = "timeout"
        UPSTREAM_ERROR = "upstream_error"
        MISCONFIGURED = "misconfigured"
        PROCESSING = "processing"  # published_projects: not rendered yet (409)

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
        attempts: int = 0,
        latency_ms: int | None = None,
    ) -> None:
        super().__init__(kind, message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.attempts = attempts
        self.latency_ms = latency_ms

    @property
    def message(self) -> str:
        return self.reason


class _Lenient(BaseModel):
    # Descript may add fields at any time; only the ones we read are typed.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PublishedMetadata(_Lenient):
    title: str | None = None
    duration_seconds: float | None = None


class PublishedProject(_Lenient):
    """GET /published_projects/{slug} (FACTS: "published_projects")."""

    project_id: str | None = None
    publish_type: str | None = None  # audio | video | audiogram
    metadata: PublishedMetadata = PublishedMetadata()
    subtitles: str | None = None  # WebVTT text
    download_url: str | None = None


@dataclass(frozen=True)
class ImportLink:
    url: str
    attempts: int
    latency_ms: int


@functools.lru_cache(maxsize=1)
def _session() -> requests.Session:
    session = requests.Session()
    # Proxies for the API host are read from the environment once here, not on every request:
    # with trust_env on, requests scans the whole environment and looks for ~/.netrc on each
    # call (about 0.7 ms of a click). The token is sent explicitly anyway.
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(eid_settings.DESCRIPT_API_BASE)  # honours NO_PROXY
    # Retries are ours (they must respect the click's budget), so urllib3 retries none.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=128, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


@receiver(setting_changed)
def _reset_session(setting: str, **kwargs) -> None:
    if setting.startswith("DESCRIPT_"):
        _session.cache_clear()


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # HTTP-date form: Descript documents seconds; treat as unknown
    return seconds if seconds >= 0 else None


def _error_fields(response: requests.Response) -> tuple[str, str]:
    """Descript's error body is {"error": code, "message": text}; anything else is tolerated."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    code = body.get("error")
    message = body.get("message")
    return (str(code)[:100] if isinstance(code, str) else "", str(message)[:300] if isinstance(message, str) else "")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _acceptable_import_link(url: str) -> bool:
    """An https link, or one into the configured sandbox; the user's browser is sent there."""
    parts = urlsplit(url)
    if not parts.netloc or "@" in parts.netloc or any(c in url for c in "\r\n\t "):
        return False
    if parts.scheme == "https":
        return True
    return _origin(url) in {o.rstrip("/").lower() for o in eid_settings.DESCRIPT_SANDBOX_ORIGINS}


class DescriptClient:
    def __init__(
        self,
        *,
        base: str | None = None,
        token: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.base = (base or eid_settings.DESCRIPT_API_BASE).rstrip("/")
        self.token = eid_settings.DESCRIPT_API_TOKEN if token is None else token
        self.connect_timeout = connect_timeout or eid_settings.DESCRIPT_CONNECT_TIMEOUT
        self.read_timeout = read_timeout or eid_settings.DESCRIPT_READ_TIMEOUT
        self.session = _session()

    def __repr__(self) -> str:  # never the token
        return f"<DescriptClient {self.base}>"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: tuple[float, float],
    ) -> requests.Response:
        """One HTTP request, no retries (eid.jobs.client has its own policy around this)."""
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = self._headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        return self.session.request(
            method, f"{self.base}{path}", params=params, data=data, headers=headers, timeout=timeout
        )

    def call(self, method: str, path: str, *, body: Any = None, budget: float = 10.0) -> tuple[requests.Response, int]:
        """Send one request with the retry policy, within `budget` seconds.

        429: wait Retry-After when it fits in what is left of the budget, else give up.
        5xx or a connection error: one retry. A read timeout is not retried: the budget is spent.
        Returns (response with a 2xx or 4xx status other than 429, attempts).
        """
        if not self.token:
            raise DescriptError("misconfigured", "The Descript token is not configured.")
        deadline = time.monotonic() + budget
        attempts = 0
        retried_failure = False
        while True:
            attempts += 1
            left = deadline - time.monotonic()
            if left <= 0.05:
                raise DescriptError("timeout", "Descript did not answer in time.", attempts=attempts - 1)
            timeout = (min(self.connect_timeout, left), min(self.read_timeout, left))
            try:
                response = self._send(method, path, body=body, timeout=timeout)
            except requests.exceptions.ConnectTimeout:
                error = DescriptError("timeout", "Descript could not be reached in time.", attempts=attempts)
            except requests.exceptions.ReadTimeout:
                raise DescriptError("timeout", "Descript did not answer in time.", attempts=attempts) from None
            except requests.exceptions.RequestException as exc:
                log.info("descript %s %s: connection failed (%s)", method, path, type(exc).__name__)
                error = DescriptError("upstream_error", "Descript could not be reached.", attempts=attempts)
            else:
                status = response.status_code
                if status == 429:
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    code, _ = _error_fields(response)
                    if wait is not None and time.monotonic() + wait < deadline - 0.05:
                        log.info("descript %s %s: 429, waiting %.1fs", method, path, wait)
                        time.sleep(wait)
                        continue
                    raise DescriptError(
                        "rate_limited",
                        "Descript is busy right now.",
                        status=429,
                        code=code or "rate_limit_exceeded",
                        retry_after=wait,
                        attempts=attempts,
                    )
                if status < 500:
                    return response, attempts
                code, _ = _error_fields(response)
                error = DescriptError(
                    "upstream_error", "Descript had a problem.", status=status, code=code, attempts=attempts
                )
            if retried_failure:
                raise error
            retried_failure = True

    # --- Edit in Descript ---------------------------------------------------------------

    def create_import_url(self, body: dict, *, budget: float | None = None) -> ImportLink:
        """POST the project schema; return Descript's one-time import link."""
        started = time.monotonic()
        budget = eid_settings.DESCRIPT_CLICK_BUDGET_SECONDS if budget is None else budget
        try:
            response, attempts = self.call("POST", "/edit_in_descript/schema", body=body, budget=budget)
        except DescriptError as exc:
            exc.latency_ms = int((time.monotonic() - started) * 1000)
            raise
        latency_ms = int((time.monotonic() - started) * 1000)
        if response.status_code != 201:
            code, message = _error_fields(response)
            # The caller logs the one WARNING (with its row's id); this is the detail.
            log.info("descript import link refused: status=%s code=%s message=%s", response.status_code, code, message)
            raise DescriptError(
                "upstream_error",
                "Descript refused the request.",
                status=response.status_code,
                code=code,
                attempts=attempts,
                latency_ms=latency_ms,
            )
        try:
            url = response.json().get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str) or not _acceptable_import_link(url):
            raise DescriptError(
                "upstream_error",
                "Descript's answer had no usable import link.",
                status=201,
                code="no_url",
                attempts=attempts,
                latency_ms=latency_ms,
            )
        return ImportLink(url=url, attempts=attempts, latency_ms=latency_ms)

    # --- Published projects -------------------------------------------------------------

    def published_project(self, slug: str, *, budget: float = 15.0) -> PublishedProject:
        """GET /published_projects/{slug}. 409 (processing) is returned as a "processing" error."""
        response, attempts = self.call("GET", f"/published_projects/{quote(slug, safe='')}", budget=budget)
        if response.status_code == 409:
            code, message = _error_fields(response)
            try:
                state = response.json().get("state", "")
            except (ValueError, AttributeError):
                state = ""
            raise DescriptError("processing" if state != "failed" else "upstream_error", message or "Not ready",
                                status=409, code=state or code, attempts=attempts)
        if response.status_code != 200:
            code, _ = _error_fields(response)
            raise DescriptError("upstream_error", "Descript refused the request.", status=response.status_code,
                                code=code, attempts=attempts)
        try:
            return PublishedProject.model_validate_json(response.content)
        except ValidationError:
            raise DescriptError("upstream_error", "Descript's answer was not the published project we expect.",
                                status=200, code="bad_body", attempts=attempts) from None
