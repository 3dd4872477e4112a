"""The ledger store in portable SQL and the ORM: SQLite (the embedded default), or any database.

``bulk_create`` for the writes, IN lists in chunks for the reads; instants and amounts come
back as the database stores them and are made canonical here. It also runs on PostgreSQL
(the storage contract tests run it there too), only slower.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db import transaction as db_transaction

from apps.ledger import hashing
from apps.ledger.models import BlockEntry, Posting, Transaction
from apps.ledger.store.base import (
    PORTABLE_CHUNK,
    LedgerStore,
    NewTransaction,
    PostingRecord,
    PostingRow,
    TxRecord,
)


def _instant(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite stores UTC without an offset
        value = value.replace(tzinfo=dt.UTC)
    return hashing.instant_canonical(value)


def _amount(value: Any) -> str:
    return hashing.amount_canonical(Decimal(str(value)))  # SQLite hands back int or float


class PortableLedgerStore(LedgerStore):
    """The embedded default's store: nothing beyond portable SQL."""

    def transactions_insert(self, rows: Sequence[NewTransaction]) -> list[Transaction]:
        return Transaction.objects.bulk_create(
            [
                Transaction(
                    idempotency_key=row.key,
                    kind=row.kind,
                    description=row.description,
                    occurred_at=row.occurred_at,
                    created_at=row.created_at,
                    reverses_id=row.reverses_id,
                    content_hash=row.content_hash,
                )
                for row in rows
            ]
        )

    def postings_insert(self, rows: Iterable[PostingRow]) -> None:
        Posting.objects.bulk_create(
            [
                Posting(transaction_id=t, line=line, account_id=a, amount=amount, memo=memo)
                for t, line, a, amount, memo in rows
            ]
        )

    def pending_for_seal(self, *, from_xid: int | None, limit: int) -> tuple[list[tuple[int, str]], int | None]:
        """No writer ids here: every seal looks at everything not sealed yet."""
        rows = list(
            Transaction.objects.filter(block_entry__isnull=True)
            .order_by("id")
            .values_list("id", "content_hash")[:limit]
        )
        return rows, None

    def block_entries_insert(self, *, block_id: int, entries: Sequence[tuple[int, str]]) -> None:
        BlockEntry.objects.bulk_create(
            [
                BlockEntry(transaction_id=tx_id, block_id=block_id, position=i, content_hash=tx_hash)
                for i, (tx_id, tx_hash) in enumerate(entries)
            ]
        )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A transaction: on SQLite, whose single writer waits, that is a consistent read."""
        with db_transaction.atomic():
            yield

    def _select_in(self, select: str, column: str, values: Sequence[Any]) -> list[tuple]:
        rows: list[tuple] = []
        with connection.cursor() as cursor:
            for start in range(0, len(values), PORTABLE_CHUNK):
                part = values[start : start + PORTABLE_CHUNK]
                cursor.execute(f"{select} WHERE {column} IN ({', '.join(['%s'] * len(part))})", list(part))
                rows.extend(cursor.fetchall())
        return rows

    def _instant_sql(self, column: str) -> str:
        return column

    def _amount_sql(self, column: str) -> str:
        return column

    def _decode_amount(self, value: Any) -> str:
        return _amount(value)

    def _tx_records(self, rows: Sequence[Sequence[Any]]) -> list[TxRecord]:
        return [TxRecord._make((*row[:4], _instant(row[4]), _instant(row[5]), *row[6:])) for row in rows]

    def _postings_by_tx(self, sql: str, params: list[Any]) -> dict[int, list[PostingRecord]]:
        by_tx: dict[int, list[PostingRecord]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for tx_id, line, account_id, amount, memo in cursor.fetchall():
                by_tx.setdefault(tx_id, []).append((line, account_id, _amount(amount), memo))
        return by_tx
