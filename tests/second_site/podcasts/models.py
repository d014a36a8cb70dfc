"""Another partner's content: an episode is one audio object; an edit that comes back is a cut."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Episode(models.Model):
    slug = models.SlugField(unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    audio_key = models.CharField(max_length=500)
    source_uuid = models.UUIDField(default=uuid.uuid4, unique=True)


class Cut(models.Model):
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="cuts")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    audio_key = models.CharField(max_length=500)
    size = models.BigIntegerField()

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["episode", "number"], name="cut_number_unique")]
