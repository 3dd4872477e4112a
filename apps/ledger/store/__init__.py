"""Set-based reads and writes of the ledger tables, for booking big batches and for verifying.

One interface (:class:`LedgerStore`, in ``base``), two implementations: ``postgres`` (array
parameters and ``COPY``: one statement per table whatever the batch size, so the
statement-level triggers of migration 0002 check each batch once) and ``portable``
(portable SQL and ``bulk_create``: SQLite, the embedded default). :func:`store` picks one
by the database's vendor, once per vendor; nothing else in the ledger asks which database
it is on.
"""

from __future__ import annotations

import functools

from django.db import connection

from apps.ledger.store.base import (
    PORTABLE_CHUNK,
    LedgerStore,
    NewTransaction,
    PostingRecord,
    PostingRow,
    TxRecord,
)
from apps.ledger.store.portable import PortableLedgerStore
from apps.ledger.store.postgres import PostgresLedgerStore

__all__ = [
    "PORTABLE_CHUNK",
    "LedgerStore",
    "NewTransaction",
    "PortableLedgerStore",
    "PostgresLedgerStore",
    "PostingRecord",
    "PostingRow",
    "TxRecord",
    "store",
    "store_for_vendor",
]


def store() -> LedgerStore:
    """The store for the database the ledger is on."""
    return store_for_vendor(connection.vendor)


@functools.cache
def store_for_vendor(vendor: str) -> LedgerStore:
    """PostgreSQL's fast paths on PostgreSQL, the portable store anywhere else (one instance each)."""
    if vendor == "postgresql":
        return PostgresLedgerStore()
    return PortableLedgerStore()
