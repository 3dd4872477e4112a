"""The clearing's bulk reads and writes: a PostgreSQL fast path and a portable one.

On PostgreSQL the book is read as scaled integers by the database itself, the trades go in
with COPY, and the fills with one UPDATE joined to ``unnest`` of the new values. Anywhere
else (SQLite, the embedded default) the ORM does the same with ``values_list``,
``bulk_create`` and ``bulk_update``. Both give the same rows; which one serves is decided
once, on first use, by ``market_store()``; the services never branch on the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from functools import cache

from django.db import connection

from apps.market import matching
from apps.market.choices import OrderStatus, Side
from apps.market.models import Order, Trade

# One open order: id, is a bid, quantity_wh, limit price x 10^5, time priority (µs), member id.
BookRow = tuple[int, bool, int, int, int, int]
# One trade: interval id, buy order id, sell order id, buyer id, seller id, quantity_wh, then
# buyer price, seller price, buyer amount and seller amount as exact decimal strings.
TradeRow = tuple[int, int, int, int, int, int, str, str, str, str]


class MarketStore(ABC):
    @abstractmethod
    def book_rows(self, *, interval_id: int) -> list[BookRow]:
        """The interval's open orders, by id."""

    @abstractmethod
    def trades_insert(self, *, rows: list[TradeRow]) -> None:
        """Insert the trades."""

    @abstractmethod
    def fills_write(self, *, interval_id: int, ids: list[int], fills: list[int], statuses: list[str]) -> int:
        """Set each still-open order's fill and status; returns how many orders were written."""


class PostgresStore(MarketStore):
    def book_rows(self, *, interval_id: int) -> list[BookRow]:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT id, side = 'buy', quantity_wh, (limit_price * 100000)::bigint,
                       (extract(epoch FROM submitted_at) * 1000000)::bigint, member_id
                FROM market_order WHERE interval_id = %s AND status = 'open' ORDER BY id
                """,
                [interval_id],
            )
            return cursor.fetchall()

    def trades_insert(self, *, rows: list[TradeRow]) -> None:
        with connection.cursor() as cursor:
            copy_sql = (
                "COPY market_trade (interval_id, buy_order_id, sell_order_id, buyer_id, seller_id, quantity_wh, "
                "buyer_price, seller_price, buyer_amount, seller_amount) FROM STDIN"
            )
            with cursor.cursor.copy(copy_sql) as copy:
                copy.write("".join("\t".join(map(str, row)) + "\n" for row in rows))

    def fills_write(self, *, interval_id: int, ids: list[int], fills: list[int], statuses: list[str]) -> int:
        with connection.cursor() as cursor:
            # The interval condition lets PostgreSQL read only this interval's orders (index)
            # instead of the whole, ever-growing order table.
            cursor.execute(
                """
                UPDATE market_order AS o SET filled_wh = v.filled, status = v.status
                FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, filled, status)
                WHERE o.interval_id = %s AND o.status = 'open' AND o.id = v.id
                """,
                [ids, fills, statuses, interval_id],
            )
            return cursor.rowcount


class PortableStore(MarketStore):
    def book_rows(self, *, interval_id: int) -> list[BookRow]:
        return [
            (pk, side == Side.BUY, qty, matching.price_to_scaled(price), matching.priority_time(at), member_id)
            for pk, side, qty, price, at, member_id in Order.objects.filter(
                interval_id=interval_id, status=OrderStatus.OPEN
            )
            .order_by("pk")
            .values_list("pk", "side", "quantity_wh", "limit_price", "submitted_at", "member_id")
        ]

    def trades_insert(self, *, rows: list[TradeRow]) -> None:
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

    def fills_write(self, *, interval_id: int, ids: list[int], fills: list[int], statuses: list[str]) -> int:
        orders = list(Order.objects.filter(pk__in=ids, interval_id=interval_id, status=OrderStatus.OPEN).order_by("pk"))
        by_id = {order.pk: order for order in orders}
        for order_id, got, status in zip(ids, fills, statuses, strict=True):
            if order_id in by_id:
                by_id[order_id].filled_wh = got
                by_id[order_id].status = status
        Order.objects.bulk_update(orders, ["filled_wh", "status"], batch_size=1000)
        return len(orders)


@cache
def market_store() -> MarketStore:
    """The store for the default database, chosen on first use."""
    return PostgresStore() if connection.vendor == "postgresql" else PortableStore()
