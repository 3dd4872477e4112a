"""Writes of intervals: created on first use with their tariffs, tariffs refreshed while they
are open, dynamic prices published, and the moves of their state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.intervals import is_aligned
from apps.market import timing
from apps.market.choices import INTERVAL_TRANSITIONS, IntervalState
from apps.market.models import DynamicPrice, Interval
from apps.market.tariffs import Tariff, tariff_for


def _tariff_fields(tariff: Tariff) -> dict[str, Decimal]:
    return {
        "retail_price": tariff.retail_price,
        "feed_in_price": tariff.feed_in_price,
        "imbalance_price": tariff.imbalance_price,
        "network_fee": tariff.network_fee,
        "coop_fee": tariff.coop_fee,
    }


def interval_get_or_create(*, start: dt.datetime) -> Interval:
    """The interval starting at ``start``, created with the tariffs that apply to it."""
    existing = Interval.objects.filter(start=start).first()
    if existing is not None:
        return existing
    times = timing.interval_times(start)
    interval, _ = Interval.objects.get_or_create(
        start=start,
        defaults={"end": times.end, "gate_closure": times.gate_closure, **_tariff_fields(tariff_for(start))},
    )
    return interval


def interval_tariffs_refresh(*, start_from: dt.datetime, start_to: dt.datetime, now: dt.datetime) -> int:
    """Re-read the tariffs of intervals still open for orders in [start_from, start_to].

    Called when an operator changes a schedule or publishes a dynamic price. Intervals whose
    gate has closed keep the tariffs they were traded against.
    """
    updated = 0
    for interval in Interval.objects.filter(
        start__gte=start_from, start__lte=start_to, gate_closure__gt=now, state=IntervalState.OPEN
    ):
        fields = _tariff_fields(tariff_for(interval.start))
        if any(getattr(interval, name) != value for name, value in fields.items()):
            Interval.objects.filter(pk=interval.pk).update(**fields)
            updated += 1
    return updated


def dynamic_prices_set(*, prices: list[dict[str, Any]], now: dt.datetime) -> int:
    """Publish dynamic prices (e.g. day-ahead) for intervals; open intervals take them at once.

    All or nothing: one bad row refuses the whole batch with its index named.
    """
    fields: dict[str, list[str]] = {}
    for index, row in enumerate(prices):
        start = row["interval_start"].astimezone(dt.UTC)
        if not is_aligned(start):
            fields[f"prices[{index}].interval_start"] = ["Not the start of an interval."]
        if row["feed_in_price"] > row["retail_price"]:
            fields[f"prices[{index}].feed_in_price"] = ["The feed-in price cannot exceed the retail price."]
    if fields:
        raise ValidationFailed("Some prices are not valid.", fields=fields)
    with transaction.atomic():
        for row in prices:
            start = row["interval_start"].astimezone(dt.UTC)
            DynamicPrice.objects.update_or_create(
                interval_start=start,
                defaults={
                    "retail_price": row["retail_price"],
                    "feed_in_price": row["feed_in_price"],
                    "imbalance_price": row.get("imbalance_price"),
                    "network_fee": row.get("network_fee"),
                    "coop_fee": row.get("coop_fee"),
                    "source": row.get("source", ""),
                },
            )
        starts = [row["interval_start"].astimezone(dt.UTC) for row in prices]
        interval_tariffs_refresh(start_from=min(starts), start_to=max(starts), now=now)
    return len(prices)


def interval_move(*, interval: Interval, to_state: str) -> None:
    """Move the interval to ``to_state`` if its transitions allow it (else 409)."""
    if to_state not in INTERVAL_TRANSITIONS[interval.state]:
        raise Conflict(f"Interval {interval} cannot go from {interval.state} to {to_state}.", code="invalid_state")
    interval.state = to_state
    Interval.objects.filter(pk=interval.pk).update(state=to_state)


def interval_mark_settled(*, start: dt.datetime) -> None:
    """Settlement booked the interval: a cleared interval moves to ``settled`` (others stay)."""
    interval = Interval.objects.filter(start=start, state=IntervalState.CLEARED).first()
    if interval is not None:
        interval_move(interval=interval, to_state=IntervalState.SETTLED)
