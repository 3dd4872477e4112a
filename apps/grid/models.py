"""Grid topology: substation > transformer > feeder > connection point, with ratings."""

from __future__ import annotations

from django.db import models

from apps.common.models import TimeStampedModel


class Substation(TimeStampedModel):
    """Where the coop's local grid meets the distribution grid."""

    name = models.CharField(max_length=100, unique=True)
    rated_power_w = models.PositiveBigIntegerField(help_text="Rating in W (apparent power at unity power factor).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Transformer(TimeStampedModel):
    """A distribution transformer in a substation."""

    substation = models.ForeignKey(Substation, on_delete=models.PROTECT, related_name="transformers")
    name = models.CharField(max_length=100, unique=True)
    rated_power_w = models.PositiveBigIntegerField(help_text="Rating in W (kVA x 1000 at unity power factor).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Feeder(TimeStampedModel):
    """A low-voltage feeder leaving a transformer; connection points hang off it."""

    transformer = models.ForeignKey(Transformer, on_delete=models.PROTECT, related_name="feeders")
    name = models.CharField(max_length=100, unique=True)
    rated_power_w = models.PositiveBigIntegerField(help_text="Thermal limit of the feeder in W.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ConnectionPoint(TimeStampedModel):
    """One grid connection (a household's or a building's), with its contracted capacity."""

    feeder = models.ForeignKey(Feeder, on_delete=models.PROTECT, related_name="connection_points")
    code = models.CharField(max_length=32, unique=True, help_text="EAN or the coop's own code.")
    address = models.CharField(max_length=200, blank=True)
    capacity_w = models.PositiveIntegerField(help_text="Connection capacity in W (e.g. 3x25 A ≈ 17,250 W).")

    class Meta:
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=models.Q(capacity_w__gt=0), name="cp_capacity_positive")]

    def __str__(self) -> str:
        return self.code
