"""Clearing, persisted: the interval's book read under its lock, matched by the engine
(``apps.market.matching``), trades, fills and the result written in one transaction, and the
outcome published after commit.

The clearing locks the interval alone, FOR UPDATE (``apps.market.locks``): submissions and
cancellations hold it FOR SHARE, so a clearing waits for the orders being written and an
order arriving after it sees the interval cleared.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.intervals import is_aligned
from apps.market import locks, timing
from apps.market import matching as engine
from apps.market.choices import IntervalState, Mechanism, OrderStatus
from apps.market.models import ClearingResult, Interval
from apps.market.services.intervals import interval_get_or_create, interval_move
from apps.market.store import TradeRow, market_store


def _half_even_div(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def _book_load(interval: Interval) -> tuple[engine.Book, np.ndarray]:
    """The interval's open orders as engine columns, and their members aligned by row."""
    rows = market_store().book_rows(interval_id=interval.pk)
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
    """Insert the trades (text rows built from integers: COPY on PostgreSQL, bulk_create elsewhere)."""
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
    rows: list[TradeRow] = [
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
    market_store().trades_insert(rows=rows)
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
    written = market_store().fills_write(interval_id=interval.pk, ids=ids, fills=fills, statuses=statuses)
    if written != len(ids):
        raise Conflict("Orders changed during clearing.", code="clearing_conflict")


def interval_clear(
    *, start: dt.datetime, now: dt.datetime, mechanism: str | None = None, publish: bool = True
) -> ClearingResult:
    """Clear the interval starting at ``start`` once: the second call returns the first result.

    One transaction: the book is read under the interval's row lock, trades, fills and the
    result are written, the interval becomes ``cleared``; prices and fills are published after
    commit. Two workers at once: the second waits for the lock, then finds the result.
    """
    if not is_aligned(start):
        raise ValidationFailed("Not an interval start.", fields={"interval_start": ["Not aligned."]})
    if not timing.gate_is_closed(start, now):
        raise Conflict("The gate of this interval is still open.", code="gate_open")
    mechanism = mechanism or settings.MARKET_MECHANISM
    with transaction.atomic():
        interval = locks.interval_lock(interval_id=interval_get_or_create(start=start).pk)
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
        interval_move(interval=interval, to_state=IntervalState.CLEARED)
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
