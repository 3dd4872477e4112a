"""Writes of orders: input parsing, submission, amendment and cancellation, and the
connection capacity that bounds them.

Locks go through ``apps.market.locks``, in its order: the member, then the interval (FOR
SHARE, so a clearing waits for the order being written), then the interval's orders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from apps.common.exceptions import Conflict, Forbidden, NotFound, Unprocessable, ValidationFailed
from apps.common.intervals import is_aligned
from apps.common.units import PRICE_DECIMAL_PLACES, PRICE_MAX_DIGITS, is_price
from apps.market import locks, timing
from apps.market.choices import ORDER_TRANSITIONS, IntervalState, OrderEventKind, OrderSource, OrderStatus, Side
from apps.market.models import Interval, Order, OrderEvent
from apps.market.selectors import order_book_depth
from apps.market.services.intervals import interval_get_or_create
from apps.members.models import Member
from apps.meters.choices import MeterRole
from apps.meters.models import Meter

MAX_QUANTITY_WH = 10**12


@dataclass(frozen=True)
class OrderInput:
    interval_start: dt.datetime
    side: str
    quantity_wh: int
    limit_price: Decimal


def order_input_parse(
    *, interval_start: Any, side: Any, quantity_wh: Any, limit_price: Any, now: dt.datetime
) -> OrderInput:
    """Check the fields that are wrong whatever the state (400, each bad field named)."""
    from apps.common.clock import parse_instant

    fields: dict[str, list[str]] = {}
    start: dt.datetime | None = None
    if isinstance(interval_start, dt.datetime):
        start = interval_start.astimezone(dt.UTC) if interval_start.tzinfo else None
        if start is None:
            fields["interval_start"] = ["A time zone is required (UTC, with Z)."]
    elif isinstance(interval_start, str):
        try:
            start = parse_instant(interval_start)
        except ValueError:
            fields["interval_start"] = ["An ISO 8601 UTC instant such as 2026-11-23T08:00:00Z."]
    else:
        fields["interval_start"] = ["This field is required."]
    if start is not None:
        if not is_aligned(start):
            fields["interval_start"] = [f"Not the start of a {settings.MARKET_INTERVAL_MINUTES}-minute interval."]
        elif start > timing.horizon_end(now):
            fields["interval_start"] = [f"The market opens {settings.MARKET_OPEN_HOURS} h ahead; too far ahead."]
    if side not in Side.values:
        fields["side"] = ['"buy" or "sell".']
    if isinstance(quantity_wh, bool) or not isinstance(quantity_wh, int):
        fields["quantity_wh"] = ["An integer number of Wh."]
    elif not 0 < quantity_wh <= MAX_QUANTITY_WH:
        fields["quantity_wh"] = ["Must be greater than 0 Wh."]
    price: Decimal | None = None
    if isinstance(limit_price, (bool, float)):
        fields["limit_price"] = ['A decimal string such as "0.12000", never a float.']
    else:
        try:
            price = Decimal(str(limit_price)) if limit_price is not None else None
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite():
            fields["limit_price"] = ['A decimal string such as "0.12000".']
        elif abs(price) >= Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES):
            fields["limit_price"] = ["Out of range: a price per kWh below 100000."]
        elif not is_price(price):
            fields["limit_price"] = [f"At most {PRICE_DECIMAL_PLACES} decimal places."]
    if fields:
        raise ValidationFailed("The order is not valid.", fields=fields)
    assert start is not None and price is not None
    return OrderInput(interval_start=start, side=side, quantity_wh=quantity_wh, limit_price=price)


def member_capacity_wh(*, member: Member) -> int:
    """What the member's grid connections can carry in one interval (sum over main meters)."""
    capacity_w = (
        (
            Meter.objects.filter(member=member, role=MeterRole.MAIN, removed_at__isnull=True)
            .values("connection_point")
            .distinct()
            .aggregate(total=Sum("connection_point__capacity_w"))["total"]
        )
        or settings.DEFAULT_CONNECTION_CAPACITY_W
    )
    return capacity_w * settings.MARKET_INTERVAL_MINUTES // 60


def members_capacity_wh(*, member_ids: list[int]) -> dict[int, int]:
    """:func:`member_capacity_wh` for many members in one grouped query."""
    rows = (
        Meter.objects.filter(member_id__in=member_ids, role=MeterRole.MAIN, removed_at__isnull=True)
        .values("member_id")
        .annotate(total=Sum("connection_point__capacity_w"))
    )
    capacity_w = {row["member_id"]: row["total"] for row in rows}
    return {
        member_id: (capacity_w.get(member_id) or settings.DEFAULT_CONNECTION_CAPACITY_W)
        * settings.MARKET_INTERVAL_MINUTES
        // 60
        for member_id in member_ids
    }


def _has_main_meter(member: Member) -> bool:
    return Meter.objects.filter(member=member, role=MeterRole.MAIN, removed_at__isnull=True).exists()


def _request_hash(order: OrderInput) -> str:
    text = f"{order.interval_start.isoformat()}|{order.side}|{order.quantity_wh}|{order.limit_price.normalize()}"
    return hashlib.sha256(text.encode()).hexdigest()


def _order_move(order: Order, to_status: str) -> None:
    if to_status not in ORDER_TRANSITIONS[order.status]:
        raise Conflict(f"Order {order.pk} is {order.status}.", code=f"order_{order.status}")
    order.status = to_status


def order_submit(
    *,
    member: Member,
    order: OrderInput,
    now: dt.datetime,
    idempotency_key: str | None = None,
    source: str = OrderSource.MANUAL,
    publish: bool = True,
) -> tuple[Order, bool]:
    """Place an order; returns ``(order, created)``. A replay of the same idempotency key and
    body returns the first order (``created`` False); the same key with another body is 422."""
    request_hash = _request_hash(order)
    with transaction.atomic():
        member = locks.member_lock(member_id=member.pk)
        if idempotency_key:
            previous = Order.objects.filter(member=member, idempotency_key=idempotency_key).first()
            if previous is not None:
                if previous.request_hash != request_hash:
                    raise Unprocessable(
                        "This Idempotency-Key was used for a different order.", code="idempotency_key_reused"
                    )
                return previous, False
        if not member.is_active_member:
            raise Forbidden("Only active members can trade.", code="member_not_active")
        if timing.gate_is_closed(order.interval_start, now):
            raise Conflict("The gate of this interval has closed.", code="gate_closed")
        interval = locks.interval_share(interval_id=interval_get_or_create(start=order.interval_start).pk)
        if interval.state != IntervalState.OPEN:
            raise Conflict("The gate of this interval has closed.", code="gate_closed")
        fields: dict[str, list[str]] = {}
        if not interval.feed_in_price <= order.limit_price <= interval.retail_price:
            fields["limit_price"] = [
                f"Must lie within the interval's tariff band [{interval.feed_in_price}, {interval.retail_price}]."
            ]
        capacity_wh = member_capacity_wh(member=member)
        if order.quantity_wh > capacity_wh:
            fields["quantity_wh"] = [f"Above your connection capacity for one interval ({capacity_wh} Wh)."]
        if fields:
            raise ValidationFailed("The order is not valid.", fields=fields)
        if order.side == Side.SELL and not _has_main_meter(member):
            raise Conflict("Selling needs a main meter.", code="no_main_meter")
        mine = Order.objects.filter(member=member, interval=interval, status=OrderStatus.OPEN)
        if source == OrderSource.MANUAL:
            # A member's own order takes the interval out of automated trading.
            for auto in locks.orders_lock(mine.filter(source=OrderSource.AUTO)):
                _cancel(auto, now=now, detail="replaced by the member's own order")
        opposite = Side.SELL if order.side == Side.BUY else Side.BUY
        # Read, not locked: the member's lock and the interval's share keep it as it is.
        if mine.filter(side=opposite).exists():
            raise Conflict(
                f"You already have a {opposite} order in this interval; cancel it first.", code="opposite_side_order"
            )
        created = Order.objects.create(
            member=member,
            interval=interval,
            side=order.side,
            quantity_wh=order.quantity_wh,
            limit_price=order.limit_price,
            source=source,
            submitted_at=now,
            idempotency_key=idempotency_key or None,
            request_hash=request_hash,
        )
        OrderEvent.objects.create(
            order=created,
            kind=OrderEventKind.PLACED,
            at=now,
            quantity_wh=order.quantity_wh,
            limit_price=order.limit_price,
            detail=source,
        )
        if publish:
            _depth_publish_on_commit(interval)
    return created, True


def _cancel(order: Order, *, now: dt.datetime, detail: str = "") -> Order:
    """Cancel an order whose row the caller holds locked."""
    _order_move(order, OrderStatus.CANCELLED)
    order.cancelled_at = now
    order.save(update_fields=["status", "cancelled_at"])
    OrderEvent.objects.create(order=order, kind=OrderEventKind.CANCELLED, at=now, detail=detail)
    return order


def order_cancel(*, member: Member, order_id: int, now: dt.datetime) -> Order:
    """Cancel one of the member's open orders before gate closure; someone else's is 404."""
    with transaction.atomic():
        member = locks.member_lock(member_id=member.pk)
        # An order never changes interval: which one it is can be read before the locks.
        interval_id = Order.objects.filter(pk=order_id, member=member).values_list("interval_id", flat=True).first()
        if interval_id is None:
            raise NotFound("No such order.", code="not_found")
        interval = locks.interval_share(interval_id=interval_id)
        order = locks.order_lock(order_id=order_id, member_id=member.pk)
        assert order is not None  # orders are never deleted
        order.interval = interval
        if order.status == OrderStatus.CANCELLED:
            raise Conflict("The order is already cancelled.", code="already_cancelled")
        if interval.state != IntervalState.OPEN or timing.gate_is_closed(interval.start, now):
            raise Conflict("The gate of this interval has closed.", code="gate_closed")
        _cancel(order, now=now, detail="by the member")
        _depth_publish_on_commit(interval)
    return order


def order_withdraw(*, order: Order, now: dt.datetime, detail: str) -> Order:
    """Cancel an open order for the member, inside a transaction that holds the member's lock
    (automated trading withdrawing what the forecast no longer calls for). The caller checks
    the gate; the depth is not published. An order no longer open is 409."""
    with transaction.atomic():
        interval = locks.interval_share(interval_id=order.interval_id)
        locked = locks.order_lock(order_id=order.pk)
        assert locked is not None  # orders are never deleted
        locked.interval = interval
        return _cancel(locked, now=now, detail=detail)


def order_amend(
    *, order: Order, quantity_wh: int, limit_price: Decimal, now: dt.datetime, publish: bool = True
) -> Order:
    """Change an open order's quantity or price before gate closure (automated trading)."""
    with transaction.atomic():
        interval = locks.interval_share(interval_id=order.interval_id)
        locked = locks.order_lock(order_id=order.pk)
        assert locked is not None  # orders are never deleted
        locked.interval = interval
        if locked.status != OrderStatus.OPEN:
            raise Conflict(f"Order {locked.pk} is {locked.status}.", code=f"order_{locked.status}")
        if interval.state != IntervalState.OPEN or timing.gate_is_closed(interval.start, now):
            raise Conflict("The gate of this interval has closed.", code="gate_closed")
        locked.quantity_wh = quantity_wh
        locked.limit_price = limit_price
        # A change of terms loses time priority, as on any exchange.
        locked.submitted_at = now
        locked.save(update_fields=["quantity_wh", "limit_price", "submitted_at"])
        OrderEvent.objects.create(
            order=locked, kind=OrderEventKind.AMENDED, at=now, quantity_wh=quantity_wh, limit_price=limit_price
        )
        if publish:
            _depth_publish_on_commit(interval)
    return locked


def _depth_publish_on_commit(interval: Interval) -> None:
    from apps.realtime.broadcast import market_depth_publish

    def publish() -> None:
        bids, offers = order_book_depth(interval=interval)
        market_depth_publish(interval_start=interval.start, bids=bids, offers=offers)

    transaction.on_commit(publish, robust=True)
