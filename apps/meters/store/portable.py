"""The meter-data store in portable ORM queries (SQLite, the embedded default; it works on
PostgreSQL too). Still set-based: a few queries per request, conditions chunked by meter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import reduce
from operator import or_

import numpy as np
from django.db.models import Max, Min, Q

from apps.meters import locks
from apps.meters.models import IntervalEnergy, Reading, ReadingRejection, RollupBacklog
from apps.meters.store.base import (
    IntervalRow,
    IntervalValue,
    Latest,
    MeterInfo,
    ReadingStore,
    RejectionRow,
    chunks,
    instants,
    rejection_rows_clean,
    to_ts,
)


class PortableReadingStore(ReadingStore):
    """Django ORM queries only."""

    def meters_lock(self, *, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> list[MeterInfo]:
        rows = list(
            locks.meters_for_update(ids=ids, serials=serials).values_list(
                "id", "serial", "installed_at", "removed_at", "bidirectional", "connection_point__capacity_w"
            )
        )
        return [
            MeterInfo(mid, serial, to_ts(installed), to_ts(removed) if removed else None, bidirectional, capacity)
            for mid, serial, installed, removed, bidirectional, capacity in rows
        ]

    def readings_latest(self, *, meter_ids: Sequence[int]) -> dict[int, Latest]:
        result: dict[int, Latest] = {}
        if not meter_ids:
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

    def readings_around(self, *, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
        if not pairs:
            return []
        # Per meter, every stored reading from the one before its earliest asked instant to the
        # one after its latest (one query for each bound, one for the rows).
        found: set[tuple[int, int, int, int]] = set()
        times = instants()
        spans: dict[int, tuple[int, int]] = {}
        for mid, ts in pairs:
            lo, hi = spans.get(mid, (ts, ts))
            spans[mid] = (min(lo, ts), max(hi, ts))
        meter_ids = sorted(spans)
        for chunk in chunks(meter_ids):
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
            for mid, ts, imp, exp in Reading.objects.filter(ranges).values_list(
                "meter_id", "ts", "import_wh", "export_wh"
            ):
                found.add((mid, to_ts(ts), imp, exp))
        return sorted(found)

    def intervals_in(self, *, ranges: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], IntervalValue]:
        result: dict[tuple[int, int], IntervalValue] = {}
        if not ranges:
            return result
        times = instants()
        for chunk in chunks(ranges):
            condition = reduce(
                or_, (Q(meter_id=m, interval_start__gte=times[lo], interval_start__lt=times[hi]) for m, lo, hi in chunk)
            )
            for mid, start, imp, exp, estimated in IntervalEnergy.objects.filter(condition).values_list(
                "meter_id", "interval_start", "import_wh", "export_wh", "estimated"
            ):
                result[(mid, to_ts(start))] = (imp, exp, estimated)
        return result

    def readings_insert(self, *, columns: Sequence[np.ndarray], received_at: dt.datetime) -> None:
        if not len(columns[0]):
            return
        times = instants()
        Reading.objects.bulk_create(
            [
                Reading(meter_id=m, ts=times[ts], import_wh=imp, export_wh=exp, received_at=received_at)
                for m, ts, imp, exp in zip(*(c.tolist() for c in columns), strict=True)
            ],
            batch_size=500,
        )

    def intervals_write(self, *, inserts: Sequence[np.ndarray], updates: Sequence[IntervalRow]) -> None:
        times = instants()
        if updates:
            for chunk in chunks(list(updates)):
                IntervalEnergy.objects.filter(pk__in=[(m, times[s]) for m, s, *_ in chunk]).delete()
        rows = [*updates, *zip(*(c.tolist() for c in inserts), strict=True)]
        IntervalEnergy.objects.bulk_create(
            [
                IntervalEnergy(meter_id=m, interval_start=times[s], import_wh=imp, export_wh=exp, estimated=bool(est))
                for m, s, imp, exp, est in rows
            ],
            batch_size=500,
        )

    def rejections_insert(self, *, rows: Sequence[RejectionRow], at: dt.datetime) -> None:
        if not rows:
            return
        times = instants()
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
                for m, serial, ts, code, message in rejection_rows_clean(rows)
            ],
            batch_size=500,
        )

    def backlog_insert(self, *, rows: Sequence[tuple[int, int, int]], at: dt.datetime) -> None:
        if not rows:
            return
        times = instants()
        RollupBacklog.objects.bulk_create(
            [RollupBacklog(meter_id=m, start=times[lo], end=times[hi], created_at=at) for m, lo, hi in rows],
            batch_size=500,
        )

    def backlog_take(self, *, limit: int) -> list[tuple[int, int, int, int]]:
        entries = RollupBacklog.objects.order_by("pk").values_list("pk", "meter_id", "start", "end")[:limit]
        return [(pk, mid, to_ts(lo), to_ts(hi)) for pk, mid, lo, hi in entries]

    def backlog_delete(self, *, ids: Sequence[int]) -> None:
        for chunk in chunks(list(ids), 500):
            RollupBacklog.objects.filter(pk__in=chunk).delete()
