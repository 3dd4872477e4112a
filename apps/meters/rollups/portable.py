"""The rollup recompute in portable ORM queries: every touched bucket summed again from its
parts (interval energy for a meter's hours and days, the main meters' rollups for a member's
or feeder's)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import reduce
from operator import or_

from django.db.models import Q

from apps.common import intervals
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import FeederRollup, MemberRollup, Meter, MeterRollup
from apps.meters.rollups.base import HOUR, RollupRecompute, Totals, day_end, day_start, spans_merge
from apps.meters.store.base import ReadingStore, chunks, instants, to_ts
from apps.meters.store.portable import PortableReadingStore


class PortableRollups(RollupRecompute):
    """Reads interval energy through a portable :class:`ReadingStore` (its own by default)."""

    def __init__(self, reading_store: ReadingStore | None = None) -> None:
        self.reading_store = reading_store or PortableReadingStore()

    def buckets_recompute(self, *, spans: Sequence[tuple[int, int, int]]) -> None:
        zone = intervals.coop_zone()
        # Whole local days around each span: the day buckets need all their intervals.
        day_spans = [(mid, day_start(lo, zone), day_end(max(lo, hi - 1), zone)) for mid, lo, hi in spans]
        merged = spans_merge(day_spans)
        touched_hours: set[tuple[int, int]] = set()
        touched_days: set[tuple[int, int]] = set()
        for mid, lo, hi in spans:
            for hour in range(lo - lo % HOUR, hi, HOUR):
                touched_hours.add((mid, hour))
                touched_days.add((mid, day_start(hour, zone)))
        rows = self.reading_store.intervals_in(
            ranges=[(mid, lo, hi) for mid, ranges in merged.items() for lo, hi in ranges]
        )
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
            times = instants()
            for chunk in chunks(sorted(members_of)):
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
                    key = (owner, to_ts(bucket))
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


def _write(model, scope_field: str, grain: str, touched: set[tuple[int, int]], totals: dict) -> None:
    """Replace the touched buckets of one scope and grain by their new totals."""
    if not touched:
        return
    times = instants()
    by_scope: dict[int, list[int]] = defaultdict(list)
    for scope, bucket in touched:
        by_scope[scope].append(bucket)
    for chunk in chunks(sorted(by_scope)):
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
