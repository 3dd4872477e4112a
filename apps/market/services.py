"""Writes of the market: intervals, tariffs, orders and clearing.

Every adapter (API, pages, admin, tasks, commands) calls these. Locks are taken in one
order: member, then interval, then orders. Clearing locks the interval alone (FOR UPDATE);
submissions and cancellations hold it FOR SHARE, so a clearing waits for the orders being
written and an order arriving after the clearing sees the interval cleared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum

from apps.common.exceptions import Conflict, Forbidden, NotFound, Unprocessable, ValidationFailed
from apps.market import clearing as engine
from apps.market import timing
from apps.market.choices import (
    INTERVAL_TRANSITIONS,
    ORDER_TRANSITIONS,
    IntervalState,
    Mechanism,
    OrderEventKind,
    OrderSource,
    OrderStatus,
    Side,
)
from apps.market.models import ClearingResult, Interval, Order, OrderEvent, Trade, TradingPreference
from apps.market.tariffs import Tariff, tariff_for
from apps.members.models import Member
from apps.meters.choices import MeterRole
from apps.meters.models import Meter

PRICE_PLACES = 5
MAX_QUANTITY_WH = 10**12


# --- Intervals -----------------------------------------------------------------------------


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


def _interval_share_lock(interval: Interval) -> Interval:
    """Hold the interval FOR SHARE (PostgreSQL) so that a clearing waits for this write."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM market_interval WHERE id = %s FOR SHARE", [interval.pk])
    interval.refresh_from_db(fields=["state"])
    return interval


def _interval_move(interval: Interval, to_state: str) -> None:
    if to_state not in INTERVAL_TRANSITIONS[interval.state]:
        raise Conflict(f"Interval {interval} cannot go from {interval.state} to {to_state}.", code="invalid_state")
    interval.state = to_state
    Interval.objects.filter(pk=interval.pk).update(state=to_state)


# --- Orders ----------------------------------------------------------------------------------


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
        if not timing.is_aligned(start):
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
        elif price != price.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
            fields["limit_price"] = [f"At most {PRICE_PLACES} decimal places."]
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
        member = Member.objects.select_for_update().get(pk=member.pk)
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
        interval = _interval_share_lock(interval_get_or_create(start=order.interval_start))
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
        mine = Order.objects.select_for_update().filter(member=member, interval=interval, status=OrderStatus.OPEN)
        if source == OrderSource.MANUAL:
            # A member's own order takes the interval out of automated trading.
            for auto in mine.filter(source=OrderSource.AUTO):
                _cancel(auto, now=now, detail="replaced by the member's own order")
        opposite = Side.SELL if order.side == Side.BUY else Side.BUY
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
    _order_move(order, OrderStatus.CANCELLED)
    order.cancelled_at = now
    order.save(update_fields=["status", "cancelled_at"])
    OrderEvent.objects.create(order=order, kind=OrderEventKind.CANCELLED, at=now, detail=detail)
    return order


def order_cancel(*, member: Member, order_id: int, now: dt.datetime) -> Order:
    """Cancel one of the member's open orders before gate closure; someone else's is 404."""
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        order = Order.objects.select_for_update().filter(pk=order_id, member=member).select_related("interval").first()
        if order is None:
            raise NotFound("No such order.", code="not_found")
        interval = _interval_share_lock(order.interval)
        if order.status == OrderStatus.CANCELLED:
            raise Conflict("The order is already cancelled.", code="already_cancelled")
        if interval.state != IntervalState.OPEN or timing.gate_is_closed(interval.start, now):
            raise Conflict("The gate of this interval has closed.", code="gate_closed")
        _cancel(order, now=now, detail="by the member")
        _depth_publish_on_commit(interval)
    return order


def order_amend(
    *, order: Order, quantity_wh: int, limit_price: Decimal, now: dt.datetime, publish: bool = True
) -> Order:
    """Change an open order's quantity or price before gate closure (automated trading)."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().select_related("interval").get(pk=order.pk)
        interval = _interval_share_lock(locked.interval)
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
    from apps.market.selectors import order_book_depth
    from apps.realtime.broadcast import market_depth_publish

    def publish() -> None:
        bids, offers = order_book_depth(interval=interval)
        market_depth_publish(interval_start=interval.start, bids=bids, offers=offers)

    transaction.on_commit(publish, robust=True)


# --- Clearing --------------------------------------------------------------------------------


def _half_even_div(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def _book_load(interval: Interval) -> tuple[engine.Book, np.ndarray]:
    """The interval's open orders as engine columns, and their members aligned by row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT id, side = 'buy', quantity_wh, (limit_price * 100000)::bigint,
                       (extract(epoch FROM submitted_at) * 1000000)::bigint, member_id
                FROM market_order WHERE interval_id = %s AND status = 'open' ORDER BY id
                """,
                [interval.pk],
            )
            rows = cursor.fetchall()
    else:
        rows = [
            (pk, side == Side.BUY, qty, engine.price_to_scaled(price), engine.priority_time(at), member_id)
            for pk, side, qty, price, at, member_id in Order.objects.filter(interval=interval, status=OrderStatus.OPEN)
            .order_by("pk")
            .values_list("pk", "side", "quantity_wh", "limit_price", "submitted_at", "member_id")
        ]
    if rows:
        ids, buys, quantities, prices, times, members = (list(column) for column in zip(*rows, strict=True))
    else:
        ids, buys, quantities, prices, times, members = [], [], [], [], [], []
    book = engine.Book.from_arrays(
        order_id=np.array(ids, dtype=np.int64),
        is_buy=np.array(buys, dtype=np.bool_),
        quantity_wh=np.array(quantities, dtype=np.int64),
        price_scaled=np.array(prices, dtype=np.int64),
        submitted=np.array(times, dtype=np.int64),
    )
    return book, np.array(members, dtype=np.int64)


def _scaled_text(value: int, places: int) -> str:
    """An integer in units of 10^-places as a decimal string, without building a Decimal."""
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"


def _amount_units(quantity_wh: int, price_scaled: int) -> int:
    """quantity_wh x price / 1000 in units of 10^-4, rounded half-even once: price_scaled is
    price x 10^5, so the amount is q x p_scaled / 10^8 currency = q x p_scaled / 10^4 units."""
    return _half_even_div(quantity_wh * price_scaled, 10**4)


def _trades_write(interval: Interval, cleared: engine.BookClearing, book: engine.Book, members: np.ndarray) -> int:
    """Insert the trades: COPY on PostgreSQL (text rows built from integers), bulk_create elsewhere."""
    count = int(cleared.quantity_wh.size)
    if not count:
        return 0
    buyer_rows = np.searchsorted(book.order_id, cleared.buy_order_id)
    seller_rows = np.searchsorted(book.order_id, cleared.sell_order_id)
    columns = zip(
        cleared.buy_order_id.tolist(),
        cleared.sell_order_id.tolist(),
        members[buyer_rows].tolist(),
        members[seller_rows].tolist(),
        cleared.quantity_wh.tolist(),
        cleared.buyer_price_scaled.tolist(),
        cleared.seller_price_scaled.tolist(),
        strict=True,
    )
    rows = [
        (
            interval.pk,
            buy_id,
            sell_id,
            buyer,
            seller,
            quantity,
            _scaled_text(buyer_price, engine.PRICE_DECIMALS),
            _scaled_text(seller_price, engine.PRICE_DECIMALS),
            _scaled_text(_amount_units(quantity, buyer_price), 4),
            _scaled_text(_amount_units(quantity, seller_price), 4),
        )
        for buy_id, sell_id, buyer, seller, quantity, buyer_price, seller_price in columns
    ]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_sql = (
                "COPY market_trade (interval_id, buy_order_id, sell_order_id, buyer_id, seller_id, quantity_wh, "
                "buyer_price, seller_price, buyer_amount, seller_amount) FROM STDIN"
            )
            with cursor.cursor.copy(copy_sql) as copy:
                copy.write("".join("\t".join(map(str, row)) + "\n" for row in rows))
    else:
        Trade.objects.bulk_create(
            [
                Trade(
                    interval_id=r[0],
                    buy_order_id=r[1],
                    sell_order_id=r[2],
                    buyer_id=r[3],
                    seller_id=r[4],
                    quantity_wh=r[5],
                    buyer_price=Decimal(r[6]),
                    seller_price=Decimal(r[7]),
                    buyer_amount=Decimal(r[8]),
                    seller_amount=Decimal(r[9]),
                )
                for r in rows
            ],
            batch_size=1000,
        )
    return count


def _order_statuses(book: engine.Book, cleared: engine.BookClearing) -> tuple[list[int], list[int], list[str]]:
    filled = dict(zip(cleared.order_id.tolist(), cleared.filled_wh.tolist(), strict=True))
    ids: list[int] = []
    fills: list[int] = []
    statuses: list[str] = []
    for order_id, quantity in zip(book.order_id.tolist(), book.quantity_wh.tolist(), strict=True):
        got = filled.get(order_id, 0)
        ids.append(order_id)
        fills.append(got)
        status = (
            OrderStatus.FILLED if got == quantity else OrderStatus.PARTIALLY_FILLED if got else OrderStatus.UNFILLED
        )
        statuses.append(str(status))
    return ids, fills, statuses


def _orders_write(interval: Interval, ids: list[int], fills: list[int], statuses: list[str]) -> None:
    if not ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The interval condition lets PostgreSQL read only this interval's orders (index)
            # instead of the whole, ever-growing order table.
            cursor.execute(
                """
                UPDATE market_order AS o SET filled_wh = v.filled, status = v.status
                FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, filled, status)
                WHERE o.interval_id = %s AND o.status = 'open' AND o.id = v.id
                """,
                [ids, fills, [str(s) for s in statuses], interval.pk],
            )
            if cursor.rowcount != len(ids):
                raise Conflict("Orders changed during clearing.", code="clearing_conflict")
        return
    orders = list(Order.objects.filter(pk__in=ids, status=OrderStatus.OPEN).order_by("pk"))
    by_id = {order.pk: order for order in orders}
    for order_id, got, status in zip(ids, fills, statuses, strict=True):
        by_id[order_id].filled_wh = got
        by_id[order_id].status = status
    Order.objects.bulk_update(orders, ["filled_wh", "status"], batch_size=1000)


def interval_clear(
    *, start: dt.datetime, now: dt.datetime, mechanism: str | None = None, publish: bool = True
) -> ClearingResult:
    """Clear the interval starting at ``start`` once: the second call returns the first result.

    One transaction: the book is read under the interval's row lock, trades, fills and the
    result are written, the interval becomes ``cleared``; prices and fills are published after
    commit. Two workers at once: the second waits for the lock, then finds the result.
    """
    if not timing.is_aligned(start):
        raise ValidationFailed("Not an interval start.", fields={"interval_start": ["Not aligned."]})
    if not timing.gate_is_closed(start, now):
        raise Conflict("The gate of this interval is still open.", code="gate_open")
    mechanism = mechanism or settings.MARKET_MECHANISM
    with transaction.atomic():
        interval = interval_get_or_create(start=start)
        interval = Interval.objects.select_for_update().get(pk=interval.pk)
        existing = ClearingResult.objects.filter(interval=interval).first()
        if existing is not None:
            return existing
        book, members = _book_load(interval)
        cleared = engine.clear_book(book, mechanism=engine.Mechanism(mechanism))
        trades_count = _trades_write(interval, cleared, book, members)
        ids, fills, statuses = _order_statuses(book, cleared)
        _orders_write(interval, ids, fills, statuses)
        result = ClearingResult.objects.create(
            interval=interval,
            mechanism=mechanism,
            price=cleared.clearing_price,
            volume_wh=cleared.volume_wh,
            bids_wh=cleared.bids_wh,
            offers_wh=cleared.offers_wh,
            trades_count=trades_count,
            orders_count=len(book),
            cleared_at=now,
        )
        _interval_move(interval, IntervalState.CLEARED)
        if publish:
            _clearing_publish_on_commit(result, cleared, book, members)
    return result


def _clearing_publish_on_commit(
    result: ClearingResult, cleared: engine.BookClearing, book: engine.Book, members: np.ndarray
) -> None:
    """After commit: the price to everyone, and each filled order's fill to its member, if
    that member has a live socket (the rest would be dropped by the channel layer anyway)."""
    start, price, volume_wh, trades = result.interval.start, result.price, result.volume_wh, result.trades_count

    def publish() -> None:
        from apps.realtime.broadcast import broadcast_many
        from apps.realtime.payloads import MarketCleared, TradeFilled
        from apps.realtime.selectors import members_listening

        items: list[Any] = [
            (MarketCleared(interval_start=start, price=price, volume_wh=volume_wh, trades=trades), None)
        ]
        filled = cleared.filled_wh > 0
        order_ids = cleared.order_id[filled]
        quantities = cleared.filled_wh[filled]
        owners = members[np.searchsorted(book.order_id, order_ids)]
        listening = members_listening(member_ids=sorted(set(owners.tolist())))
        if listening:
            # The price each order traded at: a buyer's or a seller's side of its trades.
            order_price: dict[int, int] = dict(
                zip(cleared.buy_order_id.tolist(), cleared.buyer_price_scaled.tolist(), strict=True)
            )
            order_price.update(zip(cleared.sell_order_id.tolist(), cleared.seller_price_scaled.tolist(), strict=True))
            for order_id, got, member_id in zip(order_ids.tolist(), quantities.tolist(), owners.tolist(), strict=True):
                if member_id in listening:
                    fill = TradeFilled(
                        order_id=order_id, quantity_wh=got, price=engine.price_from_scaled(order_price[order_id])
                    )
                    items.append((fill, member_id))
        # broadcast_many defers to on_commit itself; here we already are after commit.
        broadcast_many(items)

    transaction.on_commit(publish, robust=True)


def intervals_clear_due(*, now: dt.datetime) -> list[ClearingResult]:
    """Clear every interval with orders whose gate has closed and that is not cleared yet."""
    due = list(
        Interval.objects.filter(
            state__in=[IntervalState.OPEN, IntervalState.CLOSED], gate_closure__lte=now
        ).values_list("start", flat=True)
    )
    return [interval_clear(start=start, now=now) for start in sorted(due)]


def mechanism_label(mechanism: str) -> str:
    return Mechanism(mechanism).label


def dynamic_prices_set(*, prices: list[dict[str, Any]], now: dt.datetime) -> int:
    """Publish dynamic prices (e.g. day-ahead) for intervals; open intervals take them at once.

    All or nothing: one bad row refuses the whole batch with its index named.
    """
    from apps.market.models import DynamicPrice

    fields: dict[str, list[str]] = {}
    for index, row in enumerate(prices):
        start = row["interval_start"].astimezone(dt.UTC)
        if not timing.is_aligned(start):
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


def interval_mark_settled(*, start: dt.datetime) -> None:
    """Settlement booked the interval: a cleared interval moves to ``settled`` (others stay)."""
    interval = Interval.objects.filter(start=start, state=IntervalState.CLEARED).first()
    if interval is not None:
        _interval_move(interval, IntervalState.SETTLED)


def market_history_replay(*, start: dt.datetime, end: dt.datetime) -> int:
    """Run the market over past intervals in [start, end) as it would have run live: automated
    orders placed just before each gate closure, then the clearing. For demo communities with
    backfilled meter history, so that newcomers see past prices at once. Intervals already
    cleared are skipped; returns how many were cleared."""
    from apps.market.autotrade import auto_orders_run

    step = timing.interval_length()
    cleared = 0
    at = timing.floor_to_interval(start)
    done = set(
        ClearingResult.objects.filter(interval__start__gte=at, interval__start__lt=end).values_list(
            "interval__start", flat=True
        )
    )
    while at < end:
        if at not in done:
            gate = timing.interval_times(at).gate_closure
            # The past is not news: nothing is published to live sockets.
            auto_orders_run(now=gate - dt.timedelta(seconds=1), intervals=1, publish=False)
            interval_clear(start=at, now=at, publish=False)
            cleared += 1
        at += step
    return cleared


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
        if value is not None and (not isinstance(value, Decimal) or value != value.quantize(Decimal("0.00001"))):
            fields[name] = [f"A decimal with at most {PRICE_PLACES} places."]
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
