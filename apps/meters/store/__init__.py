"""Set-based reads and writes of the meter-data tables for the ingest service.

Two implementations of one interface (:class:`~apps.meters.store.base.ReadingStore`): on
PostgreSQL, array parameters with LATERAL index look-ups and binary ``COPY`` straight into
the tables (:mod:`.postgres`); elsewhere (SQLite, the embedded default) portable ORM queries
(:mod:`.portable`). :func:`get` picks one per database vendor, once; the module-level
functions below are the store's public face and hand each call to it. Every query covers a
whole request, never one reading.

Times are integer epoch seconds (UTC) in and out, as in :mod:`apps.meters.vee`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from django.db import connection

from apps.meters.store.base import (
    EPOCH,
    ORM_CHUNK,
    Correction,
    IntervalRow,
    IntervalValue,
    Latest,
    MeterInfo,
    ReadingStore,
    RejectionRow,
    instants,
    to_ts,
)
from apps.meters.store.portable import PortableReadingStore
from apps.meters.store.postgres import PG_EPOCH, PG_EPOCH_SECONDS, PostgresReadingStore, copy_binary, int_array

__all__ = [
    "EPOCH",
    "ORM_CHUNK",
    "PG_EPOCH",
    "PG_EPOCH_SECONDS",
    "MeterInfo",
    "PortableReadingStore",
    "PostgresReadingStore",
    "ReadingStore",
    "backlog_delete",
    "backlog_insert",
    "backlog_take",
    "copy_binary",
    "corrections_insert",
    "get",
    "instants",
    "int_array",
    "intervals_in",
    "intervals_write",
    "meters_lock",
    "readings_around",
    "readings_insert",
    "readings_latest",
    "rejections_insert",
    "to_ts",
]

IMPLEMENTATIONS: dict[str, type[ReadingStore]] = {"postgresql": PostgresReadingStore}
_chosen: dict[str, ReadingStore] = {}


def get() -> ReadingStore:
    """The store for the default database: PostgreSQL's own, else the portable one (per vendor,
    built once)."""
    vendor = connection.vendor
    store = _chosen.get(vendor)
    if store is None:
        store = _chosen[vendor] = IMPLEMENTATIONS.get(vendor, PortableReadingStore)()
    return store


# --- the interface, through the chosen store (see ReadingStore for each promise) ------------


def meters_lock(*, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> list[MeterInfo]:
    """Lock the meters (by id or serial) in id order for this transaction and describe them."""
    return get().meters_lock(ids=ids, serials=serials)


def readings_latest(*, meter_ids: Sequence[int]) -> dict[int, Latest]:
    """Per meter: its latest stored reading ``(ts, import_wh, export_wh)`` and the start of its
    latest estimated interval, each ``None`` when there is none."""
    return get().readings_latest(meter_ids=meter_ids)


def readings_around(*, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """For each ``(meter_id, ts)``: the stored reading at ts and its nearest neighbours."""
    return get().readings_around(pairs=pairs)


def intervals_in(*, ranges: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], IntervalValue]:
    """Stored interval energy of meter m with start in [lo, hi), for each ``(m, lo, hi)``."""
    return get().intervals_in(ranges=ranges)


def readings_insert(*, columns: Sequence[np.ndarray], received_at: dt.datetime) -> None:
    """Store new readings, given as columns ``(meter_id, ts, import_wh, export_wh)``."""
    get().readings_insert(columns=columns, received_at=received_at)


def intervals_write(*, inserts: Sequence[np.ndarray], updates: Sequence[IntervalRow]) -> None:
    """Store new interval energy (columns) and replace changed rows (tuples)."""
    get().intervals_write(inserts=inserts, updates=updates)


def corrections_insert(*, rows: Sequence[Correction], at: dt.datetime) -> None:
    """Record that stored intervals changed: ``(meter_id, start, old, new)``."""
    get().corrections_insert(rows=rows, at=at)


def rejections_insert(*, rows: Sequence[RejectionRow], at: dt.datetime) -> None:
    """Record refused readings ``(meter_id, serial, ts, code, message)``."""
    get().rejections_insert(rows=rows, at=at)


def backlog_insert(*, rows: Sequence[tuple[int, int, int]], at: dt.datetime) -> None:
    """Rollups of meter m are due for [lo, hi): ``(meter_id, lo, hi)``."""
    get().backlog_insert(rows=rows, at=at)


def backlog_take(*, limit: int) -> list[tuple[int, int, int, int]]:
    """The oldest ``limit`` rollup backlog entries ``(id, meter_id, start, end)``."""
    return get().backlog_take(limit=limit)


def backlog_delete(*, ids: Sequence[int]) -> None:
    """Delete exactly these backlog entries."""
    get().backlog_delete(ids=ids)
