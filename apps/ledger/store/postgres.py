"""The ledger store on PostgreSQL: array parameters and ``COPY``.

One statement per table whatever the batch size, so the statement-level triggers of
migration 0002 check each batch once; instants and amounts are rendered canonical by the
server (``to_char``, ``::text``), so verification hashes what it fetches as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db import transaction as db_transaction

from apps.ledger.models import Transaction
from apps.ledger.store.base import LedgerStore, NewTransaction, PostingRecord, PostingRow, TxRecord


class PostgresLedgerStore(LedgerStore):
    """The production store: PostgreSQL's fast paths."""

    def transactions_insert(self, rows: Sequence[NewTransaction]) -> list[Transaction]:
        with connection.cursor() as cursor:
            # Ids first (one query), so that the rows can go in by COPY, which returns nothing.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) FROM generate_series(1, %s)",
                [len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(
                    "COPY ledger_transaction"
                    " (id, idempotency_key, kind, description, occurred_at, created_at, reverses_id, content_hash)"
                    " FROM STDIN"
                ) as copy,
            ):
                for tx_id, row in zip(ids, rows, strict=True):
                    copy.write_row((tx_id, row.key, row.kind, row.description, row.occurred_at, row.created_at,
                                    row.reverses_id, row.content_hash))  # fmt: skip
        names = [f.attname for f in Transaction._meta.concrete_fields]
        txs = []
        for tx_id, row in zip(ids, rows, strict=True):
            values = {"id": tx_id, "idempotency_key": row.key, **row._asdict()}
            txs.append(Transaction.from_db(connection.alias, names, [values[name] for name in names]))
        return txs

    def postings_insert(self, rows: Iterable[PostingRow]) -> None:
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(
                "COPY ledger_posting (transaction_id, line, account_id, amount, memo) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def pending_for_seal(self, *, from_xid: int | None, limit: int) -> tuple[list[tuple[int, str]], int | None]:
        """Each transaction row records the id of the database transaction that wrote it
        (``writer_xid``, a column default of migration 0002). Writers older than the oldest
        one still running (the snapshot's xmin) have all finished, so once everything visible
        is sealed, the next seal need only look at writers from that xmin on: an index range
        instead of an anti-join over the whole ledger. Writers never wait for this."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            xmin = cursor.fetchone()[0]
            cursor.execute(
                "SELECT t.id, t.content_hash FROM ledger_transaction t WHERE t.writer_xid >= %s"
                " AND NOT EXISTS (SELECT 1 FROM ledger_blockentry e WHERE e.transaction_id = t.id)"
                " ORDER BY t.id LIMIT %s",
                [from_xid or 0, limit],
            )
            rows = cursor.fetchall()
        # A block cut short by the limit leaves older writers' rows behind: keep the old bound.
        return rows, (xmin if len(rows) < limit else from_xid)

    def block_entries_insert(self, *, block_id: int, entries: Sequence[tuple[int, str]]) -> None:
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(
                "COPY ledger_blockentry (transaction_id, block_id, position, content_hash) FROM STDIN"
            ) as copy,
        ):
            for i, (tx_id, tx_hash) in enumerate(entries):
                copy.write_row((tx_id, block_id, i, tx_hash))

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A REPEATABLE READ, READ ONLY transaction of its own (or the caller's transaction)."""
        if connection.in_atomic_block:
            with db_transaction.atomic():
                yield
            return
        with db_transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def _select_in(self, select: str, column: str, values: Sequence[Any]) -> list[tuple]:
        if not values:
            return []
        with connection.cursor() as cursor:
            cursor.execute(f"{select} WHERE {column} = ANY(%s)", [list(values)])
            return cursor.fetchall()

    def _instant_sql(self, column: str) -> str:
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

    def _amount_sql(self, column: str) -> str:
        return f"{column}::text"

    def _decode_amount(self, value: Any) -> str:
        return value  # numeric(20, 4) as text: already canonical

    def _tx_records(self, rows: Sequence[Sequence[Any]]) -> list[TxRecord]:
        return [TxRecord._make(row) for row in rows]  # instants already canonical text

    def _postings_by_tx(self, sql: str, params: list[Any]) -> dict[int, list[PostingRecord]]:
        by_tx: dict[int, list[PostingRecord]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for tx_id, line, account_id, amount, memo in cursor.fetchall():
                by_tx.setdefault(tx_id, []).append((line, account_id, amount, memo))  # amounts canonical text
        return by_tx
