"""The market's row locks (apps/market/locks.py) on PostgreSQL: the SQL of each lock, the
order the services take them in, and members writing into one interval at once."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.common.locks import compiled_sql
from apps.market import locks
from apps.market.choices import OrderEventKind, OrderSource, OrderStatus, Side
from apps.market.models import Interval, Order, OrderEvent
from apps.market.services import (
    OrderInput,
    interval_clear,
    interval_get_or_create,
    order_amend,
    order_cancel,
    order_submit,
    order_withdraw,
)
from apps.members.models import Member
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT, NOW

pytestmark = pytest.mark.postgres

MEMBER = Member._meta.db_table
INTERVAL = Interval._meta.db_table
ORDER = Order._meta.db_table


def _place(member, side: str = Side.BUY, *, source: str = OrderSource.MANUAL, quantity_wh: int = 500) -> Order:
    order, _ = order_submit(
        member=member,
        order=OrderInput(NEXT, side, quantity_wh, Decimal("0.20000")),
        now=NOW,
        source=source,
        publish=False,
    )
    return order


def _locking(sql: str) -> bool:
    return " FOR UPDATE" in sql or " FOR SHARE" in sql


def _lock_statements(queries: list[dict]) -> list[str]:
    return [q["sql"] for q in queries if _locking(q["sql"])]


def _lock_kind(sql: str) -> str:
    """Which lock a statement takes, as 'member', 'interval share', 'interval update' or 'orders'."""
    if re.search(rf'FOR UPDATE OF "{MEMBER}"$', sql):
        return "member"
    if sql.endswith("FOR SHARE") and f'FROM "{INTERVAL}"' in sql:
        return "interval share"
    if re.search(rf'FOR UPDATE OF "{INTERVAL}"$', sql):
        return "interval update"
    if re.search(rf'FOR UPDATE OF "{ORDER}"$', sql):
        return "orders"
    raise AssertionError(f"a lock not taken through apps.market.locks: {sql}")


# --- The SQL of each lock -------------------------------------------------------------


@pytest.mark.django_db
def test_each_lock_locks_its_own_table_only():
    member = member_make()
    order = _place(member)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locks.member_lock(member_id=member.pk)
        locks.interval_share(interval_id=order.interval_id)
        locks.order_lock(order_id=order.pk, member_id=member.pk)
        list(locks.orders_lock(Order.objects.filter(member=member, interval_id=order.interval_id)))
        locks.interval_lock(interval_id=order.interval_id)
    taken = _lock_statements(queries.captured_queries)
    assert [_lock_kind(sql) for sql in taken] == ["member", "interval share", "orders", "orders", "interval update"]
    assert taken[1].startswith(f'SELECT 1 FROM "{INTERVAL}" WHERE id = ')  # noqa: S608


@pytest.mark.django_db
def test_the_orders_lock_never_spreads_to_the_interval():
    # Order.Meta.ordering joins the interval; select_related joins it too. Neither may put the
    # interval row under FOR UPDATE: the same transaction holds it FOR SHARE.
    for orders in (
        Order.objects.filter(interval_id=1),
        Order.objects.filter(interval_id=1).order_by("interval__start", "submitted_at"),
        Order.objects.filter(interval_id=1).select_related("interval"),
    ):
        sql = compiled_sql(locks.orders_lock(orders))
        assert sql.endswith(f'FOR UPDATE OF "{ORDER}"'), sql


@pytest.mark.django_db
def test_the_services_take_the_locks_in_the_documented_order():
    buyer, seller = member_make(), member_make()
    meter_make(seller)
    auto = _place(buyer, source=OrderSource.AUTO)
    cases = {
        "submit": lambda: _place(buyer),  # replaces the automated order: locks it
        "cancel": lambda: order_cancel(member=buyer, order_id=Order.objects.get(source="manual").pk, now=NOW),
    }
    for name, call in cases.items():
        with CaptureQueriesContext(connection) as queries:
            call()
        kinds = [_lock_kind(sql) for sql in _lock_statements(queries.captured_queries)]
        assert kinds[:3] == ["member", "interval share", "orders"], (name, kinds)
        assert set(kinds[3:]) <= {"orders"}, (name, kinds)

    sell = _place(seller, Side.SELL, source=OrderSource.AUTO)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locks.member_lock(member_id=seller.pk)
        order_amend(order=sell, quantity_wh=600, limit_price=Decimal("0.21000"), now=NOW, publish=False)
        order_withdraw(order=sell, now=NOW, detail="test")
    kinds = [_lock_kind(sql) for sql in _lock_statements(queries.captured_queries)]
    assert kinds == ["member", "interval share", "orders", "interval share", "orders"]
    assert Order.objects.get(pk=auto.pk).status == OrderStatus.CANCELLED

    with CaptureQueriesContext(connection) as queries:
        interval_clear(start=NEXT, now=NEXT, publish=False)
    assert [_lock_kind(sql) for sql in _lock_statements(queries.captured_queries)] == ["interval update"]


@pytest.mark.django_db(transaction=True)
def test_a_held_order_lock_leaves_the_interval_shareable():
    """While one transaction holds an order and its interval FOR SHARE, another can still
    share the interval (NOWAIT): the order lock did not take the interval FOR UPDATE."""
    member = member_make()
    order = _place(member)
    held, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                locks.member_lock(member_id=member.pk)
                locks.interval_share(interval_id=order.interval_id)
                locks.order_lock(order_id=order.pk)
                held.set()
                release.wait(10)
        except BaseException as exc:  # surfaced below
            failures.append(exc)
            held.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            share = f'SELECT 1 FROM "{INTERVAL}" WHERE id = %s FOR SHARE NOWAIT'  # noqa: S608
            cursor.execute(share, [order.interval_id])
            with pytest.raises(OperationalError), transaction.atomic():
                cursor.execute(f'SELECT 1 FROM "{ORDER}" WHERE id = %s FOR UPDATE NOWAIT', [order.pk])  # noqa: S608
    finally:
        release.set()
        holder.join(10)
    assert not failures


# --- Members writing into one interval at once ----------------------------------------

ROUNDS = 40  # x 4 operations x 2 members


@pytest.mark.django_db(transaction=True)
def test_two_members_submit_amend_and_cancel_into_one_interval_at_once(monkeypatch):
    """Each member, on its own connection, over and over: an automated order placed, amended,
    replaced by the member's own order, which is then cancelled. Before the locks went
    through apps.market.locks, the orders lock also took the interval FOR UPDATE while both
    transactions held it FOR SHARE: PostgreSQL detected deadlocks within a few rounds."""
    monkeypatch.setattr("apps.realtime.broadcast.market_depth_publish", lambda **kwargs: None)
    buyer, seller = member_make(), member_make()
    meter_make(seller)
    interval_get_or_create(start=NEXT)
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def trade(member: Member, side: str) -> None:
        try:
            barrier.wait(10)
            for round_ in range(ROUNDS):
                try:
                    auto = _place(member, side, source=OrderSource.AUTO, quantity_wh=400 + round_)
                    order_amend(
                        order=auto, quantity_wh=300 + round_, limit_price=Decimal("0.19000"), now=NOW, publish=False
                    )
                    manual = _place(member, side, quantity_wh=200 + round_)
                    order_cancel(member=member, order_id=manual.pk, now=NOW)
                except Exception as exc:  # every failure counts, a deadlock above all
                    errors.append(f"{side} round {round_}: {type(exc).__name__}: {exc}".strip())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=trade, args=pair) for pair in ((buyer, Side.BUY), (seller, Side.SELL))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a member's writes did not finish"
    assert not errors, f"{len(errors)} failed operations, the first: {errors[:3]}"

    for member in (buyer, seller):
        orders = Order.objects.filter(member=member)
        assert orders.count() == 2 * ROUNDS
        assert not orders.filter(status=OrderStatus.OPEN).exists()
        assert not orders.filter(cancelled_at__isnull=True).exists()
        events = OrderEvent.objects.filter(order__member=member)
        kinds = {kind: events.filter(kind=kind).count() for kind in OrderEventKind.values}
        assert kinds == {
            **dict.fromkeys(OrderEventKind.values, 0),
            OrderEventKind.PLACED: 2 * ROUNDS,
            OrderEventKind.AMENDED: ROUNDS,
            OrderEventKind.CANCELLED: 2 * ROUNDS,
        }
        for order in orders.filter(source=OrderSource.AUTO).prefetch_related("events"):
            assert [e.kind for e in order.events.all()] == ["placed", "amended", "cancelled"]
            assert order.events.all()[2].detail == "replaced by the member's own order"
        for order in orders.filter(source=OrderSource.MANUAL).prefetch_related("events"):
            events = [(e.kind, e.detail) for e in order.events.all()]
            assert events == [("placed", "manual"), ("cancelled", "by the member")]
