"""Row and advisory locks: the primitives every app's ``locks.py`` is built from.

In the spirit of Saleor's ``lock_objects.py``: a service never calls ``select_for_update()``
itself; it asks its app's ``locks`` module for the rows, and that module takes them through
these helpers, so that

- a row lock never spreads through a join: ``FOR UPDATE OF <the model's own table>``, always
  (``Meta.ordering`` or ``select_related`` would otherwise lock the joined rows too);
- rows of one table are locked in primary-key order, so two writers never hold them crosswise;
- the order across tables is the one written in ``docs/architecture.md`` (member, meter,
  interval, orders, settled interval; advisory locks last).

On SQLite (the embedded default) there are no row locks: a write transaction holds the whole
database, which is stricter; the helpers compile there unchanged.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def for_update(queryset: models.QuerySet[M]) -> models.QuerySet[M]:
    """The rows of ``queryset`` locked FOR UPDATE (its own table only), in primary-key order."""
    return queryset.select_for_update(of=("self",)).order_by("pk")


def one_for_update(queryset: models.QuerySet[M], **lookup: object) -> M | None:
    """One row locked FOR UPDATE of its own table, or None."""
    return queryset.select_for_update(of=("self",)).filter(**lookup).order_by().first()


def share_row(model: type[models.Model], pk: int) -> None:
    """Hold one row ``FOR SHARE`` (PostgreSQL) until the transaction ends: writers of other rows
    that reference it go on together; a writer of the row itself waits for them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(share_row_sql(model), [pk])


def share_row_sql(model: type[models.Model]) -> str:
    """The SQL ``share_row`` sends (for the tests that read each lock)."""
    table = connection.ops.quote_name(model._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE id = %s FOR SHARE"  # noqa: S608 - table name from the model, id bound


def advisory_xact(key: int) -> None:
    """Take a transaction-scoped advisory lock (PostgreSQL): one holder at a time, released at
    commit or rollback. SQLite's single writer already serialises."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def compiled_sql(queryset: models.QuerySet) -> str:
    """The SQL a locking queryset would send, for tests that check each lock's shape."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    return sql % tuple(repr(p) for p in params)
