"""Writes for DER assets."""

from __future__ import annotations

from apps.assets.choices import STORAGE_KINDS, AssetKind
from apps.assets.models import DerAsset
from apps.common.exceptions import ValidationFailed
from apps.meters.models import Meter


def asset_register(
    *,
    meter: Meter,
    kind: str,
    rated_power_w: int,
    capacity_wh: int | None = None,
    flexible: bool = False,
    flex_power_w: int = 0,
    name: str = "",
) -> DerAsset:
    """Register an asset behind one of the member's meters."""
    fields: dict[str, list[str]] = {}
    if kind not in AssetKind.values:
        fields["kind"] = [f"One of {AssetKind.values}."]
    if rated_power_w <= 0:
        fields["rated_power_w"] = ["Must be > 0 W."]
    if kind in STORAGE_KINDS and not capacity_wh:
        fields["capacity_wh"] = ["A battery or EV charger needs a capacity in Wh."]
    if not 0 <= flex_power_w <= max(rated_power_w, 0):
        fields["flex_power_w"] = ["Between 0 and the rated power."]
    if fields:
        raise ValidationFailed("The asset is not valid.", fields=fields)
    return DerAsset.objects.create(
        member=meter.member,
        meter=meter,
        kind=kind,
        name=name,
        rated_power_w=rated_power_w,
        capacity_wh=capacity_wh,
        flexible=flexible,
        flex_power_w=flex_power_w,
    )
