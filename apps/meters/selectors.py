"""Reads of meters, always scoped to who asks."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.members.models import Member
from apps.meters.models import Meter


def meters_for_member(*, member: Member) -> QuerySet[Meter]:
    """The member's own meters (main first, then sub-meters), never anyone else's."""
    return Meter.objects.filter(member=member).select_related("connection_point__feeder").order_by("role", "serial")
