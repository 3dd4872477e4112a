"""Automated trading: orders placed, amended or cancelled for members from their forecasts.

Most members never place an order by hand; this is what makes the market live. For every
active member with a main meter whose trading is not paused, and every interval in the next
``AUTOTRADE_INTERVALS`` whose gate is open and that holds no order of the member's own, the
forecast surplus is offered and the forecast deficit bid for. Safe to run twice and at once:
each member is reconciled under its row lock, reading its orders only after taking it, so a
second run finds the first run's orders and leaves them be. Every other lock (the interval
FOR SHARE, then the order) is taken by the order services, one interval at a time, in the
order ``apps.market.locks`` documents.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from apps.common.exceptions import DomainError, ValidationFailed
from apps.common.intervals import coop_zone
from apps.common.units import PRICE_DECIMAL_PLACES, is_price, price_round
from apps.market import forecast, locks, timing
from apps.market.choices import OrderSource, OrderStatus, Side
from apps.market.models import Order, TradingPreference
from apps.market.services.intervals import interval_get_or_create
from apps.market.services.orders import OrderInput, members_capacity_wh, order_amend, order_submit, order_withdraw
from apps.members.choices import MemberStatus
from apps.members.models import Member
from apps.meters.choices import MeterRole
from apps.meters.selectors import members_interval_energy

logger = logging.getLogger(__name__)

# Smallest surplus or deficit worth an order (Wh): below it the member simply uses the grid.
MIN_ORDER_WH = 50
# Default limits when a member sets none: sellers ask, buyers bid this far into the band.
DEFAULT_BAND_SHARE = Decimal("0.25")


@dataclass(frozen=True)
class Plan:
    interval_start: dt.datetime
    side: str
    quantity_wh: int
    limit_price: Decimal


@dataclass
class AutoTradeReport:
    placed: int = 0
    amended: int = 0
    cancelled: int = 0
    unchanged: int = 0
    errors: int = 0


def _limit(side: str, preference: TradingPreference | None, feed_in: Decimal, retail: Decimal) -> Decimal:
    band = retail - feed_in
    if side == Side.SELL:
        wanted = preference.sell_min_price if preference and preference.sell_min_price is not None else None
        price = wanted if wanted is not None else feed_in + band * DEFAULT_BAND_SHARE
    else:
        wanted = preference.buy_max_price if preference and preference.buy_max_price is not None else None
        price = wanted if wanted is not None else retail - band * DEFAULT_BAND_SHARE
    return price_round(min(max(price, feed_in), retail))


def auto_orders_run(*, now: dt.datetime, intervals: int | None = None, publish: bool = True) -> AutoTradeReport:
    """Forecast, then place, amend or cancel automated orders for the next intervals."""
    count = intervals or settings.AUTOTRADE_INTERVALS
    starts = timing.open_interval_starts(now, limit=count)
    report = AutoTradeReport()
    if not starts:
        return report
    tz = coop_zone()
    history_from = starts[0] - dt.timedelta(days=forecast.LOOKBACK_DAYS)
    history = members_interval_energy(start=history_from, end=starts[0])
    preferences = {p.member_id: p for p in TradingPreference.objects.all()}
    trading = Member.objects.filter(
        status=MemberStatus.ACTIVE, meters__role=MeterRole.MAIN, meters__removed_at__isnull=True
    ).distinct()
    intervals_by_start = {start: interval_get_or_create(start=start) for start in starts}
    members = list(trading.order_by("pk"))
    capacities = members_capacity_wh(member_ids=[m.pk for m in members])
    # Members with a live automated order must be visited even when their forecast is empty now.
    with_live = set(
        Order.objects.filter(interval__start__in=starts, source=OrderSource.AUTO, status=OrderStatus.OPEN).values_list(
            "member_id", flat=True
        )
    )
    for member in members:
        preference = preferences.get(member.pk)
        net_history = {start: e.import_wh - e.export_wh for start, e in history.get(member.pk, {}).items()}
        plans: dict[dt.datetime, Plan | None] = {}
        capacity = capacities[member.pk]
        for start in starts:
            interval = intervals_by_start[start]
            plans[start] = None
            if preference is not None and not preference.enabled:
                continue
            net = forecast.net_forecast_wh(start, net_history, tz)
            if net is None or abs(net) < MIN_ORDER_WH:
                continue
            side = Side.BUY if net > 0 else Side.SELL
            if side == Side.SELL and preference is not None and not preference.sell_surplus:
                continue
            if side == Side.BUY and preference is not None and not preference.buy_deficit:
                continue
            limit = _limit(side, preference, interval.feed_in_price, interval.retail_price)
            plans[start] = Plan(start, side, min(abs(net), capacity), limit)
        if member.pk not in with_live and not any(plans.values()):
            continue  # nothing to place and nothing to withdraw
        try:
            _member_reconcile(member=member, plans=plans, now=now, report=report, publish=publish)
        except DomainError as exc:
            report.errors += 1
            logger.warning("automated trading for member %s: %s", member.number, exc.message)
    return report


def _member_reconcile(
    *,
    member: Member,
    plans: dict[dt.datetime, Plan | None],
    now: dt.datetime,
    report: AutoTradeReport,
    publish: bool,
) -> None:
    with transaction.atomic():
        member = locks.member_lock(member_id=member.pk)
        # Read, not locked: under the member's lock only this member's own transactions change
        # these orders before gate closure; each action below locks what it changes.
        orders = Order.objects.filter(member=member, interval__start__in=list(plans)).select_related("interval")
        manual = {o.interval.start for o in orders if o.source == OrderSource.MANUAL}
        live = {o.interval.start: o for o in orders if o.source == OrderSource.AUTO and o.status == OrderStatus.OPEN}
        for start, plan in plans.items():
            if start in manual or timing.gate_is_closed(start, now):
                continue  # the member's own order takes the interval out of automated trading
            current = live.get(start)
            if plan is None:
                if current is not None:
                    order_withdraw(order=current, now=now, detail="forecast no longer calls for it")
                    report.cancelled += 1
                continue
            if current is not None and current.side != plan.side:
                order_withdraw(order=current, now=now, detail="forecast changed side")
                report.cancelled += 1
                current = None
            if current is None:
                order_submit(
                    member=member,
                    order=OrderInput(plan.interval_start, plan.side, plan.quantity_wh, plan.limit_price),
                    now=now,
                    source=OrderSource.AUTO,
                    publish=publish,
                )
                report.placed += 1
            elif current.quantity_wh != plan.quantity_wh or current.limit_price != plan.limit_price:
                order_amend(
                    order=current, quantity_wh=plan.quantity_wh, limit_price=plan.limit_price, now=now, publish=publish
                )
                report.amended += 1
            else:
                report.unchanged += 1


def trading_preference_set(
    *,
    member: Member,
    enabled: bool = True,
    sell_surplus: bool = True,
    buy_deficit: bool = True,
    sell_min_price: Decimal | None = None,
    buy_max_price: Decimal | None = None,
) -> TradingPreference:
    """Set a member's automated trading preferences (prices per kWh; None: the band's edge)."""
    fields: dict[str, list[str]] = {}
    for name, value in (("sell_min_price", sell_min_price), ("buy_max_price", buy_max_price)):
        if value is not None and not is_price(value):
            fields[name] = [f"A decimal with at most {PRICE_DECIMAL_PLACES} places."]
    if fields:
        raise ValidationFailed("The preferences are not valid.", fields=fields)
    preference, _ = TradingPreference.objects.update_or_create(
        member=member,
        defaults={
            "enabled": enabled,
            "sell_surplus": sell_surplus,
            "buy_deficit": buy_deficit,
            "sell_min_price": sell_min_price,
            "buy_max_price": buy_max_price,
        },
    )
    return preference
