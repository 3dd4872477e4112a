"""Base models shared by every app."""

from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    """Creation and last-change times (real time: bookkeeping, not business time)."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Heartbeat(models.Model):
    """The last time a process kind (worker, beat) proved it was alive."""

    name = models.CharField(max_length=64, unique=True)
    last_seen = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
