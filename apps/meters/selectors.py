"""Reads of meters and meter data, always scoped to who asks. Settlement reads energy here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Max, QuerySet, Sum, When

from apps.members.models import Member
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import (
    IntervalCorrection,
    IntervalEnergy,
    MemberRollup,
    Meter,
    MeterRollup,
    Reading,
    ReadingRejection,
)


def meters_for_member(*, member: Member) -> QuerySet[Meter]:
    """The member's own meters (main first, then sub-meters), never anyone else's."""
    return Meter.objects.filter(member=member).select_related("connection_point__feeder").order_by("role", "serial")


@dataclass(frozen=True, slots=True)
class IntervalEnergyTotal:
    interval_start: dt.datetime
    import_wh: int
    export_wh: int
    estimated: bool


_ESTIMATED_ANY = Max(Case(When(estimated=True, then=1), default=0, output_field=IntegerField()))


def member_interval_energy(*, member: Member, start: dt.datetime, end: dt.datetime) -> list[IntervalEnergyTotal]:
    """The member's metered energy per interval in [start, end): the sum over its main meters.

    What settlement counts as M_i and M_e. Sub-meters are never added (they sit behind a main
    meter, which already measured their energy). A swapped-out meter counts up to its swap,
    its successor from then on. ``estimated`` is true when any part was estimated. Intervals
    with no energy from any main meter are absent.
    """
    rows = (
        IntervalEnergy.objects.filter(
            meter__member=member,
            meter__role=MeterRole.MAIN,
            interval_start__gte=start,
            interval_start__lt=end,
        )
        .values("interval_start")
        .annotate(imp=Sum("import_wh"), exp=Sum("export_wh"), est=_ESTIMATED_ANY)
        .order_by("interval_start")
    )
    return [IntervalEnergyTotal(r["interval_start"], r["imp"], r["exp"], bool(r["est"])) for r in rows]


def members_interval_energy(
    *, start: dt.datetime, end: dt.datetime
) -> dict[int, dict[dt.datetime, IntervalEnergyTotal]]:
    """Every member's metered energy per interval in [start, end), keyed by member id (one query)."""
    rows = (
        IntervalEnergy.objects.filter(meter__role=MeterRole.MAIN, interval_start__gte=start, interval_start__lt=end)
        .values("meter__member_id", "interval_start")
        .annotate(imp=Sum("import_wh"), exp=Sum("export_wh"), est=_ESTIMATED_ANY)
        .order_by("meter__member_id", "interval_start")
    )
    result: dict[int, dict[dt.datetime, IntervalEnergyTotal]] = {}
    for r in rows:
        result.setdefault(r["meter__member_id"], {})[r["interval_start"]] = IntervalEnergyTotal(
            r["interval_start"], r["imp"], r["exp"], bool(r["est"])
        )
    return result


def interval_corrections_since(*, after_id: int = 0, limit: int = 10_000) -> QuerySet[IntervalCorrection]:
    """Changes to stored interval energy after the correction ``after_id``, oldest first."""
    return IntervalCorrection.objects.filter(pk__gt=after_id).select_related("meter").order_by("pk")[:limit]


def meter_recent_readings(*, meter: Meter, limit: int = 96) -> list[Reading]:
    return list(Reading.objects.filter(meter=meter).order_by("-ts")[:limit])


def meter_recent_intervals(*, meter: Meter, limit: int = 96) -> list[IntervalEnergy]:
    return list(IntervalEnergy.objects.filter(meter=meter).order_by("-interval_start")[:limit])


@dataclass(frozen=True)
class EnergyDashboard:
    """A member's energy over a span, from rollups: the member total and each meter's."""

    grain: str
    member_buckets: list[MemberRollup]
    meter_buckets: dict[int, list[MeterRollup]]
    meters: list[Meter]


def member_energy_dashboard(
    *, member: Member, start: dt.datetime, end: dt.datetime, grain: str = RollupGrain.DAY
) -> EnergyDashboard:
    """Member and per-meter energy per hour or day in [start, end), in three queries whatever the span."""
    meters = list(meters_for_member(member=member))
    member_buckets = list(
        MemberRollup.objects.filter(member=member, grain=grain, bucket_start__gte=start, bucket_start__lt=end).order_by(
            "bucket_start"
        )
    )
    meter_buckets: dict[int, list[MeterRollup]] = {m.pk: [] for m in meters}
    for row in MeterRollup.objects.filter(
        meter__in=[m.pk for m in meters], grain=grain, bucket_start__gte=start, bucket_start__lt=end
    ).order_by("meter_id", "bucket_start"):
        meter_buckets[row.meter_id].append(row)
    return EnergyDashboard(grain=grain, member_buckets=member_buckets, meter_buckets=meter_buckets, meters=meters)


@dataclass(frozen=True)
class MeterHealth:
    meter: Meter
    last_reading_at: dt.datetime | None
    estimated_intervals: int
    rejections: int
    rejection_codes: dict[str, int]


def meters_needing_attention(*, since: dt.datetime, stale_after: dt.datetime) -> list[MeterHealth]:
    """Meters with estimated (gap) intervals or refused readings since ``since``, or no reading
    after ``stale_after``; for the operators' page, in a fixed number of queries."""
    meters = {
        m.pk: m for m in Meter.objects.filter(removed_at__isnull=True).select_related("member", "connection_point")
    }
    estimated = dict(
        MeterRollup.objects.filter(grain=RollupGrain.DAY, bucket_start__gte=since, estimated_intervals__gt=0)
        .values("meter_id")
        .annotate(n=Sum("estimated_intervals"))
        .values_list("meter_id", "n")
    )
    codes: dict[int, dict[str, int]] = {}
    for mid, code, n in (
        ReadingRejection.objects.filter(received_at__gte=since, meter__isnull=False)
        .values("meter_id", "code")
        .annotate(n=Count("pk"))
        .values_list("meter_id", "code", "n")
    ):
        codes.setdefault(mid, {})[code] = n
    last = dict(
        Reading.objects.filter(meter_id__in=list(meters), ts__gte=since)
        .values("meter_id")
        .annotate(last=Max("ts"))
        .values_list("meter_id", "last")
    )
    result = []
    for mid, meter in meters.items():
        last_at = last.get(mid)
        stale = last_at is None or last_at < stale_after
        if estimated.get(mid) or codes.get(mid) or stale:
            result.append(
                MeterHealth(
                    meter=meter,
                    last_reading_at=last_at,
                    estimated_intervals=estimated.get(mid, 0),
                    rejections=sum(codes.get(mid, {}).values()),
                    rejection_codes=codes.get(mid, {}),
                )
            )
    result.sort(key=lambda h: (-h.rejections, -h.estimated_intervals, h.meter.serial))
    return result


def rejections_recent(*, since: dt.datetime, limit: int = 200) -> QuerySet[ReadingRejection]:
    return ReadingRejection.objects.filter(received_at__gte=since).select_related("meter")[:limit]


def meters_latest_readings(*, meter_ids: list[int]) -> dict[int, tuple[dt.datetime, int, int]]:
    """Each meter's latest stored reading ``(ts, import_wh, export_wh)``; meters without one are absent."""
    from apps.common import intervals
    from apps.meters import store

    result = {}
    for mid, (latest, _last_interval) in store.readings_latest(meter_ids=meter_ids).items():
        if latest is not None:
            result[mid] = (intervals.from_epoch(latest[0]), latest[1], latest[2])
    return result


def members_with_main_meters(*, start: dt.datetime, end: dt.datetime) -> set[int]:
    """Members that had a main meter installed during [start, end) (settlement's population)."""
    from django.db.models import Q

    return set(
        Meter.objects.filter(role=MeterRole.MAIN, installed_at__lt=end)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gt=start))
        .values_list("member_id", flat=True)
        .distinct()
    )


def main_meters_first_installed() -> dt.datetime | None:
    """When the first main meter started measuring (where settlement starts)."""
    from django.db.models import Min

    return Meter.objects.filter(role=MeterRole.MAIN).aggregate(first=Min("installed_at"))["first"]


def meter_for_viewer(*, serial: str, member: Member | None, is_operator: bool) -> Meter | None:
    """The meter with this serial if the viewer may see it: its owner, or an operator."""
    meter = Meter.objects.filter(serial=serial).select_related("connection_point__feeder", "member").first()
    if meter is None or not (is_operator or (member is not None and meter.member_id == member.pk)):
        return None
    return meter


def meter_daily_energy(*, meter: Meter, days: int = 14) -> list[MeterRollup]:
    """The meter's latest ``days`` daily rollups, oldest first."""
    rows = list(MeterRollup.objects.filter(meter=meter, grain=RollupGrain.DAY).order_by("-bucket_start")[:days])
    return rows[::-1]
