"""Writes of the shared kernel."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.common.models import Heartbeat


def heartbeat_record(*, name: str) -> Heartbeat:
    """Record that ``name`` is alive now (real time). Idempotent: one row per name."""
    with transaction.atomic():
        beat, created = Heartbeat.objects.get_or_create(name=name, defaults={"last_seen": timezone.now(), "count": 1})
        if not created:
            Heartbeat.objects.filter(pk=beat.pk).update(last_seen=timezone.now(), count=F("count") + 1)
            beat.refresh_from_db()
    return beat
