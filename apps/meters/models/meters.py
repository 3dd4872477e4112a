"""Meters: serial, owner, connection point, role (main or sub) and a hashed device key."""

from __future__ import annotations

from django.db import models

from apps.common.models import TimeStampedModel
from apps.grid.models import ConnectionPoint
from apps.members.models import Member
from apps.meters.choices import MeterRole


class Meter(TimeStampedModel):
    """A smart meter, identified by its external serial (or EAN), with a hashed device key."""

    serial = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="meters")
    connection_point = models.ForeignKey(ConnectionPoint, on_delete=models.PROTECT, related_name="meters")
    role = models.CharField(max_length=8, choices=MeterRole.choices, default=MeterRole.MAIN)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sub_meters",
        help_text="For a sub-meter: the main meter it sits behind.",
    )
    bidirectional = models.BooleanField(default=True, help_text="Has both import (1.8.0) and export (2.8.0).")
    installed_at = models.DateTimeField(help_text="First instant (UTC) this meter measures.")
    removed_at = models.DateTimeField(null=True, blank=True, help_text="Set when the meter is swapped out.")
    key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    key_prefix = models.CharField(max_length=16, blank=True, editable=False)
    key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role=MeterRole.MAIN, parent__isnull=True) | models.Q(role=MeterRole.SUB),
                name="meter_main_has_no_parent",
            ),
            models.UniqueConstraint(
                fields=["connection_point"],
                condition=models.Q(role=MeterRole.MAIN, removed_at__isnull=True),
                name="meter_one_main_per_connection",
            ),
            models.CheckConstraint(
                condition=models.Q(removed_at__isnull=True) | models.Q(removed_at__gt=models.F("installed_at")),
                name="meter_removed_after_installed",
            ),
        ]
        indexes = [models.Index(fields=["member", "role"], name="meter_member_role_idx")]

    def __str__(self) -> str:
        return self.serial

    @property
    def is_main(self) -> bool:
        return self.role == MeterRole.MAIN
