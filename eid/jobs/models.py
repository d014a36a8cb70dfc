r"""What an auto-edit records: the auto-edit, one row per Descript job it runs, batches, presets.

The rows are the truth (DESIGN.md, "Background work"); a task is only a nudge to advance them.
An auto-edit goes import -> agent -> publish -> copy home, one JobStep per Descript job:

    queued --> importing --> editing --> publishing --> copying --> done
                  |  \                                               
                  |   needs_choice (partial import: go on with the rest, or stop)
                  +--> failed | cancelled   (from any state before done)

A JobStep is written *before* its job is submitted (state `submitting`, `submit_started_at`),
so a worker that dies between sending the POST and recording the job id leaves a row that says
"this may exist at Descript": the next worker reconciles with GET /jobs before submitting again.

No row holds the Descript token or a presigned URL. Descript's `download_url` (signed) goes only
into the ReturnedExport's hidden `media_links`; a step's `result` keeps what people may see.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def digest(value: str) -> str:
    """SHA-256 hex of a secret we only ever compare (callback tokens, Descript tokens)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class MediaType(models.TextChoices):
    AUDIO = "Audio", "Audio"
    VIDEO = "Video", "Video"


class PromptPreset(models.Model):
    """A prompt operators keep ready for users (e.g. "Remove filler words and add Studio Sound")."""

    name = models.CharField(max_length=100, unique=True)
    prompt = models.TextField(max_length=4000)
    media_type = models.CharField(max_length=5, choices=MediaType.choices, default=MediaType.AUDIO)
    resolution = models.CharField(max_length=10, blank=True, help_text="For video: 720p, 1080p or 4K.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the recording page.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class AutoEditBatch(models.Model):
    """Many auto-edits started together ("a hundred videos overnight"): same prompt, own page."""

    class Via(models.TextChoices):
        PAGE = "page", "Recording page"
        API = "api", "Pipelines API"
        ADMIN = "admin", "Admin"
        CLI = "cli", "Command line"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True)
    via = models.CharField(max_length=5, choices=Via.choices)
    requested_by = models.CharField(max_length=200, blank=True, help_text="Who asked: a user or a token's name.")
    prompt = models.TextField(max_length=4000)
    preset = models.ForeignKey(PromptPreset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    media_type = models.CharField(max_length=5, choices=MediaType.choices, default=MediaType.AUDIO)
    resolution = models.CharField(max_length=10, blank=True)
    max_in_flight = models.PositiveIntegerField(default=10, help_text="Auto-edits of this batch at Descript at once.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "auto-edit batches"

    def __str__(self) -> str:
        return self.name or f"Batch {str(self.pk)[:8]}"


class AutoEditQuerySet(models.QuerySet["AutoEdit"]):
    def active(self) -> AutoEditQuerySet:
        return self.exclude(state__in=AutoEdit.FINAL_STATES)

    def stale(self, now: datetime | None = None, stale_seconds: float = 120.0) -> AutoEditQuerySet:
        """Active rows no worker is moving: a dead worker's lease, or a nudge that was lost."""
        cutoff = (now or timezone.now()) - timedelta(seconds=stale_seconds)
        return self.active().exclude(state=AutoEdit.State.NEEDS_CHOICE).filter(
            Q(lease_token__isnull=False, heartbeat_at__lt=cutoff)
            | Q(lease_token__isnull=True, next_action_at__lt=cutoff)
            | Q(lease_token__isnull=True, next_action_at__isnull=True, updated_at__lt=cutoff)
        )


class AutoEdit(models.Model):
    """One recording sent through import, agent and publish, and brought home as a new version."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        IMPORTING = "importing", "Importing into Descript"
        NEEDS_CHOICE = "needs_choice", "Some files did not import: go on or stop?"
        EDITING = "editing", "Underlord is editing"
        PUBLISHING = "publishing", "Publishing"
        COPYING = "copying", "Bringing the edit home"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = (State.DONE, State.FAILED, State.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(AutoEditBatch, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="auto_edits")
    via = models.CharField(max_length=5, choices=AutoEditBatch.Via.choices, default=AutoEditBatch.Via.PAGE)
    requested_by = models.CharField(max_length=200, blank=True)
    # The recording's owner: its edit comes home as a version of their item.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auto_edits")
    # The partner's item, by the adapter's id and title at the time, and the option sent.
    item_ref = models.CharField(max_length=64, db_index=True)
    item_title = models.CharField(max_length=300, blank=True)
    option = models.CharField(max_length=16)
    source_id = models.CharField(max_length=64, blank=True)

    prompt = models.TextField(max_length=4000)
    preset = models.ForeignKey(PromptPreset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    media_type = models.CharField(max_length=5, choices=MediaType.choices, default=MediaType.AUDIO)
    resolution = models.CharField(max_length=10, blank=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    # At Descript (none of these is secret: the project link only opens for the drive's members).
    project_name = models.CharField(max_length=300, blank=True,
                                    help_text="Unique per auto-edit: how a lost import is found again.")
    project_id = models.CharField(max_length=100, blank=True)
    project_url = models.URLField(max_length=500, blank=True)
    composition_id = models.CharField(max_length=100, blank=True)
    agent_summary = models.TextField(blank=True)
    share_url = models.URLField(max_length=500, blank=True)
    # Partial import: {display name: why it failed}; the user chooses to go on or stop.
    failed_files = models.JSONField(default=dict, blank=True)
    # Home again: the import of the published file (the way back's own row) and where it landed.
    export = models.ForeignKey("eid.ReturnedExport", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    result_ref = models.CharField(max_length=64, blank=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)

    failure_kind = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it failed, in plain words.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Someone has the auto-edit's page open until then (eid.jobs.control.being_watched): its jobs
    # are polled at Descript's active cadence even when callbacks are expected.
    watched_until = models.DateTimeField(null=True, blank=True, editable=False)

    # Worker bookkeeping (as on ReturnedExport): a lease with a heartbeat, and the next nudge.
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    next_action_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker picked it up.")

    created_at = models.DateTimeField(auto_now_add=True)
    # When it left the queue for Descript (a free slot under EID_JOBS_MAX_IN_FLIGHT and its batch's).
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AutoEditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_action_at"]), models.Index(fields=["batch", "state"])]
        constraints = [
            # One auto-edit of a recording at a time: a second start (a double click, a batch
            # naming it twice) is refused as already running, even when two race.
            models.UniqueConstraint(fields=["user", "item_ref"], condition=~Q(state__in=["done", "failed", "cancelled"]),
                                    name="one_active_auto_edit_per_item"),
        ]

    def __str__(self) -> str:
        return f"Auto-edit of {self.item_title or self.item_ref} ({self.get_state_display()})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class JobStep(models.Model):
    """One Descript job of an auto-edit, from before its submit to its end."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        AGENT = "agent", "Underlord"
        PUBLISH = "publish", "Publish"

    # Descript's `type` filter of GET /jobs for each kind (reconciling a lost submit).
    JOB_TYPES = {"import": "import/project_media", "agent": "agent", "publish": "publish"}

    class State(models.TextChoices):
        SUBMITTING = "submitting", "Being submitted"  # the POST may have reached Descript
        QUEUED = "queued", "Queued at Descript"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = (State.SUCCEEDED, State.PARTIAL, State.FAILED, State.CANCELLED)

    auto_edit = models.ForeignKey(AutoEdit, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.SUBMITTING)
    job_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    # The callback URL carries a random token; only its digest is kept.
    callback_digest = models.CharField(max_length=64, unique=True, editable=False)

    progress_label = models.CharField(max_length=200, blank=True)
    progress_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    # Descript's `result`, without signed links (see the module docstring).
    result = models.JSONField(default=dict, blank=True)
    error_kind = models.CharField(max_length=30, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="What went wrong, in plain words.")

    # What it cost: every Descript call for this job, the polls among them, the polls that found
    # nothing new, and the callbacks that came (bench/jobs_tracking reads these).
    calls = models.PositiveIntegerField(default=0)
    polls = models.PositiveIntegerField(default=0)
    polls_unchanged = models.PositiveIntegerField(default=0)
    callbacks = models.PositiveIntegerField(default=0)
    # Transient failures in a row (timeouts, 5xx): retried later, and failed past a bound.
    retries = models.PositiveSmallIntegerField(default=0)

    submit_started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Never two live jobs of one kind for one auto-edit (a retry replaces a failed one).
            models.UniqueConstraint(fields=["auto_edit", "kind"], condition=~Q(state__in=["failed", "cancelled"]),
                                    name="one_live_step_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_state_display()})"

    @staticmethod
    def new_callback_token() -> tuple[str, str]:
        """A token for one job's callback URL and the digest to keep."""
        token = secrets.token_urlsafe(32)
        return token, digest(token)

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class DescriptBudget(models.Model):
    """One Descript token's rate budget, shared by every process that uses the token (eid.jobs.budget)."""

    token_digest = models.CharField(max_length=64, primary_key=True)
    # No call before this moment (set from Descript's Retry-After on a 429).
    not_before = models.DateTimeField(null=True, blank=True)
    window_started_at = models.DateTimeField(null=True, blank=True)
    calls_in_window = models.PositiveIntegerField(default=0)
    throttled_total = models.PositiveIntegerField(default=0, help_text="429s from Descript, all time.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Descript rate budget"
