"""The API's rows: service tokens (stored hashed) and the answers kept for Idempotency-Key retries."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX = "eid_"
PREFIX_LENGTH = 12  # what lists show of a key: "eid_" and 8 random characters
LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    """SHA-256 of the whole key. Keys are 256 random bits, so a fast unsalted hash is enough
    (nothing to guess), and a lookup by digest needs no scan."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(models.Model):
    """A service token for a pipeline. The key is shown once, when made; only its hash is kept.

    A token with an `owner` acts for that user only; without one it acts for every user.
    Deleting the owner deletes the token (it never widens to every user).
    """

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. the pipeline's name.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False, db_index=True,
                              help_text="The key's first characters, to tell tokens apart.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False, help_text="May read, may not write.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="+",
                              help_text="Only this user's data; empty: every user's.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="Updated at most once a minute.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, *, read_only: bool = False, owner: Any = None) -> tuple[ApiToken, str]:
        """A new token and its key. The key is not stored: hand it over now or never."""
        token = cls(name=name, read_only=read_only, owner=owner)
        key = token.set_new_key()
        token.save()
        return token, key

    def set_new_key(self) -> str:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        self.prefix = key[:PREFIX_LENGTH]
        self.digest = hash_key(key)
        return key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            type(self).objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=self.revoked_at)

    def touch(self, now: Any = None) -> None:
        """Record a use, writing at most once a minute per token (one conditional UPDATE)."""
        now = now or timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_GRANULARITY:
            return
        stale = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USED_GRANULARITY)
        type(self).objects.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` of one token: the request it was first used with and, once done,
    the answer replayed to retries (see eid.api.idempotency). Expires after a day."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_once_per_token")]
        verbose_name = "idempotency key"

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
