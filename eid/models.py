"""What the integration records: every click (Handoff) and every edit coming back (ReturnedExport).

Neither model ever holds the Descript token or a presigned URL of ours. ReturnedExport keeps
Descript's media links, which the worker needs; they are hidden from the admin and pages.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .conf import eid_settings


class Handoff(models.Model):
    """One click on "Edit in Descript", whatever its outcome."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "In progress"
        OK = "ok", "Sent to Descript"
        STORAGE_MISSING = "storage_missing", "File missing or empty in storage"
        INVALID_MEDIA = "invalid_media", "File type Descript does not support"
        STORAGE_ERROR = "storage_error", "Storage unavailable"
        RATE_LIMITED = "rate_limited", "Rate limited by Descript"
        TIMEOUT = "timeout", "Descript timed out"
        UPSTREAM_ERROR = "upstream_error", "Descript answered with an error"
        MISCONFIGURED = "misconfigured", "Integration not configured"
        NOT_FOUND = "not_found", "No such recording or option for this user"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # The partner's item, by its id and title at the time (eid holds no key to the site's tables).
    item_ref = models.CharField(max_length=64, blank=True, db_index=True)
    item_title = models.CharField(max_length=300, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    option = models.CharField(max_length=16)
    file_count = models.PositiveIntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    upstream_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    upstream_attempts = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    upstream_error_code = models.CharField(max_length=100, blank=True)
    detail = models.CharField(max_length=500, blank=True, help_text="What went wrong, in plain words.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["outcome", "-started_at"])]

    def __str__(self) -> str:
        return f"Click #{self.pk}: {self.get_outcome_display()}"


class ReturnedExportQuerySet(models.QuerySet["ReturnedExport"]):
    def active(self) -> ReturnedExportQuerySet:
        return self.filter(state__in=[ReturnedExport.State.WAITING, ReturnedExport.State.COPYING])

    def stale(self, now: datetime | None = None) -> ReturnedExportQuerySet:
        """Active rows no worker is moving: a dead worker's lease, or a queued nudge that was lost."""
        cutoff = (now or timezone.now()) - timedelta(seconds=eid_settings.EID_EXPORT_STALE_SECONDS)
        return self.active().filter(
            Q(lease_token__isnull=False, heartbeat_at__lt=cutoff)
            | Q(lease_token__isnull=True, next_check_at__lt=cutoff)
            | Q(lease_token__isnull=True, next_check_at__isnull=True, updated_at__lt=cutoff)
        )


class ReturnedExport(models.Model):
    """A Descript share page sent back to us, and the copy of its media into our storage.

    The row is the truth; background tasks only nudge it forward (see eid.returns).
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for Descript to finish rendering"
        COPYING = "copying", "Copying into storage"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Match(models.TextChoices):
        OWN_SOURCE = "own_source", "Edited version of the user's recording"
        NO_TAGS = "no_tags", "No Descript partner tags: new recording"
        OTHER_PARTNER = "other_partner", "Another partner's content: new recording"
        UNKNOWN_SOURCE = "unknown_source", "Unknown source: new recording"
        FOREIGN_SOURCE = "foreign_source", "Source belongs to another user: new recording"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="returned_exports")
    share_id = models.CharField(max_length=64)
    share_url = models.URLField(max_length=2048)
    title = models.CharField(max_length=300)
    match = models.CharField(max_length=20, choices=Match.choices)
    partner_tag = models.CharField(max_length=200, blank=True)
    source_tag = models.CharField(max_length=200, blank=True)
    # The partner's item this edit belongs to (own_source only), by the adapter's id. New items
    # are made by the adapter, with their first version, when every part is stored.
    target_ref = models.CharField(max_length=64, blank=True)
    target_title = models.CharField(max_length=300, blank=True)
    # Where the edit landed once done: the item (new or the target) and its version number.
    result_ref = models.CharField(max_length=64, blank=True)
    result_title = models.CharField(max_length=300, blank=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    # Descript's links (possibly signed): for the worker only, never shown.
    media_links = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it failed, in plain words.")
    retryable = models.BooleanField(default=False)
    checks = models.PositiveIntegerField(default=0, help_text="Times the media links were checked.")
    last_check_status = models.PositiveSmallIntegerField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True, help_text="Start of the current wait for rendering.")
    bytes_copied = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker picked it up.")
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    upload = models.JSONField(default=dict, blank=True, help_text="Multipart upload in flight.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ReturnedExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "share_id"], name="returned_export_once_per_user_share"),
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.share_id})"

    @property
    def is_active(self) -> bool:
        return self.state in (self.State.WAITING, self.State.COPYING)
