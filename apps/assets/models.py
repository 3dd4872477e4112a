"""Distributed energy resources behind members' meters."""

from __future__ import annotations

from django.db import models

from apps.assets.choices import AssetKind
from apps.common.models import TimeStampedModel
from apps.members.models import Member
from apps.meters.models import Meter


class DerAsset(TimeStampedModel):
    """A PV array, battery, wind turbine, EV charger or heat pump behind a meter."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="assets")
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="assets", help_text="The meter this asset sits behind."
    )
    kind = models.CharField(max_length=16, choices=AssetKind.choices)
    name = models.CharField(max_length=100, blank=True)
    rated_power_w = models.PositiveIntegerField(help_text="Rated (peak) power in W.")
    capacity_wh = models.PositiveBigIntegerField(null=True, blank=True, help_text="Storage capacity in Wh.")
    flexible = models.BooleanField(default=False, help_text="Enrolled for demand response.")
    flex_power_w = models.PositiveIntegerField(default=0, help_text="Power it can shed or shift on request, in W.")

    class Meta:
        ordering = ["member", "kind", "pk"]
        indexes = [models.Index(fields=["kind"], name="asset_kind_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(rated_power_w__gt=0), name="asset_rated_power_positive"),
            models.CheckConstraint(
                condition=models.Q(flex_power_w__lte=models.F("rated_power_w")), name="asset_flex_within_rating"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.rated_power_w} W ({self.member.number})"
