"""Which tariffs apply to an interval: a dynamic price, else the best time-of-use schedule,
else the defaults in settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from apps.common.intervals import coop_zone
from apps.market.models import DynamicPrice, TariffSchedule


@dataclass(frozen=True)
class Tariff:
    retail_price: Decimal
    feed_in_price: Decimal
    imbalance_price: Decimal
    network_fee: Decimal
    coop_fee: Decimal
    source: str


def _defaults() -> Tariff:
    return Tariff(
        retail_price=Decimal(settings.TARIFF_DEFAULT_RETAIL),
        feed_in_price=Decimal(settings.TARIFF_DEFAULT_FEED_IN),
        imbalance_price=Decimal(settings.TARIFF_DEFAULT_IMBALANCE),
        network_fee=Decimal(settings.TARIFF_DEFAULT_NETWORK_FEE),
        coop_fee=Decimal(settings.TARIFF_DEFAULT_COOP_FEE),
        source="default",
    )


def _schedule_applies(schedule: TariffSchedule, local: dt.datetime) -> bool:
    if str(local.isoweekday()) not in schedule.weekdays:
        return False
    clock = local.time()
    end = schedule.end_time
    if end == dt.time(0, 0):
        return clock >= schedule.start_time
    if schedule.start_time <= end:
        return schedule.start_time <= clock < end
    return clock >= schedule.start_time or clock < end  # across midnight


def _applies_on(schedule: TariffSchedule, day: dt.date) -> bool:
    return schedule.valid_from <= day and (schedule.valid_until is None or schedule.valid_until >= day)


def _tariff_from(local: dt.datetime, schedules: list[TariffSchedule], dynamic: DynamicPrice | None) -> Tariff:
    """The tariff of one interval from the schedules (best first) and its dynamic price: pure."""
    base = _defaults()
    for schedule in schedules:
        if _applies_on(schedule, local.date()) and _schedule_applies(schedule, local):
            base = Tariff(
                retail_price=schedule.retail_price,
                feed_in_price=schedule.feed_in_price,
                imbalance_price=schedule.imbalance_price,
                network_fee=schedule.network_fee,
                coop_fee=schedule.coop_fee,
                source=f"schedule:{schedule.pk}",
            )
            break
    if dynamic is None:
        return base
    return Tariff(
        retail_price=dynamic.retail_price,
        feed_in_price=dynamic.feed_in_price,
        imbalance_price=dynamic.imbalance_price if dynamic.imbalance_price is not None else dynamic.retail_price,
        network_fee=dynamic.network_fee if dynamic.network_fee is not None else base.network_fee,
        coop_fee=dynamic.coop_fee if dynamic.coop_fee is not None else base.coop_fee,
        source=f"dynamic:{dynamic.pk}",
    )


def tariffs_for(starts: list[dt.datetime]) -> dict[dt.datetime, Tariff]:
    """The tariff of each interval start (UTC), in two queries however many starts."""
    if not starts:
        return {}
    zone = coop_zone()
    locals_ = {start: start.astimezone(zone) for start in starts}
    first, last = min(v.date() for v in locals_.values()), max(v.date() for v in locals_.values())
    schedules = list(
        TariffSchedule.objects.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=first), valid_from__lte=last
        ).order_by("-priority", "-valid_from", "pk")
    )
    dynamic = {d.interval_start: d for d in DynamicPrice.objects.filter(interval_start__in=starts).order_by("pk")}
    return {start: _tariff_from(local, schedules, dynamic.get(start)) for start, local in locals_.items()}


def tariff_for(start: dt.datetime) -> Tariff:
    """The tariff for the interval starting at ``start`` (UTC)."""
    return tariffs_for([start])[start]
