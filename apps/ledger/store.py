"""Set-based reads and writes of the ledger tables, for booking big batches and for verifying.

Two implementations of one small interface: on PostgreSQL, array parameters and ``COPY``
(one statement per table whatever the batch size, so the statement-level triggers of
migration 0002 check each batch once); elsewhere (SQLite, the embedded default) portable
SQL and ``bulk_create``. Reads for verification hand instants and amounts back as the
canonical strings of :mod:`apps.ledger.hashing`, ready to hash, whichever the database.
SQL here is assembled from this module's constants only; values always go as parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection

from apps.ledger import hashing
from apps.ledger.models import BlockEntry, Posting, Transaction

# Portable IN lists stay below SQLite's limit on bound parameters.
PORTABLE_CHUNK = 5_000


class TxRecord(NamedTuple):
    """A transaction as verification reads it: instants as canonical strings."""

    id: int
    key: str
    kind: str
    description: str
    occurred_at: str
    created_at: str
    content_hash: str
    reverses_hash: str | None


# A posting as verification reads it: (line, account id, canonical amount such as "-1.2300",
# memo). A plain tuple: verification builds millions of them.
PostingRecord = tuple[int, int, str, str]


class NewTransaction(NamedTuple):
    key: str
    kind: str
    description: str
    occurred_at: dt.datetime
    created_at: dt.datetime
    reverses_id: int | None
    content_hash: str


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _select_in(select: str, column: str, values: Sequence[Any]) -> list[tuple]:
    """``select`` restricted to ``column`` in ``values``: one array parameter on PostgreSQL."""
    if not values:
        return []
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        if _pg():
            cursor.execute(f"{select} WHERE {column} = ANY(%s)", [list(values)])
            return cursor.fetchall()
        for start in range(0, len(values), PORTABLE_CHUNK):
            part = values[start : start + PORTABLE_CHUNK]
            cursor.execute(f"{select} WHERE {column} IN ({', '.join(['%s'] * len(part))})", list(part))
            rows.extend(cursor.fetchall())
    return rows


def account_codes(account_ids: Sequence[int]) -> dict[int, str]:
    return dict(_select_in("SELECT id, code FROM ledger_account", "id", account_ids))


def keys_taken(keys: Sequence[str]) -> bool:
    return bool(_select_in("SELECT idempotency_key FROM ledger_transaction", "idempotency_key", keys))


def transactions_by_key(keys: Sequence[str]) -> dict[str, Transaction]:
    """The booked transactions among ``keys`` (usually none, all of them on a rerun)."""
    ids = [row[0] for row in _select_in("SELECT id FROM ledger_transaction", "idempotency_key", keys)]
    found: dict[str, Transaction] = {}
    for start in range(0, len(ids), PORTABLE_CHUNK):
        for tx in Transaction.objects.filter(pk__in=ids[start : start + PORTABLE_CHUNK]):
            found[tx.idempotency_key] = tx
    return found


def transactions_insert(rows: Sequence[NewTransaction]) -> list[Transaction]:
    """Insert transactions in one statement; returns them saved, in the order given."""
    if not _pg():
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


def postings_insert(rows: Iterable[tuple[int, int, int, Decimal, str]]) -> None:
    """Insert (transaction id, line, account id, amount, memo) rows in one statement."""
    if not _pg():
        Posting.objects.bulk_create(
            [
                Posting(transaction_id=t, line=line, account_id=a, amount=amount, memo=memo)
                for t, line, a, amount, memo in rows
            ]
        )
        return
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy("COPY ledger_posting (transaction_id, line, account_id, amount, memo) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def pending_for_seal(*, from_xid: int | None, limit: int) -> tuple[list[tuple[int, str]], int | None]:
    """(id, hash) of the oldest transactions not sealed yet, and where the next seal may start.

    On PostgreSQL each transaction row records the id of the database transaction that
    wrote it (``writer_xid``, a column default of migration 0002). Writers older than the
    oldest one still running (the snapshot's xmin) have all finished, so once everything
    visible is sealed, the next seal need only look at writers from that xmin on: an index
    range instead of an anti-join over the whole ledger. Writers never wait for this.
    """
    if not _pg():
        rows = list(
            Transaction.objects.filter(block_entry__isnull=True)
            .order_by("id")
            .values_list("id", "content_hash")[:limit]
        )
        return rows, None
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


def block_entries_insert(*, block_id: int, entries: Sequence[tuple[int, str]]) -> None:
    """A block's (transaction id, hash) entries, positions 0, 1, 2 ... in the order given."""
    if not _pg():
        BlockEntry.objects.bulk_create(
            [
                BlockEntry(transaction_id=tx_id, block_id=block_id, position=i, content_hash=tx_hash)
                for i, (tx_id, tx_hash) in enumerate(entries)
            ]
        )
        return
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(
            "COPY ledger_blockentry (transaction_id, block_id, position, content_hash) FROM STDIN"
        ) as copy,
    ):
        for i, (tx_id, tx_hash) in enumerate(entries):
            copy.write_row((tx_id, block_id, i, tx_hash))


# --- Reads for verification ----------------------------------------------------------------


def _instant_sql(column: str) -> str:
    if _pg():
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return column


def _amount_sql(column: str) -> str:
    return f"{column}::text" if _pg() else column


def _instant(value: Any) -> str:
    if isinstance(value, str) and value.endswith("Z"):
        return value  # already canonical (PostgreSQL's to_char above)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite stores UTC without an offset
        value = value.replace(tzinfo=dt.UTC)
    return hashing.instant_canonical(value)


def _amount(value: Any) -> str:
    if isinstance(value, str):
        return value  # numeric(20, 4) as text: already canonical
    return hashing.amount_canonical(Decimal(str(value)))  # SQLite hands back int or float


def _tx_select() -> str:
    return (
        f"SELECT t.id, t.idempotency_key, t.kind, t.description, {_instant_sql('t.occurred_at')},"  # noqa: S608
        f" {_instant_sql('t.created_at')}, t.content_hash, r.content_hash"
        " FROM ledger_transaction t LEFT JOIN ledger_transaction r ON r.id = t.reverses_id"
    )


def _tx_record(row: Sequence[Any], pg: bool) -> TxRecord:
    if pg:
        return TxRecord._make(row)  # instants already canonical text
    tx_id, key, kind, description, occurred_at, created_at, content_hash, reverses_hash = row
    return TxRecord(tx_id, key, kind, description, _instant(occurred_at), _instant(created_at), content_hash,
                    reverses_hash)  # fmt: skip


def _postings_by_tx(sql: str, params: list[Any]) -> dict[int, list[PostingRecord]]:
    by_tx: dict[int, list[PostingRecord]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pg = _pg()
        for tx_id, line, account_id, amount, memo in cursor.fetchall():
            by_tx.setdefault(tx_id, []).append((line, account_id, amount if pg else _amount(amount), memo))
    return by_tx


def block_transactions(*, block_id: int, from_position: int, limit: int) -> list[tuple[int, str, TxRecord]]:
    """(position, hash as sealed, transaction) of a block from ``from_position`` on, in position order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.position, e.content_hash, {_tx_select()[len('SELECT ') :]}"
            " JOIN ledger_blockentry e ON e.transaction_id = t.id"
            " WHERE e.block_id = %s AND e.position >= %s ORDER BY e.position LIMIT %s",
            [block_id, from_position, limit],
        )
        pg = _pg()
        return [(row[0], row[1], _tx_record(row[2:], pg)) for row in cursor.fetchall()]


def block_postings(*, block_id: int, from_position: int, to_position: int) -> dict[int, list[PostingRecord]]:
    """The postings of a block's transactions at positions [from, to], by transaction, in line order."""
    return _postings_by_tx(
        f"SELECT p.transaction_id, p.line, p.account_id, {_amount_sql('p.amount')}, p.memo"  # noqa: S608
        " FROM ledger_blockentry e JOIN ledger_posting p ON p.transaction_id = e.transaction_id"
        " WHERE e.block_id = %s AND e.position >= %s AND e.position <= %s ORDER BY p.transaction_id, p.line",
        [block_id, from_position, to_position],
    )


_UNSEALED = "NOT EXISTS (SELECT 1 FROM ledger_blockentry e WHERE e.transaction_id = {})"


def unsealed_transactions(*, after_id: int, limit: int) -> list[TxRecord]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_tx_select()} WHERE t.id > %s AND {_UNSEALED.format('t.id')} ORDER BY t.id LIMIT %s",
            [after_id, limit],
        )
        pg = _pg()
        return [_tx_record(row, pg) for row in cursor.fetchall()]


def unsealed_postings(*, first_id: int, last_id: int) -> dict[int, list[PostingRecord]]:
    return _postings_by_tx(
        f"SELECT p.transaction_id, p.line, p.account_id, {_amount_sql('p.amount')}, p.memo FROM ledger_posting p"  # noqa: S608
        f" WHERE p.transaction_id >= %s AND p.transaction_id <= %s AND {_UNSEALED.format('p.transaction_id')}"
        " ORDER BY p.transaction_id, p.line",
        [first_id, last_id],
    )


def postings_total() -> Decimal:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_amount_sql('COALESCE(SUM(amount), 0)')} FROM ledger_posting")  # noqa: S608
        return Decimal(_amount(cursor.fetchone()[0]))
