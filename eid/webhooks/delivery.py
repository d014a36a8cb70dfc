"""Sending one delivery: claim the row, sign, POST under the address rules, decide what next.

The answer decides:

    2xx                         succeeded
    408, 429, 5xx, a timeout,   retried on the schedule (EID_WEBHOOK_RETRY_SCHEDULE, each step
    a connection error, a name  with +/- EID_WEBHOOK_RETRY_JITTER of itself); a Retry-After
    that does not resolve       header (seconds or a date) is honoured, up to the longest step;
                                past the last step the delivery is given up
    410 Gone                    the endpoint is disabled, with the reason; the delivery fails
    any other status (3xx and   failed, not retried: the endpoint must change, then an operator
    4xx: redirects are not      or the pipeline replays it
    followed), a refused address

Endpoints are fetched as share pages are (eid.netsafe): https on port 443, a public address,
the connected peer checked again, no proxies, no redirects; unless the address is inside
EID_WEBHOOK_ALLOWED_NETWORKS, which an operator sets for receivers on a private network (there
http and any port are allowed too). One attempt may take EID_WEBHOOK_TIMEOUT seconds in all.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import netsafe
from ..conf import eid_settings
from ..netsafe.deadline import Deadline
from .models import HISTORY_KEPT, WebhookDelivery, WebhookEndpoint
from .signing import signed_headers

log = logging.getLogger(__name__)

State = WebhookDelivery.State
RETRIED_STATUSES = frozenset({408, 429})
MAX_ANSWER_BYTES = 64 * 1024  # of the receiver's answer we read (and drop) at most this much
# Extra time a claim lasts beyond the attempt's own timeout, before the sweep may take it back.
CLAIM_MARGIN_SECONDS = 30.0
# A nudge this early is the queue's rounding (RQ's scheduler keeps whole seconds): it is put back
# for the row's time. One earlier than that is stale: whoever moved the row later nudged it too.
EARLY_NUDGE_SECONDS = 5.0
_NAME_NOT_FOUND = "That address cannot be found."  # netsafe's words for a name that does not resolve


def webhook_policy() -> netsafe.FetchPolicy:
    """The address rules for endpoints: share pages' rules, plus the operator's allowed networks."""
    return netsafe.FetchPolicy(
        allowed_hosts=None,
        allowed_networks=frozenset(eid_settings.EID_WEBHOOK_ALLOWED_NETWORKS or ()),
        max_bytes=MAX_ANSWER_BYTES,
        timeout=float(eid_settings.EID_WEBHOOK_TIMEOUT),
        max_redirects=0,
    )


def check_endpoint_url(url: str) -> str:
    """The endpoint's address, normalised; UnsafeURL (plain words) when deliveries could never go there."""
    return netsafe.check_url(url, webhook_policy()).geturl()


# --- the schedule ----------------------------------------------------------------------------------


def schedule() -> list[float]:
    return [float(s) for s in eid_settings.EID_WEBHOOK_RETRY_SCHEDULE]


def retry_delay(attempts: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None: give up."""
    steps = schedule()
    if attempts < 1 or attempts > len(steps):
        return None
    jitter = float(eid_settings.EID_WEBHOOK_RETRY_JITTER)
    delay = steps[attempts - 1] * (1 + (rng or random).uniform(-jitter, jitter))
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(steps)))
    return max(0.0, delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or timezone.now())).total_seconds())


# --- one attempt -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one POST came to: a status, or an error in words; `retry` says whether to try again."""

    status: int | None
    latency_ms: int
    error: str = ""
    retry: bool = False
    retry_after: float | None = None


def _is_timeout(exc: BaseException, deadline: Deadline) -> bool:
    if deadline.expired or deadline.remaining() <= 0:
        return True
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            continue  # urllib3 makes "connection refused" a kind of connect timeout
        if isinstance(current, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return True
        stack.extend([current.__cause__, getattr(current, "reason", None), *current.args])
    return False


def _drain(response: requests.Response, deadline: Deadline) -> None:
    """Read (and drop) a little of the answer, so a small one leaves its connection reusable.

    The status is what counts: an answer cut off after its headers still counts as that status.
    """
    try:
        read = 0
        for chunk in response.iter_content(chunk_size=16 * 1024):
            read += len(chunk)
            if read >= MAX_ANSWER_BYTES or deadline.expired:
                break  # a large answer: its connection is dropped, not reused
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass
    finally:
        response.close()


def post(url: str, body: bytes, headers: dict[str, str], policy: netsafe.FetchPolicy) -> Answer:
    """POST `body` to `url` under `policy`: the address checked, the connected peer checked, no redirects."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    where = netsafe.redact_url(url)
    with Deadline(policy.timeout) as deadline:
        try:
            checked = netsafe.check_url(url, policy)
            session = netsafe.session_for(policy)
            left = max(0.001, deadline.remaining())
            response = session.post(checked.geturl(), data=body, headers={"Content-Type": "application/json", **headers},
                                     allow_redirects=False, stream=True, timeout=(left, left))
            _drain(response, deadline)
        except netsafe.UnsafeURL as exc:
            if exc.reason == _NAME_NOT_FOUND:
                return Answer(None, took(), f"{where} cannot be found (DNS).", retry=True)
            return Answer(None, took(), f"{where} is not allowed: {exc.reason}")
        except netsafe.FetchError as exc:  # the DNS look-up ran out of time
            return Answer(None, took(), exc.reason, retry=True)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if _is_timeout(exc, deadline):
                return Answer(None, took(), f"{where} did not answer within {policy.timeout:g} seconds.", retry=True)
            return Answer(None, took(), f"Could not connect to {where}.", retry=True)
    status = response.status_code
    latency = took()
    if 200 <= status < 300:
        return Answer(status, latency)
    if status == 410:
        return Answer(status, latency, f"{where} answered 410 Gone.")
    if status in RETRIED_STATUSES or status >= 500:
        return Answer(status, latency, f"{where} answered {status}.", retry=True,
                      retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        return Answer(status, latency, f"{where} answered {status} (a redirect; deliveries do not follow "
                                       "redirects: register the final address). Not retried.")
    return Answer(status, latency, f"{where} answered {status}. Not retried.")


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    """Take a due, pending delivery for one attempt (counted now). None: not due, done, or being sent."""
    timeout = float(eid_settings.EID_WEBHOOK_TIMEOUT)
    claimed = WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk=delivery_id, state=State.PENDING, next_attempt_at__lte=now,
    ).update(locked_until=now + timedelta(seconds=timeout + CLAIM_MARGIN_SECONDS), attempts=F("attempts") + 1,
             updated_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()


def deliver(delivery_id: int) -> datetime | None:
    """One attempt at one delivery, if it is due. Returns when to nudge it again (a retry, or a nudge
    that came a moment early), or None."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return _early(delivery_id, now)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        _record(delivery, State.FAILED, Answer(None, 0, f"The endpoint is disabled: {endpoint.disabled_reason or 'by an operator'}."),
                now, attempted=False)
        return None
    body = delivery.payload
    headers = signed_headers(endpoint.signing_secrets(now), delivery.webhook_id, body)
    answer = post(endpoint.url, body.encode("utf-8"), headers, webhook_policy())
    now = timezone.now()
    if answer.status is not None and 200 <= answer.status < 300:
        _record(delivery, State.SUCCEEDED, answer, now)
        return None
    if answer.status == 410:
        reason = f"Answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC (delivery {delivery.webhook_id}): the receiver asked for no more deliveries."
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason, disabled_at=now,
                                                              updated_at=now)
        log.warning("webhook endpoint %s disabled: it answered 410 Gone", endpoint.pk)
        _record(delivery, State.FAILED, answer, now)
        return None
    if answer.retry:
        delay = retry_delay(delivery.attempts, answer.retry_after)
        if delay is not None:
            again = now + timedelta(seconds=delay)
            _record(delivery, State.PENDING, answer, now, next_attempt_at=again)
            return again
        log.warning("webhook delivery %s given up after %s attempts: %s", delivery.pk, delivery.attempts, answer.error)
        _record(delivery, State.GIVEN_UP, answer, now)
        return None
    log.warning("webhook delivery %s failed: %s", delivery.pk, answer.error)
    _record(delivery, State.FAILED, answer, now)
    return None


def _early(delivery_id: int, now: datetime) -> datetime | None:
    """A nudge that came a little before its row's time: when to come back (else None)."""
    due = WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now), pk=delivery_id, state=State.PENDING,
        next_attempt_at__gt=now, next_attempt_at__lte=now + timedelta(seconds=EARLY_NUDGE_SECONDS),
    ).values_list("next_attempt_at", flat=True).first()
    return due


def _record(delivery: WebhookDelivery, state: str, answer: Answer, now: datetime, *,
            next_attempt_at: datetime | None = None, attempted: bool = True) -> None:
    fields: dict[str, Any] = {
        "state": state,
        "next_attempt_at": next_attempt_at,
        "locked_until": None,
        "last_error": answer.error[:500],
        "updated_at": now,
    }
    if attempted:
        entry = {"at": now.isoformat(), "attempt": delivery.attempts, "status": answer.status,
                 "latency_ms": answer.latency_ms, "error": answer.error[:200],
                 "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None}
        fields.update(last_attempt_at=now, last_status=answer.status, last_latency_ms=answer.latency_ms,
                      history=[*(delivery.history or []), entry][-HISTORY_KEPT:])
    else:
        fields["attempts"] = max(0, delivery.attempts - 1)  # nothing was sent
    if state != State.PENDING:
        fields["finished_at"] = now
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)


# --- replay ------------------------------------------------------------------------------------------


class ReplayRefused(Exception):
    """Why a delivery cannot be replayed now, in plain words."""


def replay(delivery: WebhookDelivery) -> None:
    """Send a delivery again: same webhook-id and body, a fresh schedule, from now.

    Refused (ReplayRefused) while an attempt is in flight or when the endpoint is disabled.
    The worker is nudged when the transaction commits.
    """
    now = timezone.now()
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, enabled=True).exists():
        raise ReplayRefused("The endpoint is disabled: enable it first.")
    changed = WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now), pk=delivery.pk,
    ).update(state=State.PENDING, attempts=0, next_attempt_at=now, locked_until=None, finished_at=None,
             replays=F("replays") + 1, updated_at=now)
    if not changed:
        raise ReplayRefused("It is being sent right now.")
    delivery.refresh_from_db()

    from .tasks import enqueue_delivery

    delivery_id = delivery.pk
    transaction.on_commit(lambda: enqueue_delivery(delivery_id))
