"""Writes for the grid topology."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.common.exceptions import ValidationFailed
from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer

DEFAULT_SUBSTATION = "Coop substation"
DEFAULT_TRANSFORMER = "T1"
DEFAULT_SUBSTATION_RATING_W = 1_000_000
DEFAULT_TRANSFORMER_RATING_W = 630_000
DEFAULT_FEEDER_RATING_W = 250_000


def feeder_get_or_create(*, name: str, transformer: Transformer | None = None) -> Feeder:
    """The feeder called ``name``; created (under the default transformer) if missing."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A feeder needs a name.", fields={"feeder": ["This field is required."]})
    existing = Feeder.objects.filter(name=name).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            if transformer is None:
                substation, _ = Substation.objects.get_or_create(
                    name=DEFAULT_SUBSTATION, defaults={"rated_power_w": DEFAULT_SUBSTATION_RATING_W}
                )
                transformer, _ = Transformer.objects.get_or_create(
                    name=DEFAULT_TRANSFORMER,
                    defaults={"substation": substation, "rated_power_w": DEFAULT_TRANSFORMER_RATING_W},
                )
            return Feeder.objects.create(name=name, transformer=transformer, rated_power_w=DEFAULT_FEEDER_RATING_W)
    except IntegrityError:
        # Created at the same moment by someone else: theirs is as good as ours.
        return Feeder.objects.get(name=name)


def connection_point_create(
    *, feeder: Feeder, code: str, capacity_w: int | None = None, address: str = ""
) -> ConnectionPoint:
    capacity = settings.DEFAULT_CONNECTION_CAPACITY_W if capacity_w is None else capacity_w
    if capacity <= 0:
        raise ValidationFailed("Capacity must be positive.", fields={"capacity_w": ["Must be > 0 W."]})
    if ConnectionPoint.objects.filter(code=code).exists():
        raise ValidationFailed(f"Connection point {code} exists.", fields={"code": ["Already registered."]})
    return ConnectionPoint.objects.create(feeder=feeder, code=code, capacity_w=capacity, address=address)
