"""Reads of the market, scoped to who asks; query shapes are chosen here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum

from apps.common.intervals import is_aligned
from apps.market import timing
from apps.market.choices import IntervalState, OrderStatus, Side
from apps.market.models import ClearingResult, Interval, Order, Trade
from apps.market.tariffs import tariff_for, tariffs_for
from apps.members.models import Member


def order_book_depth(*, interval: Interval) -> tuple[list[tuple[Decimal, int]], list[tuple[Decimal, int]]]:
    """Open quantity per price level: bids best (highest) first, offers best (lowest) first."""
    levels = (
        Order.objects.filter(interval=interval, status=OrderStatus.OPEN)
        .values("side", "limit_price")
        .annotate(quantity=Sum("quantity_wh"))
    )
    bids = sorted(((r["limit_price"], r["quantity"]) for r in levels if r["side"] == Side.BUY), reverse=True)
    offers = sorted((r["limit_price"], r["quantity"]) for r in levels if r["side"] == Side.SELL)
    return bids, offers


def orders_for_member(*, member: Member, interval_start: dt.datetime | None = None) -> QuerySet[Order]:
    orders = Order.objects.filter(member=member).select_related("interval")
    if interval_start is not None:
        orders = orders.filter(interval__start=interval_start)
    return orders.order_by("-interval__start", "-pk")


@dataclass(frozen=True)
class MemberTrade:
    interval_start: dt.datetime
    side: str
    quantity_wh: int
    price: Decimal
    amount: Decimal
    order_id: int


def trades_for_member(
    *,
    member: Member,
    interval_start: dt.datetime | None = None,
    start_from: dt.datetime | None = None,
    start_to: dt.datetime | None = None,
    side: str | None = None,
) -> list[MemberTrade]:
    """The member's own trades, from their side: what they paid (buy) or got (sell)."""
    trades: list[MemberTrade] = []
    for trade_side, field in ((Side.BUY, "buyer"), (Side.SELL, "seller")):
        if side and side != trade_side:
            continue
        qs = Trade.objects.filter(**{field: member}).select_related("interval")
        if interval_start is not None:
            qs = qs.filter(interval__start=interval_start)
        if start_from is not None:
            qs = qs.filter(interval__start__gte=start_from)
        if start_to is not None:
            qs = qs.filter(interval__start__lt=start_to)
        for t in qs:
            buying = trade_side == Side.BUY
            trades.append(
                MemberTrade(
                    interval_start=t.interval.start,
                    side=trade_side,
                    quantity_wh=t.quantity_wh,
                    price=t.buyer_price if buying else t.seller_price,
                    amount=t.buyer_amount if buying else t.seller_amount,
                    order_id=t.buy_order_id if buying else t.sell_order_id,
                )
            )
    trades.sort(key=lambda t: (t.interval_start, t.order_id), reverse=True)
    return trades


@dataclass(frozen=True)
class IntervalResult:
    interval_start: dt.datetime
    price: Decimal | None
    volume_wh: int
    trades: int
    bids_wh: int
    offers_wh: int
    mechanism: str | None


def result_for(*, start: dt.datetime, now: dt.datetime) -> IntervalResult | None:
    """The clearing result; an interval whose gate closed without orders reads as cleared with
    no price. None while it is not cleared."""
    result = ClearingResult.objects.filter(interval__start=start).select_related("interval").first()
    if result is not None:
        return IntervalResult(
            interval_start=start,
            price=result.price,
            volume_wh=result.volume_wh,
            trades=result.trades_count,
            bids_wh=result.bids_wh,
            offers_wh=result.offers_wh,
            mechanism=result.mechanism,
        )
    if (
        is_aligned(start)
        and timing.gate_is_closed(start, now)
        and not Order.objects.filter(interval__start=start).exists()
    ):
        return IntervalResult(
            interval_start=start, price=None, volume_wh=0, trades=0, bids_wh=0, offers_wh=0, mechanism=None
        )
    return None


@dataclass(frozen=True)
class IntervalRow:
    start: dt.datetime
    end: dt.datetime
    gate_closure: dt.datetime
    state: str
    price: Decimal | None = None
    volume_wh: int | None = None
    retail_price: Decimal | None = None
    feed_in_price: Decimal | None = None


def intervals_list(*, now: dt.datetime, state: str | None = None, limit: int = 100) -> list[IntervalRow]:
    """Intervals by state. Open ones need not exist yet: every aligned start up to the horizon
    is open. Cleared and settled ones, most recent first."""
    rows: list[IntervalRow] = []
    if state in (None, IntervalState.OPEN):
        starts = timing.open_interval_starts(now, limit=limit)
        stored = {i.start: i for i in Interval.objects.filter(start__in=starts)}
        computed = tariffs_for([s for s in starts if s not in stored])
        for start in starts:
            times = timing.interval_times(start)
            interval = stored.get(start)
            tariff = interval if interval is not None else computed[start]
            rows.append(
                IntervalRow(
                    start=start,
                    end=times.end,
                    gate_closure=times.gate_closure,
                    state=IntervalState.OPEN,
                    retail_price=tariff.retail_price,
                    feed_in_price=tariff.feed_in_price,
                )
            )
    if state in (None, IntervalState.CLOSED):
        for interval in Interval.objects.filter(
            state__in=[IntervalState.OPEN, IntervalState.CLOSED], gate_closure__lte=now
        ).order_by("-start")[:limit]:
            rows.append(
                IntervalRow(start=interval.start, end=interval.end, gate_closure=interval.gate_closure, state="closed")
            )
    if state in (None, IntervalState.CLEARED, IntervalState.SETTLED):
        wanted = [state] if state else [IntervalState.CLEARED, IntervalState.SETTLED]
        for result in (
            ClearingResult.objects.filter(interval__state__in=wanted)
            .select_related("interval")
            .order_by("-interval__start")[:limit]
        ):
            interval = result.interval
            rows.append(
                IntervalRow(
                    start=interval.start,
                    end=interval.end,
                    gate_closure=interval.gate_closure,
                    state=interval.state,
                    price=result.price,
                    volume_wh=result.volume_wh,
                    retail_price=interval.retail_price,
                    feed_in_price=interval.feed_in_price,
                )
            )
    return rows[:limit] if state else rows


def cleared_interval_starts(*, start: dt.datetime, end: dt.datetime) -> set[dt.datetime]:
    """The starts in [start, end) of the intervals that have a clearing result."""
    return set(
        ClearingResult.objects.filter(interval__start__gte=start, interval__start__lt=end).values_list(
            "interval__start", flat=True
        )
    )


def recent_prices(*, limit: int = 96) -> list[ClearingResult]:
    """The last cleared intervals, oldest first (the price chart)."""
    results = list(ClearingResult.objects.select_related("interval").order_by("-interval__start")[:limit])
    return results[::-1]


def open_orders_count(*, interval: Interval) -> int:
    return Order.objects.filter(interval=interval, status=OrderStatus.OPEN).aggregate(n=Count("pk"))["n"]


def interval_tariff(*, start: dt.datetime):  # type: ignore[no-untyped-def]
    """The tariffs an interval was traded against (frozen on the interval), or the ones that
    apply to it when it never had an order."""
    interval = Interval.objects.filter(start=start).first()
    return interval if interval is not None else tariff_for(start)


@dataclass(frozen=True)
class MemberTradeTotals:
    bought_wh: int = 0
    sold_wh: int = 0
    p2p_cost: Decimal = Decimal("0.0000")
    p2p_revenue: Decimal = Decimal("0.0000")


def trade_totals_by_member(*, start: dt.datetime) -> dict[int, MemberTradeTotals]:
    """Per member: P2P Wh bought and sold in the interval and the sums of their rounded trade
    amounts (two grouped queries)."""
    totals: dict[int, MemberTradeTotals] = {}
    for bought in (
        Trade.objects.filter(interval__start=start)
        .values("buyer_id")
        .annotate(wh=Sum("quantity_wh"), amount=Sum("buyer_amount"))
    ):
        totals[bought["buyer_id"]] = MemberTradeTotals(bought_wh=bought["wh"], p2p_cost=bought["amount"])
    for sold in (
        Trade.objects.filter(interval__start=start)
        .values("seller_id")
        .annotate(wh=Sum("quantity_wh"), amount=Sum("seller_amount"))
    ):
        current = totals.get(sold["seller_id"], MemberTradeTotals())
        totals[sold["seller_id"]] = MemberTradeTotals(
            bought_wh=current.bought_wh, sold_wh=sold["wh"], p2p_cost=current.p2p_cost, p2p_revenue=sold["amount"]
        )
    return totals


def interval_spread(*, start: dt.datetime) -> Decimal:
    """Pay-as-bid: what buyers pay beyond what sellers get, which goes to the coop."""
    sums = Trade.objects.filter(interval__start=start).aggregate(b=Sum("buyer_amount"), s=Sum("seller_amount"))
    return (sums["b"] or Decimal(0)) - (sums["s"] or Decimal(0))
