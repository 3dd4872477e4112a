"""Readings (what meters sent, never changed) and interval energy (what we derive from them).

The two big tables are keyed by (meter, time) with a composite primary key and carry no
database-level foreign key: a readings row is written a million times a day, and a foreign
key check per row would cost more than the row itself. Meters are never deleted
(``on_delete=PROTECT``), and only the ingest service writes these tables, resolving every
meter id from the meters table first.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.meters.choices import RejectionCode
from apps.meters.models.meters import Meter


class Reading(models.Model):
    """Cumulative register values of one meter at an interval boundary (UTC).

    ``import_wh`` is OBIS 1.8.0 (energy taken from the grid), ``export_wh`` OBIS 2.8.0
    (energy fed into the grid), both in Wh since the meter was installed. Append-only: a
    resend with other values is refused as a conflict, never written over.
    """

    pk = models.CompositePrimaryKey("meter_id", "ts")
    # The primary key (meter_id, ...) serves every look-up by meter: no separate meter_id index.
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+")
    ts = models.DateTimeField(help_text="Interval boundary (UTC) the registers were read at.")
    import_wh = models.BigIntegerField(help_text="OBIS 1.8.0, cumulative Wh.")
    export_wh = models.BigIntegerField(help_text="OBIS 2.8.0, cumulative Wh (0 for import-only meters).")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["meter_id", "ts"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(import_wh__gte=0, export_wh__gte=0), name="reading_registers_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.ts:%Y-%m-%d %H:%M} +{self.import_wh} -{self.export_wh}"


class IntervalEnergy(models.Model):
    """Energy of one meter in one market interval, from the register deltas of its readings.

    ``estimated`` marks values not measured directly: a gap between two readings is shared
    out (linearly, or by a like-day profile for long gaps) so that the sum over the gap
    always equals the measured register delta. A later reading replaces the estimate and
    leaves an :class:`IntervalCorrection` behind.
    """

    pk = models.CompositePrimaryKey("meter_id", "interval_start")
    # The primary key (meter_id, ...) serves every look-up by meter: no separate meter_id index.
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+")
    interval_start = models.DateTimeField()
    import_wh = models.BigIntegerField()
    export_wh = models.BigIntegerField()
    estimated = models.BooleanField(default=False)

    class Meta:
        ordering = ["meter_id", "interval_start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(import_wh__gte=0, export_wh__gte=0), name="interval_energy_non_negative"
            ),
        ]
        indexes = [
            # Only estimated rows can lie where a new reading lands (a measured interval sits
            # between two adjacent readings): the ingest asks this small index, not the table.
            models.Index(
                fields=["meter", "interval_start"],
                condition=models.Q(estimated=True),
                name="interval_estimated_idx",
            ),
        ]

    def __str__(self) -> str:
        flag = " (estimated)" if self.estimated else ""
        return f"{self.meter_id}@{self.interval_start:%Y-%m-%d %H:%M} +{self.import_wh} -{self.export_wh}{flag}"


class IntervalCorrection(models.Model):
    """A stored interval's energy changed (usually: an estimate replaced by measured values).

    Append-only. Settlement reads these (``selectors.interval_corrections_since``) to know
    which settled intervals need a correction run; ``id`` only grows, so a consumer keeps the
    last id it processed.
    """

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_index=False, related_name="+")  # see Meta.indexes
    interval_start = models.DateTimeField()
    old_import_wh = models.BigIntegerField()
    old_export_wh = models.BigIntegerField()
    old_estimated = models.BooleanField()
    new_import_wh = models.BigIntegerField()
    new_export_wh = models.BigIntegerField()
    new_estimated = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["meter", "interval_start"], name="correction_meter_interval_idx")]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.interval_start:%Y-%m-%d %H:%M}: {self.old_import_wh}->{self.new_import_wh}"


class ReadingRejection(models.Model):
    """A refused reading, kept so operators can see which meters send bad data."""

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="rejections"
    )  # rejection_meter_received_idx starts with meter_id
    serial = models.CharField(max_length=64, blank=True)
    ts = models.DateTimeField(null=True, blank=True)
    code = models.CharField(max_length=24, choices=RejectionCode.choices)
    message = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["received_at"], name="rejection_received_idx"),
            models.Index(fields=["meter", "received_at"], name="rejection_meter_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.serial} {self.code}"
