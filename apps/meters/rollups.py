"""Recomputing touched rollup buckets from interval energy (called by ``rollups_refresh``).

Hour buckets are UTC hours; day buckets are the coop's local days (``TIME_ZONE``), stored as
their UTC start. Member and feeder buckets sum main meters only.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Q

from apps.meters import store
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import FeederRollup, MemberRollup, Meter, MeterRollup

HOUR = 3600
Totals = list[int]  # [import_wh, export_wh, intervals, estimated_intervals]


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def day_start(ts: int, zone: zoneinfo.ZoneInfo | None = None) -> int:
    """UTC epoch seconds of the start of the coop's local day holding ``ts``."""
    zone = zone or _zone()
    local = store.EPOCH + dt.timedelta(seconds=ts)
    midnight = local.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return store.to_ts(midnight)


def day_end(ts: int, zone: zoneinfo.ZoneInfo | None = None) -> int:
    zone = zone or _zone()
    local = (store.EPOCH + dt.timedelta(seconds=day_start(ts, zone))).astimezone(zone)
    nxt = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return store.to_ts(nxt)


def _merge(spans: Iterable[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    by_meter: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for mid, lo, hi in sorted(spans):
        ranges = by_meter[mid]
        if ranges and lo <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], hi))
        else:
            ranges.append((lo, hi))
    return by_meter


def buckets_recompute(*, spans: Sequence[tuple[int, int, int]]) -> None:
    """Recompute every bucket that intervals of meter m in [lo, hi) fall in, for each span."""
    if store.is_postgres():
        _buckets_recompute_sql(spans)
        return
    zone = _zone()
    # Whole local days around each span: the day buckets need all their intervals.
    day_spans = [(mid, day_start(lo, zone), day_end(max(lo, hi - 1), zone)) for mid, lo, hi in spans]
    merged = _merge(day_spans)
    touched_hours: set[tuple[int, int]] = set()
    touched_days: set[tuple[int, int]] = set()
    for mid, lo, hi in spans:
        for hour in range(lo - lo % HOUR, hi, HOUR):
            touched_hours.add((mid, hour))
            touched_days.add((mid, day_start(hour, zone)))
    rows = store.intervals_in(ranges=[(mid, lo, hi) for mid, ranges in merged.items() for lo, hi in ranges])
    hours: dict[tuple[int, int], Totals] = {}
    days: dict[tuple[int, int], Totals] = {}
    day_of_hour: dict[int, int] = {}
    for (mid, start), (imp, exp, estimated) in rows.items():
        hour = start - start % HOUR
        day = day_of_hour.get(hour)
        if day is None:
            day = day_of_hour[hour] = day_start(hour, zone)
        for key, table, wanted in (((mid, hour), hours, touched_hours), ((mid, day), days, touched_days)):
            if key not in wanted:
                continue
            totals = table.get(key)
            if totals is None:
                totals = table[key] = [0, 0, 0, 0]
            totals[0] += imp
            totals[1] += exp
            totals[2] += 1
            totals[3] += estimated
    _write(MeterRollup, "meter_id", RollupGrain.HOUR, touched_hours, hours)
    _write(MeterRollup, "meter_id", RollupGrain.DAY, touched_days, days)
    _scopes_recompute(touched_hours=touched_hours, touched_days=touched_days)


def _scopes_recompute(*, touched_hours: set[tuple[int, int]], touched_days: set[tuple[int, int]]) -> None:
    """Member and feeder buckets of the touched main meters, from those meters' rollups."""
    meter_ids = {mid for mid, _ in touched_hours} | {mid for mid, _ in touched_days}
    mains = dict(Meter.objects.filter(pk__in=meter_ids, role=MeterRole.MAIN).values_list("pk", "member_id"))
    if not mains:
        return
    feeder_of = dict(Meter.objects.filter(pk__in=mains).values_list("pk", "connection_point__feeder_id"))
    for scope_model, scope_field, owner_of, meter_field in (
        (MemberRollup, "member_id", mains, "member_id"),
        (FeederRollup, "feeder_id", feeder_of, "connection_point__feeder_id"),
    ):
        for grain, touched in ((RollupGrain.HOUR, touched_hours), (RollupGrain.DAY, touched_days)):
            wanted = {(owner_of[mid], bucket) for mid, bucket in touched if mid in owner_of}
            if not wanted:
                continue
            members_of = defaultdict(list)
            for owner, bucket in wanted:
                members_of[owner].append(bucket)
            totals: dict[tuple[int, int], Totals] = {}
            times = store.instants()
            for chunk in _chunked(sorted(members_of)):
                condition = reduce(
                    or_,
                    (
                        Q(
                            **{f"meter__{meter_field}": owner},
                            bucket_start__gte=times[min(members_of[owner])],
                            bucket_start__lte=times[max(members_of[owner])],
                        )
                        for owner in chunk
                    ),
                )
                for owner, bucket, imp, exp, count, estimated in (
                    MeterRollup.objects.filter(condition, grain=grain, meter__role=MeterRole.MAIN)
                    .values_list(
                        f"meter__{meter_field}",
                        "bucket_start",
                        "import_wh",
                        "export_wh",
                        "intervals",
                        "estimated_intervals",
                    )
                    .iterator(chunk_size=10_000)
                ):
                    key = (owner, store.to_ts(bucket))
                    if key not in wanted:
                        continue
                    acc = totals.get(key)
                    if acc is None:
                        acc = totals[key] = [0, 0, 0, 0]
                    acc[0] += imp
                    acc[1] += exp
                    acc[2] += count
                    acc[3] += estimated
            _write(scope_model, scope_field, grain, wanted, totals)


def _chunked(items: Sequence, size: int = store.ORM_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write(model, scope_field: str, grain: str, touched: set[tuple[int, int]], totals: dict) -> None:
    """Replace the touched buckets of one scope and grain by their new totals."""
    if not touched:
        return
    times = store.instants()
    by_scope: dict[int, list[int]] = defaultdict(list)
    for scope, bucket in touched:
        by_scope[scope].append(bucket)
    for chunk in _chunked(sorted(by_scope)):
        condition = reduce(
            or_, (Q(**{scope_field: scope}, bucket_start__in=[times[b] for b in by_scope[scope]]) for scope in chunk)
        )
        model.objects.filter(condition, grain=grain).delete()
    model.objects.bulk_create(
        [
            model(
                **{scope_field: scope},
                grain=grain,
                bucket_start=times[bucket],
                import_wh=value[0],
                export_wh=value[1],
                intervals=value[2],
                estimated_intervals=value[3],
            )
            for (scope, bucket), value in sorted(totals.items())
            if value[2]
        ],
        batch_size=2000,
    )


# --- PostgreSQL: the same, by deltas, in a few set-based statements ------------------------

_COLUMNS = "import_wh, export_wh, intervals, estimated_intervals"
_SET = (
    "ON CONFLICT ({scope}, grain, bucket_start) DO UPDATE SET import_wh = EXCLUDED.import_wh, "
    "export_wh = EXCLUDED.export_wh, intervals = EXCLUDED.intervals, estimated_intervals = EXCLUDED.estimated_intervals"
)
_ADD = (
    "ON CONFLICT ({scope}, grain, bucket_start) DO UPDATE SET import_wh = {t}.import_wh + EXCLUDED.import_wh, "
    "export_wh = {t}.export_wh + EXCLUDED.export_wh, intervals = {t}.intervals + EXCLUDED.intervals, "
    "estimated_intervals = {t}.estimated_intervals + EXCLUDED.estimated_intervals"
)
_DELTA_SUMS = "sum(d.d_import), sum(d.d_export), sum(d.d_intervals), sum(d.d_estimated)"


def _buckets_recompute_sql(spans: Sequence[tuple[int, int, int]]) -> None:
    """Touched meter hours recomputed from interval energy; their change (new minus stored) is
    then added to the meter's day and to its member's and feeder's hour and day, so no bucket
    is ever summed again from its parts. Exactly once: the caller deletes the backlog entries in
    the same transaction, and drains take turns."""
    from django.db import connection

    zone = settings.TIME_ZONE
    # Whole hours, merged per meter: each span is one index range scan of interval energy.
    merged = _merge((mid, lo - lo % HOUR, hi + (-hi) % HOUR) for mid, lo, hi in spans)
    flat = [(mid, lo, hi) for mid, ranges in merged.items() for lo, hi in ranges]
    day = "(date_trunc('day', {col} AT TIME ZONE %s) AT TIME ZONE %s)"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _rollup_delta")
        cursor.execute(
            "CREATE TEMP TABLE _rollup_delta ON COMMIT DROP AS "  # noqa: S608 - fixed table and column names, values bound
            "WITH fresh AS ("
            "  SELECT e.meter_id, date_trunc('hour', e.interval_start) AS bucket, sum(e.import_wh) AS import_wh, "
            "  sum(e.export_wh) AS export_wh, count(*) AS intervals, count(*) FILTER (WHERE e.estimated) AS estimated "
            "  FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS s(meter_id, lo, hi) "
            "  JOIN meters_intervalenergy e ON e.meter_id = s.meter_id AND e.interval_start >= to_timestamp(s.lo) "
            "  AND e.interval_start < to_timestamp(s.hi) GROUP BY 1, 2) "
            f"SELECT f.meter_id, f.bucket, {day.format(col='f.bucket')} AS day, "
            "f.import_wh, f.export_wh, f.intervals, f.estimated, "
            "f.import_wh - coalesce(r.import_wh, 0) AS d_import, f.export_wh - coalesce(r.export_wh, 0) AS d_export, "
            "f.intervals - coalesce(r.intervals, 0) AS d_intervals, "
            "f.estimated - coalesce(r.estimated_intervals, 0) AS d_estimated, "
            "m.role = 'main' AS is_main, m.member_id, cp.feeder_id "
            "FROM fresh f LEFT JOIN meters_meterrollup r ON r.meter_id = f.meter_id AND r.grain = 'hour' "
            "AND r.bucket_start = f.bucket "
            "JOIN meters_meter m ON m.id = f.meter_id JOIN grid_connectionpoint cp ON cp.id = m.connection_point_id",
            [*(store.int_array(column) for column in zip(*flat, strict=True)), zone, zone],
        )
        cursor.execute(
            f"INSERT INTO meters_meterrollup (meter_id, grain, bucket_start, {_COLUMNS}) "  # noqa: S608 - fixed table and column names, values bound
            "SELECT meter_id, 'hour', bucket, import_wh, export_wh, intervals, estimated FROM _rollup_delta "
            + _SET.format(scope="meter_id")
        )
        for table, scope, where, grain, bucket in (
            ("meters_meterrollup", "meter_id", "true", "day", "day"),
            ("meters_memberrollup", "member_id", "is_main", "hour", "bucket"),
            ("meters_memberrollup", "member_id", "is_main", "day", "day"),
            ("meters_feederrollup", "feeder_id", "is_main", "hour", "bucket"),
            ("meters_feederrollup", "feeder_id", "is_main", "day", "day"),
        ):
            cursor.execute(
                f"INSERT INTO {table} AS t ({scope}, grain, bucket_start, {_COLUMNS}) "  # noqa: S608 - fixed names
                f"SELECT d.{scope}, %s, d.{bucket}, {_DELTA_SUMS} FROM _rollup_delta d WHERE {where} "
                f"GROUP BY d.{scope}, d.{bucket} " + _ADD.format(scope=scope, t="t"),
                [grain],
            )
        cursor.execute("DROP TABLE _rollup_delta")
