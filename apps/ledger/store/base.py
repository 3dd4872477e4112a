"""The ledger store's interface: set-based reads and writes of the ledger tables.

For booking big batches and for verifying. :class:`LedgerStore` is what the services call;
:class:`~apps.ledger.store.postgres.PostgresLedgerStore` and
:class:`~apps.ledger.store.portable.PortableLedgerStore` are its two implementations, and
:func:`apps.ledger.store.store` picks one by the database's vendor. Reads for verification
hand instants and amounts back as the canonical strings of :mod:`apps.ledger.hashing`,
ready to hash, whichever the implementation. SQL here is assembled from these modules'
constants only; values always go as parameters.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection

from apps.ledger.models import Transaction

# Portable IN lists stay below SQLite's limit on bound parameters; reads of whole booked
# transactions by id go in chunks of this size on every database.
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

# A posting to insert: (transaction id, line, account id, amount, memo).
PostingRow = tuple[int, int, int, Decimal, str]


class NewTransaction(NamedTuple):
    """A transaction to insert (its postings go separately, through ``postings_insert``)."""

    key: str
    kind: str
    description: str
    occurred_at: dt.datetime
    created_at: dt.datetime
    reverses_id: int | None
    content_hash: str


UNSEALED = "NOT EXISTS (SELECT 1 FROM ledger_blockentry e WHERE e.transaction_id = {})"


class LedgerStore(abc.ABC):
    """Set-based access to the ledger tables: the same results from every implementation.

    Writes only insert (the ledger is append-only) and run in the caller's transaction.
    The implementations differ in how: the write statements, and for the reads the SQL that
    renders an instant or an amount and how a fetched row is decoded (the private hooks at
    the end); the read queries themselves are written once, here.
    """

    # --- Writes -------------------------------------------------------------------------------

    @abc.abstractmethod
    def transactions_insert(self, rows: Sequence[NewTransaction]) -> list[Transaction]:
        """Insert transactions in one statement; returns them saved, in the order given."""

    @abc.abstractmethod
    def postings_insert(self, rows: Iterable[PostingRow]) -> None:
        """Insert (transaction id, line, account id, amount, memo) rows in one statement.

        All postings of a transaction come in one call: on PostgreSQL a statement-level
        trigger refuses a statement that leaves a transaction unbalanced or incomplete.
        """

    @abc.abstractmethod
    def pending_for_seal(self, *, from_xid: int | None, limit: int) -> tuple[list[tuple[int, str]], int | None]:
        """(id, hash) of the oldest transactions not sealed yet, in id order, at most ``limit``;
        and the ``from_xid`` the next seal may pass (``None``: it looks at everything)."""

    @abc.abstractmethod
    def block_entries_insert(self, *, block_id: int, entries: Sequence[tuple[int, str]]) -> None:
        """A block's (transaction id, hash) entries, positions 0, 1, 2 ... in the order given."""

    # --- Reads for booking --------------------------------------------------------------------

    def account_codes(self, account_ids: Sequence[int]) -> dict[int, str]:
        """The codes of the accounts among ``account_ids`` that exist, by id."""
        return dict(self._select_in("SELECT id, code FROM ledger_account", "id", account_ids))

    def keys_taken(self, keys: Sequence[str]) -> bool:
        """Whether any of ``keys`` is booked already."""
        return bool(self._select_in("SELECT idempotency_key FROM ledger_transaction", "idempotency_key", keys))

    def transactions_by_key(self, keys: Sequence[str]) -> dict[str, Transaction]:
        """The booked transactions among ``keys`` (usually none, all of them on a rerun)."""
        ids = [row[0] for row in self._select_in("SELECT id FROM ledger_transaction", "idempotency_key", keys)]
        found: dict[str, Transaction] = {}
        for start in range(0, len(ids), PORTABLE_CHUNK):
            for tx in Transaction.objects.filter(pk__in=ids[start : start + PORTABLE_CHUNK]):
                found[tx.idempotency_key] = tx
        return found

    # --- Reads for verification ---------------------------------------------------------------

    @abc.abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """One consistent read of the ledger for the body of the ``with`` (a transaction)."""

    def block_entry_counts(self, *, min_block_id: int | None) -> dict[int, int]:
        """How many transactions each block from ``min_block_id`` on holds, by block id."""
        if min_block_id is None:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT block_id, COUNT(*) FROM ledger_blockentry WHERE block_id >= %s GROUP BY block_id",
                [min_block_id],
            )
            return dict(cursor.fetchall())

    def block_transactions(self, *, block_id: int, from_position: int, limit: int) -> list[tuple[int, str, TxRecord]]:
        """(position, hash as sealed, transaction) of a block from ``from_position`` on, in position order."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.position, e.content_hash, {self._tx_select()[len('SELECT ') :]}"
                " JOIN ledger_blockentry e ON e.transaction_id = t.id"
                " WHERE e.block_id = %s AND e.position >= %s ORDER BY e.position LIMIT %s",
                [block_id, from_position, limit],
            )
            rows = cursor.fetchall()
        records = self._tx_records([row[2:] for row in rows])
        return [(row[0], row[1], record) for row, record in zip(rows, records, strict=True)]

    def block_postings(self, *, block_id: int, from_position: int, to_position: int) -> dict[int, list[PostingRecord]]:
        """The postings of a block's transactions at positions [from, to], by transaction, in line order."""
        return self._postings_by_tx(
            f"SELECT p.transaction_id, p.line, p.account_id, {self._amount_sql('p.amount')}, p.memo"  # noqa: S608
            " FROM ledger_blockentry e JOIN ledger_posting p ON p.transaction_id = e.transaction_id"
            " WHERE e.block_id = %s AND e.position >= %s AND e.position <= %s ORDER BY p.transaction_id, p.line",
            [block_id, from_position, to_position],
        )

    def unsealed_transactions(self, *, after_id: int, limit: int) -> list[TxRecord]:
        """Transactions not sealed yet with ids above ``after_id``, in id order, at most ``limit``."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"{self._tx_select()} WHERE t.id > %s AND {UNSEALED.format('t.id')} ORDER BY t.id LIMIT %s",
                [after_id, limit],
            )
            return self._tx_records(cursor.fetchall())

    def unsealed_postings(self, *, first_id: int, last_id: int) -> dict[int, list[PostingRecord]]:
        """The postings of unsealed transactions with ids in [first, last], by transaction, in line order."""
        return self._postings_by_tx(
            f"SELECT p.transaction_id, p.line, p.account_id, {self._amount_sql('p.amount')}, p.memo"  # noqa: S608
            " FROM ledger_posting p WHERE p.transaction_id >= %s AND p.transaction_id <= %s"
            f" AND {UNSEALED.format('p.transaction_id')} ORDER BY p.transaction_id, p.line",
            [first_id, last_id],
        )

    def postings_total(self) -> Decimal:
        """The sum of every posting (zero in a sound ledger)."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {self._amount_sql('COALESCE(SUM(amount), 0)')} FROM ledger_posting")  # noqa: S608
            return Decimal(self._decode_amount(cursor.fetchone()[0]))

    # --- What each implementation says in its own SQL -------------------------------------------

    @abc.abstractmethod
    def _select_in(self, select: str, column: str, values: Sequence[Any]) -> list[tuple]:
        """The rows of ``select`` (a constant query without WHERE) whose ``column`` is in ``values``."""

    @abc.abstractmethod
    def _instant_sql(self, column: str) -> str:
        """SQL reading a timestamp column, as :meth:`_tx_records` decodes it."""

    @abc.abstractmethod
    def _amount_sql(self, column: str) -> str:
        """SQL reading a money column (or a sum of one), as :meth:`_decode_amount` decodes it."""

    @abc.abstractmethod
    def _decode_amount(self, value: Any) -> str:
        """A fetched money value as its canonical string (``hashing.amount_canonical``)."""

    @abc.abstractmethod
    def _tx_records(self, rows: Sequence[Sequence[Any]]) -> list[TxRecord]:
        """Fetched rows of :meth:`_tx_select` as records, instants canonical."""

    @abc.abstractmethod
    def _postings_by_tx(self, sql: str, params: list[Any]) -> dict[int, list[PostingRecord]]:
        """Rows of (transaction id, line, account id, amount, memo) by transaction, amounts canonical."""

    def _tx_select(self) -> str:
        return (
            f"SELECT t.id, t.idempotency_key, t.kind, t.description, {self._instant_sql('t.occurred_at')},"  # noqa: S608
            f" {self._instant_sql('t.created_at')}, t.content_hash, r.content_hash"
            " FROM ledger_transaction t LEFT JOIN ledger_transaction r ON r.id = t.reverses_id"
        )
