"""The market's row locks, taken only here (in the spirit of Saleor's ``lock_objects.py``) and
built on ``apps.common.locks``. No market service calls ``select_for_update()`` itself.

The order, in every transaction that takes more than one of them:

1. **the member** (``member_lock``): FOR UPDATE of the members' table only. It serialises
   one member's submissions, cancellations and automated reconciliation, so a member's open
   orders only change under it (before gate closure).
2. **the interval**: writers of its orders hold it FOR SHARE (``interval_share``), so they go
   on together; the clearing takes it FOR UPDATE (``interval_lock``) and so waits for the
   orders being written, and an order arriving after the clearing sees it cleared.
3. **the interval's orders** (``orders_lock``, ``order_lock``): FOR UPDATE of the orders'
   table only, in primary-key order. Only of their own table: ``Order.Meta.ordering`` joins
   the interval, and a plain ``select_for_update()`` would lock that interval row FOR UPDATE
   too while the transaction holds it FOR SHARE; two members writing into one interval would
   then each wait for the other's share lock (a deadlock).

A transaction that works on several intervals (automated trading) takes 2 then 3 for one
interval before it goes on to the next; orders of different intervals are disjoint, so that
never holds a row another transaction's step waits for crosswise. The clearing takes only 2
(FOR UPDATE) and then writes the orders it read under it.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.common.locks import for_update, one_for_update, share_row
from apps.market.models import Interval, Order
from apps.members.models import Member


def member_lock(*, member_id: int) -> Member:
    """The member, locked FOR UPDATE (step 1); raises ``Member.DoesNotExist``."""
    return for_update(Member.objects.filter(pk=member_id)).get()


def interval_share(*, interval_id: int) -> Interval:
    """Hold the interval FOR SHARE (step 2) and return it as it is now: a clearing that
    committed before the lock shows here as a state other than open."""
    share_row(Interval, interval_id)
    return Interval.objects.get(pk=interval_id)


def interval_lock(*, interval_id: int) -> Interval:
    """The interval locked FOR UPDATE (the clearing's step 2): waits for every share holder."""
    return for_update(Interval.objects.filter(pk=interval_id)).get()


def orders_lock(orders: QuerySet[Order]) -> QuerySet[Order]:
    """The orders of ``orders`` locked FOR UPDATE of the orders' table only, by pk (step 3)."""
    return for_update(orders)


def order_lock(*, order_id: int, member_id: int | None = None) -> Order | None:
    """One order locked FOR UPDATE of the orders' table only (step 3); ``member_id`` scopes
    it to its owner. None when there is no such order."""
    lookup: dict[str, object] = {"pk": order_id}
    if member_id is not None:
        lookup["member_id"] = member_id
    return one_for_update(Order.objects.all(), **lookup)
