"""Set-based reads and writes of the meter-data tables for the ingest service.

Two implementations of one small interface: on PostgreSQL, array parameters with LATERAL
index look-ups and binary ``COPY`` straight into the tables (the ingest service holds a row
lock on every meter it writes, so no other writer can race it, and the primary keys remain
the safety net: a violation aborts the whole request); elsewhere (SQLite, the embedded
default) portable ORM queries. Every query covers a whole request, never one reading.

Times are integer epoch seconds (UTC) in and out, as in :mod:`apps.meters.vee`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_
from typing import NamedTuple

import numpy as np
from django.db import connection
from django.db.models import Max, Min, Q

from apps.meters.models import (
    IntervalCorrection,
    IntervalEnergy,
    Meter,
    Reading,
    ReadingRejection,
    RollupBacklog,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PG_EPOCH_SECONDS = 946_684_800
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"
# Portable queries OR together one condition per meter; SQLite limits expression depth.
ORM_CHUNK = 200


class MeterInfo(NamedTuple):
    """A locked meter, as the checks need it (a tuple: built 10,000 at a time, cheaply)."""

    id: int
    serial: str
    installed_ts: int
    removed_ts: int | None
    bidirectional: bool
    capacity_w: int


def to_ts(value: dt.datetime) -> int:
    return int((value - EPOCH).total_seconds())


class _Instants(dict):
    """epoch seconds -> aware datetime, built once per distinct instant."""

    def __missing__(self, ts: int) -> dt.datetime:
        value = EPOCH + dt.timedelta(seconds=ts)
        self[ts] = value
        return value


def instants() -> _Instants:
    return _Instants()


# Instants cross the wire as epoch seconds: Django's timestamptz loader is Python code, about
# 3 us a value, which is most of a query's time when it returns 10,000 rows.
_EPOCH = "extract(epoch FROM {})::bigint"


def int_array(values: Iterable[int]) -> str:
    """An integer array parameter as one literal (``'{1,2,3}'``): one string to quote instead of
    10,000 values to adapt one by one."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def _text_array(values: Iterable[str]) -> str:
    """A text array parameter as one literal (``'{"a","b"}'``), each element quoted and its
    backslashes and double quotes escaped (PostgreSQL's array syntax); no NUL allowed."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _chunks(items: Sequence, size: int = ORM_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- meters -------------------------------------------------------------------------------


def meters_lock(*, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> list[MeterInfo]:
    """Lock the meters (by id or serial) in id order for this transaction and describe them."""
    if is_postgres():
        column, values = ("m.id", list(ids)) if ids else ("m.serial", list(serials))
        with connection.cursor() as cursor:
            # The capacity as a scalar subquery: one index probe per meter, never a hash of the
            # whole connection-point table (which the planner picks when statistics are stale).
            cursor.execute(
                f"SELECT m.id, m.serial, {_EPOCH.format('m.installed_at')}, {_EPOCH.format('m.removed_at')}, "  # noqa: S608 - fixed table and column names, values bound
                "m.bidirectional, "
                "(SELECT cp.capacity_w FROM grid_connectionpoint cp WHERE cp.id = m.connection_point_id) "
                f"FROM meters_meter m WHERE {column} = ANY(%s::{'bigint' if ids else 'text'}[]) "
                "ORDER BY m.id FOR NO KEY UPDATE OF m",
                [int_array(values) if ids else _text_array(values)],
            )
            return [MeterInfo(*row) for row in cursor.fetchall()]
    else:
        queryset = Meter.objects.filter(pk__in=ids) if ids else Meter.objects.filter(serial__in=serials)
        rows = list(
            queryset.select_for_update(of=("self",))
            .order_by("pk")
            .values_list("id", "serial", "installed_at", "removed_at", "bidirectional", "connection_point__capacity_w")
        )
    return [
        MeterInfo(mid, serial, to_ts(installed), to_ts(removed) if removed else None, bidirectional, capacity)
        for mid, serial, installed, removed, bidirectional, capacity in rows
    ]


# --- reads --------------------------------------------------------------------------------


def readings_latest(*, meter_ids: Sequence[int]) -> dict[int, tuple[tuple[int, int, int] | None, int | None]]:
    """Per meter: its latest stored reading ``(ts, import_wh, export_wh)`` and the start of its
    latest estimated interval (epoch seconds), each ``None`` when there is none.

    Estimated intervals are the only stored energy a new reading can fall into (measured
    intervals lie between adjacent readings), so they are all the ingest needs to know of."""
    result: dict[int, tuple[tuple[int, int, int] | None, int | None]] = {}
    if not meter_ids:
        return result
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id, {_EPOCH.format('r.ts')}, r.import_wh, r.export_wh, {_EPOCH.format('e.interval_start')} "  # noqa: S608 - fixed expressions
                "FROM unnest(%s::bigint[]) AS m(id) "
                "LEFT JOIN LATERAL (SELECT ts, import_wh, export_wh FROM meters_reading "
                "  WHERE meter_id = m.id ORDER BY ts DESC LIMIT 1) r ON true "
                "LEFT JOIN LATERAL (SELECT interval_start FROM meters_intervalenergy "
                "  WHERE meter_id = m.id AND estimated ORDER BY interval_start DESC LIMIT 1) e ON true",
                [int_array(meter_ids)],
            )
            rows = cursor.fetchall()
        for mid, ts, imp, exp, last_start in rows:
            result[mid] = ((ts, imp, exp) if ts is not None else None, last_start)
        return result
    last_ts = dict(
        Reading.objects.filter(meter_id__in=meter_ids)
        .values("meter_id")
        .annotate(m=Max("ts"))
        .values_list("meter_id", "m")
    )
    last_start = dict(
        IntervalEnergy.objects.filter(meter_id__in=meter_ids, estimated=True)
        .values("meter_id")
        .annotate(m=Max("interval_start"))
        .values_list("meter_id", "m")
    )
    values = (
        {
            (mid, ts): (imp, exp)
            for mid, ts, imp, exp in Reading.objects.filter(pk__in=list(last_ts.items())).values_list(
                "meter_id", "ts", "import_wh", "export_wh"
            )
        }
        if last_ts
        else {}
    )
    for mid in meter_ids:
        ts = last_ts.get(mid)
        latest = (to_ts(ts), *values[(mid, ts)]) if ts is not None else None
        start = last_start.get(mid)
        result[mid] = (latest, to_ts(start) if start is not None else None)  # type: ignore[assignment]
    return result


def readings_around(*, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """For each ``(meter_id, ts)``: the stored reading at ts, the nearest before and the nearest
    after it, as ``(meter_id, ts, import_wh, export_wh)`` rows (without repeats)."""
    if not pairs:
        return []
    found: set[tuple[int, int, int, int]] = set()
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT x.meter_id, {_EPOCH.format('x.ts')}, x.import_wh, x.export_wh "  # noqa: S608 - fixed expressions
                "FROM (SELECT meter_id, to_timestamp(ts) AS ts "
                "  FROM unnest(%s::bigint[], %s::bigint[]) AS p(meter_id, ts)) q "
                "CROSS JOIN LATERAL ("
                "  (SELECT meter_id, ts, import_wh, export_wh FROM meters_reading r "
                "    WHERE r.meter_id = q.meter_id AND r.ts = q.ts) "
                "  UNION ALL (SELECT meter_id, ts, import_wh, export_wh FROM meters_reading r "
                "    WHERE r.meter_id = q.meter_id AND r.ts < q.ts ORDER BY r.ts DESC LIMIT 1) "
                "  UNION ALL (SELECT meter_id, ts, import_wh, export_wh FROM meters_reading r "
                "    WHERE r.meter_id = q.meter_id AND r.ts > q.ts ORDER BY r.ts LIMIT 1)"
                ") x",
                [int_array(m for m, _ in pairs), int_array(ts for _, ts in pairs)],
            )
            found.update(cursor.fetchall())
        return sorted(found)
    # Portable: per meter, every stored reading from the one before its earliest asked
    # instant to the one after its latest (one query for each bound, one for the rows).
    times = instants()
    spans: dict[int, tuple[int, int]] = {}
    for mid, ts in pairs:
        lo, hi = spans.get(mid, (ts, ts))
        spans[mid] = (min(lo, ts), max(hi, ts))
    meter_ids = sorted(spans)
    for chunk in _chunks(meter_ids):
        below = dict(
            Reading.objects.filter(reduce(or_, (Q(meter_id=m, ts__lt=times[spans[m][0]]) for m in chunk)))
            .values("meter_id")
            .annotate(b=Max("ts"))
            .values_list("meter_id", "b")
        )
        above = dict(
            Reading.objects.filter(reduce(or_, (Q(meter_id=m, ts__gt=times[spans[m][1]]) for m in chunk)))
            .values("meter_id")
            .annotate(a=Min("ts"))
            .values_list("meter_id", "a")
        )
        ranges = Q()
        for m in chunk:
            lo = below.get(m) or times[spans[m][0]]
            hi = above.get(m) or times[spans[m][1]]
            ranges |= Q(meter_id=m, ts__gte=lo, ts__lte=hi)
        for mid, ts, imp, exp in Reading.objects.filter(ranges).values_list("meter_id", "ts", "import_wh", "export_wh"):
            found.add((mid, to_ts(ts), imp, exp))
    return sorted(found)


def intervals_in(*, ranges: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], tuple[int, int, bool]]:
    """Stored interval energy of meter m with start in [lo, hi), for each ``(m, lo, hi)``."""
    result: dict[tuple[int, int], tuple[int, int, bool]] = {}
    if not ranges:
        return result
    times = instants()
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.meter_id, {_EPOCH.format('e.interval_start')}, e.import_wh, e.export_wh, e.estimated "  # noqa: S608 - fixed expressions
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS q(meter_id, lo, hi) "
                "JOIN meters_intervalenergy e ON e.meter_id = q.meter_id "
                "AND e.interval_start >= to_timestamp(q.lo) AND e.interval_start < to_timestamp(q.hi)",
                [
                    int_array(m for m, _, _ in ranges),
                    int_array(lo for _, lo, _ in ranges),
                    int_array(hi for _, _, hi in ranges),
                ],
            )
            return {(mid, start): (imp, exp, estimated) for mid, start, imp, exp, estimated in cursor.fetchall()}
    else:
        rows = []
        for chunk in _chunks(ranges):
            condition = reduce(
                or_, (Q(meter_id=m, interval_start__gte=times[lo], interval_start__lt=times[hi]) for m, lo, hi in chunk)
            )
            rows.extend(
                IntervalEnergy.objects.filter(condition).values_list(
                    "meter_id", "interval_start", "import_wh", "export_wh", "estimated"
                )
            )
    for mid, start, imp, exp, estimated in rows:
        result[(mid, to_ts(start))] = (imp, exp, estimated)
    return result


# --- writes -------------------------------------------------------------------------------


def _copy(table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence]) -> None:
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def copy_binary(kinds: Sequence[str], columns: Sequence[np.ndarray]) -> bytes:
    """Fixed-width columns as one PostgreSQL binary COPY stream, encoded by NumPy in one go (no
    per-row Python).

    ``kinds``: ``int8``; ``ts`` (epoch seconds, stored as timestamptz); ``us`` (microseconds
    since 2000-01-01, PostgreSQL's own timestamptz); ``bool``.
    """
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for k, kind in enumerate(kinds):
        fields += [(f"len{k}", ">i4"), (f"val{k}", "i1" if kind == "bool" else ">i8")]
    record = np.empty(len(columns[0]), dtype=np.dtype(fields))
    record["count"] = len(kinds)
    for k, (kind, column) in enumerate(zip(kinds, columns, strict=True)):
        record[f"len{k}"] = 1 if kind == "bool" else 8
        record[f"val{k}"] = (column - PG_EPOCH_SECONDS) * 1_000_000 if kind == "ts" else column
    return _COPY_HEADER + record.tobytes() + _COPY_TRAILER


def _copy_columns(table: str, names: Sequence[str], kinds: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    """Binary COPY of fixed-width columns (see :func:`copy_binary`) into ``table``."""
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(copy_binary(kinds, columns))


def readings_insert(*, columns: Sequence[np.ndarray], received_at: dt.datetime) -> None:
    """Store new readings, given as columns ``(meter_id, ts, import_wh, export_wh)``."""
    if not len(columns[0]):
        return
    if is_postgres():
        received_us = (received_at - PG_EPOCH) // dt.timedelta(microseconds=1)
        _copy_columns(
            "meters_reading",
            ("meter_id", "ts", "import_wh", "export_wh", "received_at"),
            ("int8", "ts", "int8", "int8", "us"),
            (*columns, np.full(len(columns[0]), received_us, dtype=np.int64)),
        )
        return
    times = instants()
    Reading.objects.bulk_create(
        [
            Reading(meter_id=m, ts=times[ts], import_wh=imp, export_wh=exp, received_at=received_at)
            for m, ts, imp, exp in zip(*(c.tolist() for c in columns), strict=True)
        ],
        batch_size=500,
    )


def intervals_write(*, inserts: Sequence[np.ndarray], updates: Sequence[tuple[int, int, int, int, bool]]) -> None:
    """Store new interval energy (columns ``meter_id, start, import_wh, export_wh, estimated``) and
    replace changed rows (tuples in the same order)."""
    times = instants()
    if is_postgres():
        if updates:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE meters_intervalenergy e SET import_wh = u.import_wh, export_wh = u.export_wh, "
                    "estimated = u.estimated "
                    "FROM unnest(%s::bigint[], %s::timestamptz[], %s::bigint[], %s::bigint[], %s::boolean[]) "
                    "AS u(meter_id, interval_start, import_wh, export_wh, estimated) "
                    "WHERE e.meter_id = u.meter_id AND e.interval_start = u.interval_start",
                    [
                        [r[0] for r in updates],
                        [times[r[1]] for r in updates],
                        [r[2] for r in updates],
                        [r[3] for r in updates],
                        [r[4] for r in updates],
                    ],
                )
        if len(inserts[0]):
            _copy_columns(
                "meters_intervalenergy",
                ("meter_id", "interval_start", "import_wh", "export_wh", "estimated"),
                ("int8", "ts", "int8", "int8", "bool"),
                inserts,
            )
        return
    if updates:
        for chunk in _chunks(list(updates)):
            IntervalEnergy.objects.filter(pk__in=[(m, times[s]) for m, s, *_ in chunk]).delete()
    rows = [*updates, *zip(*(c.tolist() for c in inserts), strict=True)]
    IntervalEnergy.objects.bulk_create(
        [
            IntervalEnergy(meter_id=m, interval_start=times[s], import_wh=imp, export_wh=exp, estimated=bool(est))
            for m, s, imp, exp, est in rows
        ],
        batch_size=500,
    )


def corrections_insert(
    *, rows: Sequence[tuple[int, int, tuple[int, int, bool], tuple[int, int, bool]]], at: dt.datetime
):
    """Record that stored intervals changed: ``(meter_id, start, old, new)``."""
    if not rows:
        return
    times = instants()
    IntervalCorrection.objects.bulk_create(
        [
            IntervalCorrection(
                meter_id=m,
                interval_start=times[s],
                old_import_wh=old[0],
                old_export_wh=old[1],
                old_estimated=old[2],
                new_import_wh=new[0],
                new_export_wh=new[1],
                new_estimated=new[2],
                created_at=at,
            )
            for m, s, old, new in rows
        ],
        batch_size=1000,
    )


def rejections_insert(*, rows: Sequence[tuple[int | None, str, int | None, str, str]], at: dt.datetime) -> None:
    """Record refused readings ``(meter_id, serial, ts, code, message)``; a serial as sent, cut
    to 64 characters, with any NUL (which PostgreSQL text cannot hold) shown as U+FFFD."""
    if not rows:
        return
    rows = [(m, serial.replace("\x00", "\ufffd"), ts, code, message) for m, serial, ts, code, message in rows]
    times = instants()
    if is_postgres():
        _copy(
            "meters_readingrejection",
            ("meter_id", "serial", "ts", "code", "message", "received_at"),
            ("int8", "text", "timestamptz", "text", "text", "timestamptz"),
            (
                (m, serial[:64], times[ts] if ts is not None else None, code, message[:255], at)
                for m, serial, ts, code, message in rows
            ),
        )
        return
    ReadingRejection.objects.bulk_create(
        [
            ReadingRejection(
                meter_id=m,
                serial=serial[:64],
                ts=times[ts] if ts is not None else None,
                code=code,
                message=message[:255],
                received_at=at,
            )
            for m, serial, ts, code, message in rows
        ],
        batch_size=500,
    )


def backlog_insert(*, rows: Sequence[tuple[int, int, int]], at: dt.datetime) -> None:
    """Rollups of meter m are due for [lo, hi): ``(meter_id, lo, hi)``."""
    if not rows:
        return
    times = instants()
    if is_postgres():
        meter, lo, hi = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        created_us = (at - PG_EPOCH) // dt.timedelta(microseconds=1)
        _copy_columns(
            "meters_rollupbacklog",
            ("meter_id", "start", '"end"', "created_at"),
            ("int8", "ts", "ts", "us"),
            (meter, lo, hi, np.full(len(meter), created_us, dtype=np.int64)),
        )
        return
    RollupBacklog.objects.bulk_create(
        [RollupBacklog(meter_id=m, start=times[lo], end=times[hi], created_at=at) for m, lo, hi in rows],
        batch_size=500,
    )


_END = '"end"'  # a reserved word as a column name


def backlog_take(*, limit: int) -> list[tuple[int, int, int, int]]:
    """The oldest ``limit`` rollup backlog entries ``(id, meter_id, start, end)``, times in epoch
    seconds (the caller holds the drain lock and deletes them with :func:`backlog_delete`)."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, meter_id, {_EPOCH.format('start')}, {_EPOCH.format(_END)} "  # noqa: S608 - fixed expressions
                "FROM meters_rollupbacklog ORDER BY id LIMIT %s",
                [limit],
            )
            return cursor.fetchall()
    return [
        (pk, mid, to_ts(lo), to_ts(hi))
        for pk, mid, lo, hi in RollupBacklog.objects.order_by("pk").values_list("pk", "meter_id", "start", "end")[
            :limit
        ]
    ]


def backlog_delete(*, ids: Sequence[int]) -> None:
    """Delete exactly these backlog entries (never by range: an entry with a lower id may commit
    after the batch was read, and must wait for the next drain)."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM meters_rollupbacklog WHERE id = ANY(%s::bigint[])", [int_array(ids)])
        return
    for chunk in _chunks(list(ids), 500):
        RollupBacklog.objects.filter(pk__in=chunk).delete()
