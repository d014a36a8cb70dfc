"""Webhook endpoints a partner's pipeline registered, and every delivery of an event to one.

The delivery row is the truth (like ReturnedExport): a task only nudges it, the sweep re-nudges
rows whose nudge was lost, and a replay sends the same message again (same `webhook_id`, same
body bytes) with a fresh retry schedule.

Secrets are kept as they are (signing needs them) and are shown once, when made: never in the
admin's lists or forms, in logs, or in API answers after creation.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..conf import eid_settings

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 bytes, base64 after the prefix
HISTORY_KEPT = 30  # attempts remembered per delivery (the schedule has 10; replays add more)


class EventType(models.TextChoices):
    VERSION_CREATED = "version.created", "version.created: an edit landed as a new version"
    RETURNED_EXPORT_FAILED = "returned_export.failed", "returned_export.failed: an import from Descript failed"
    HANDOFF_FAILED = "handoff.failed", "handoff.failed: a click on Edit in Descript failed"
    AUTO_EDIT_COMPLETED = "auto_edit.completed", "auto_edit.completed: an automatic edit finished"
    AUTO_EDIT_FAILED = "auto_edit.failed", "auto_edit.failed: an automatic edit failed"


EVENT_TYPES: tuple[str, ...] = tuple(EventType.values)
DEFAULT_EVENT_TYPES = [EventType.VERSION_CREATED.value, EventType.RETURNED_EXPORT_FAILED.value]


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookEndpoint(models.Model):
    """Where a pipeline wants to hear about events, and the secret its deliveries are signed with."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2048, help_text="https, on a public address (or one allowed by "
                                                     "EID_WEBHOOK_ALLOWED_NETWORKS).")
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="The event types this endpoint wants.")
    # Only events about this user's items; empty: every user's.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="+", help_text="Only events about this user's items (empty: all).")
    secret = models.CharField(max_length=128, editable=False)
    # During a rotation the previous secret signs too (every delivery carries both signatures)
    # until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=128, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True, editable=False,
                                  help_text="The API token (or admin user) that registered it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.secret:
            self.secret = new_secret()
        super().save(*args, **kwargs)

    def wants(self, event_type: str) -> bool:
        return self.enabled and event_type in (self.event_types or [])

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one during a rotation."""
        now = now or timezone.now()
        keys = [self.secret]
        if self.previous_secret and (self.previous_secret_expires_at is None or self.previous_secret_expires_at > now):
            keys.append(self.previous_secret)
        return keys

    def rotate_secret(self, overlap_seconds: float | None = None) -> str:
        """A new current secret; the old one keeps signing for `overlap_seconds`. Returns the new one (show it once)."""
        if overlap_seconds is None:
            overlap_seconds = float(eid_settings.EID_WEBHOOK_SECRET_OVERLAP_SECONDS)
        fresh = new_secret()
        self.previous_secret = self.secret
        self.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap_seconds)
        self.secret = fresh
        self.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        return fresh

    def end_rotation(self) -> None:
        """Stop signing with the previous secret now."""
        self.previous_secret = ""
        self.previous_secret_expires_at = None
        self.save(update_fields=["previous_secret", "previous_secret_expires_at", "updated_at"])

    @property
    def rotating(self) -> bool:
        return len(self.signing_secrets()) > 1

    def disable(self, reason: str) -> None:
        self.enabled = False
        self.disabled_reason = reason[:500]
        self.disabled_at = timezone.now()
        self.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated_at"])

    def enable(self) -> None:
        self.enabled = True
        self.disabled_reason = ""
        self.disabled_at = None
        self.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated_at"])


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def lost(self, now: datetime | None = None) -> WebhookDeliveryQuerySet:
        """Pending deliveries due long ago that nobody is sending: their nudge was lost."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=eid_settings.EID_WEBHOOK_STALE_SECONDS)
        return self.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lt=cutoff).filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now)
        )


class WebhookDelivery(models.Model):
    """One event for one endpoint: the message (id and body, fixed) and how sending it went."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (not retried)"
        GIVEN_UP = "given_up", "Given up (retries exhausted)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    # Standard Webhooks' webhook-id: one per event (shared by its deliveries to several
    # endpoints), kept by retries and replays so receivers can drop duplicates.
    webhook_id = models.CharField(max_length=64, db_index=True)
    # The exact JSON text sent (not a JSONField: PostgreSQL's jsonb would reorder its keys, and
    # a replay sends the same bytes).
    payload = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since it was made (or last replayed).")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="A worker is sending it until then.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status of the last attempt.")
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, help_text="What went wrong, in plain words.")
    history = models.JSONField(default=list, blank=True, editable=False,
                               help_text="The last attempts: when, status, latency, error.")
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "webhook_id"], name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"
