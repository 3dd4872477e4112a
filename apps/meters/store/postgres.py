"""The meter-data store on PostgreSQL: array parameters with LATERAL index look-ups, and
binary ``COPY`` straight into the tables.

The ingest service holds a row lock on every meter it writes, so no other writer can race a
COPY, and the primary keys remain the safety net: a violation aborts the whole request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import connection

from apps.meters.store.base import (
    IntervalRow,
    IntervalValue,
    Latest,
    MeterInfo,
    ReadingStore,
    RejectionRow,
    instants,
    rejection_rows_clean,
)

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PG_EPOCH_SECONDS = 946_684_800
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"

# Instants cross the wire as epoch seconds: Django's timestamptz loader is Python code, about
# 3 us a value, which is most of a query's time when it returns 10,000 rows.
_EPOCH = "extract(epoch FROM {})::bigint"
_END = '"end"'  # a reserved word as a column name


def int_array(values: Iterable[int]) -> str:
    """An integer array parameter as one literal (``'{1,2,3}'``): one string to quote instead of
    10,000 values to adapt one by one."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def _text_array(values: Iterable[str]) -> str:
    """A text array parameter as one literal (``'{"a","b"}'``), each element quoted and its
    backslashes and double quotes escaped (PostgreSQL's array syntax); no NUL allowed."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


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


def _copy(table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence]) -> None:
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _copy_columns(table: str, names: Sequence[str], kinds: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    """Binary COPY of fixed-width columns (see :func:`copy_binary`) into ``table``."""
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(copy_binary(kinds, columns))


def _pg_us(at: dt.datetime) -> int:
    """An aware instant as PostgreSQL's timestamptz: microseconds since 2000-01-01."""
    return (at - PG_EPOCH) // dt.timedelta(microseconds=1)


class PostgresReadingStore(ReadingStore):
    """One statement (or one COPY) per table and request."""

    def meters_lock(self, *, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> list[MeterInfo]:
        # Raw SQL rather than apps.meters.locks: the lock (FOR NO KEY UPDATE OF the meter rows
        # only) comes with the instants as epoch seconds and the capacity, in one statement.
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

    def readings_latest(self, *, meter_ids: Sequence[int]) -> dict[int, Latest]:
        result: dict[int, Latest] = {}
        if not meter_ids:
            return result
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

    def readings_around(self, *, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
        if not pairs:
            return []
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
            found: set[tuple[int, int, int, int]] = set(cursor.fetchall())
        return sorted(found)

    def intervals_in(self, *, ranges: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], IntervalValue]:
        if not ranges:
            return {}
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

    def readings_insert(self, *, columns: Sequence[np.ndarray], received_at: dt.datetime) -> None:
        if not len(columns[0]):
            return
        _copy_columns(
            "meters_reading",
            ("meter_id", "ts", "import_wh", "export_wh", "received_at"),
            ("int8", "ts", "int8", "int8", "us"),
            (*columns, np.full(len(columns[0]), _pg_us(received_at), dtype=np.int64)),
        )

    def intervals_write(self, *, inserts: Sequence[np.ndarray], updates: Sequence[IntervalRow]) -> None:
        if updates:
            times = instants()
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

    def rejections_insert(self, *, rows: Sequence[RejectionRow], at: dt.datetime) -> None:
        if not rows:
            return
        times = instants()
        _copy(
            "meters_readingrejection",
            ("meter_id", "serial", "ts", "code", "message", "received_at"),
            ("int8", "text", "timestamptz", "text", "text", "timestamptz"),
            (
                (m, serial[:64], times[ts] if ts is not None else None, code, message[:255], at)
                for m, serial, ts, code, message in rejection_rows_clean(rows)
            ),
        )

    def backlog_insert(self, *, rows: Sequence[tuple[int, int, int]], at: dt.datetime) -> None:
        if not rows:
            return
        meter, lo, hi = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        _copy_columns(
            "meters_rollupbacklog",
            ("meter_id", "start", '"end"', "created_at"),
            ("int8", "ts", "ts", "us"),
            (meter, lo, hi, np.full(len(meter), _pg_us(at), dtype=np.int64)),
        )

    def backlog_take(self, *, limit: int) -> list[tuple[int, int, int, int]]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, meter_id, {_EPOCH.format('start')}, {_EPOCH.format(_END)} "  # noqa: S608 - fixed expressions
                "FROM meters_rollupbacklog ORDER BY id LIMIT %s",
                [limit],
            )
            return cursor.fetchall()

    def backlog_delete(self, *, ids: Sequence[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM meters_rollupbacklog WHERE id = ANY(%s::bigint[])", [int_array(ids)])
