"""Interval energy: gap estimation and its replacement, swaps, main vs sub-meters, rollups."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pytest

from apps.common import clock
from apps.meters import services
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import (
    FeederRollup,
    IntervalCorrection,
    IntervalEnergy,
    MemberRollup,
    Meter,
    MeterRollup,
    Reading,
    RollupBacklog,
)
from apps.meters.rollups import day_start
from apps.meters.selectors import (
    interval_corrections_since,
    member_energy_dashboard,
    member_interval_energy,
)
from apps.meters.services import meter_register, meter_swap, readings_ingest, rollups_drain
from apps.meters.signals import interval_energy_changed
from tests.factories import member_make, meter_make
from tests.meters.conftest import STEP, iso

pytestmark = pytest.mark.django_db


def _reading(at: dt.datetime, import_wh: int, export_wh: int = 0) -> dict:
    return {"ts": iso(at), "import_wh": import_wh, "export_wh": export_wh}


def _energy(meter: Meter) -> list[tuple[dt.datetime, int, int, bool]]:
    return list(
        IntervalEnergy.objects.filter(meter=meter)
        .order_by("interval_start")
        .values_list("interval_start", "import_wh", "export_wh", "estimated")
    )


def test_a_short_gap_is_interpolated_linearly_and_flagged(meter_and_key, day0, backend):
    meter, _ = meter_and_key
    readings_ingest(readings=[_reading(day0, 1000, 10), _reading(day0 + 4 * STEP, 1403, 18)], meter=meter)
    energy = _energy(meter)
    assert [e[0] for e in energy] == [day0 + k * STEP for k in range(4)]
    assert [e[1] for e in energy] == [100, 101, 101, 101]
    assert [e[2] for e in energy] == [2, 2, 2, 2]
    assert sum(e[1] for e in energy) == 403 and all(e[3] for e in energy)


def test_a_late_reading_replaces_the_estimate_and_marks_a_correction(meter_and_key, day0, backend):
    meter, _ = meter_and_key
    readings_ingest(readings=[_reading(day0, 1000), _reading(day0 + 4 * STEP, 1400)], meter=meter)
    received = []

    def listener(sender, meter_ids, interval_starts, **kwargs):
        received.append(list(zip(meter_ids, interval_starts, strict=True)))

    interval_energy_changed.connect(listener)
    try:
        with pytest.MonkeyPatch.context():
            from django.test import TestCase

            with TestCase.captureOnCommitCallbacks(execute=True):
                result = readings_ingest(readings=[_reading(day0 + STEP, 1250)], meter=meter)
    finally:
        interval_energy_changed.disconnect(listener)
    assert result.accepted == 1 and result.corrected_intervals == 4
    energy = _energy(meter)
    assert [(e[1], e[3]) for e in energy] == [(250, False), (50, True), (50, True), (50, True)]
    assert received == [[(meter.pk, day0 + k * STEP) for k in range(4)]]
    corrections = list(interval_corrections_since(after_id=0))
    first = corrections[0]
    assert (first.interval_start, first.old_import_wh, first.new_import_wh) == (day0, 100, 250)
    assert (first.old_estimated, first.new_estimated) == (True, False)
    # The rest of the gap arrives: all measured now, each interval corrected once more.
    readings_ingest(readings=[_reading(day0 + 2 * STEP, 1300), _reading(day0 + 3 * STEP, 1390)], meter=meter)
    assert [(e[1], e[3]) for e in _energy(meter)] == [(250, False), (50, False), (90, False), (10, False)]
    assert IntervalCorrection.objects.filter(meter=meter).count() == 4 + 3


def test_a_long_gap_follows_the_like_day_profile(db, day0, backend):
    week_ago = day0 - dt.timedelta(days=7)
    meter, _ = meter_make(member_make(), installed_at=week_ago)
    # A week earlier: 12 hours measured, with a bump in the fourth hour.
    profile = [40] * 48
    profile[12:16] = [400, 400, 400, 400]
    register, history = 1000, [_reading(week_ago, 1000)]
    for k, wh in enumerate(profile, start=1):
        register += wh
        history.append(_reading(week_ago + k * STEP, register))
    assert readings_ingest(readings=history, meter=meter).accepted == 49
    # Today the meter misses 12 hours; the register delta over the gap is what it is.
    readings_ingest(readings=[_reading(day0, 50_000), _reading(day0 + 48 * STEP, 53_000)], meter=meter)
    gap = [e for e in _energy(meter) if e[0] >= day0]
    assert len(gap) == 48 and all(e[3] for e in gap)
    assert sum(e[1] for e in gap) == 3000
    assert gap[12][1] > 4 * gap[0][1]  # the like day's bump shows in the estimate


def test_trailing_and_leading_intervals_are_not_invented(meter_and_key, day0, backend):
    meter, _ = meter_and_key
    readings_ingest(readings=[_reading(day0 + 4 * STEP, 1000)], meter=meter)
    assert _energy(meter) == []
    # A reading before the first one opens the series backwards.
    readings_ingest(readings=[_reading(day0 + 2 * STEP, 900)], meter=meter)
    assert [(e[1], e[3]) for e in _energy(meter)] == [(50, True), (50, True)]


def test_meter_swap_closes_the_old_registers_and_opens_the_new(db, day0, backend):
    member = member_make()
    old, _old_key = meter_make(member)
    readings_ingest(readings=[_reading(day0 + k * STEP, 90_000 + 100 * k, 500 + k) for k in range(5)], meter=old)
    swap_at = day0 + 6 * STEP
    new, _new_key = meter_swap(
        old_meter=old,
        new_serial="NEW-1",
        at=swap_at,
        old_final_import_wh=90_600,
        old_final_export_wh=506,
        new_initial_import_wh=0,
        new_initial_export_wh=0,
    )
    readings_ingest(readings=[_reading(swap_at + k * STEP, 100 * k, k) for k in range(1, 4)], meter=new)
    old.refresh_from_db()
    assert old.removed_at == swap_at and old.key_hash is None
    assert new.installed_at == swap_at and new.connection_point_id == old.connection_point_id and new.is_main
    # The old meter's last intervals and the new meter's first ones meet at the swap.
    assert _energy(old)[-1][0] == swap_at - STEP
    assert _energy(new)[0][0] == swap_at
    totals = member_interval_energy(member=member, start=day0, end=day0 + dt.timedelta(hours=3))
    assert [t.interval_start for t in totals] == [day0 + k * STEP for k in range(9)]
    assert [t.import_wh for t in totals] == [100] * 9
    assert [t.export_wh for t in totals] == [1] * 9
    assert all(t.import_wh >= 0 for t in totals)
    # The old meter takes no readings after its removal; a rollback against it is no rollback of the new.
    late = readings_ingest(readings=[_reading(swap_at + STEP, 90_700, 507)], meter=old)
    assert [r.code for r in late.rejected] == ["invalid"]
    assert readings_ingest(readings=[_reading(swap_at + 4 * STEP, 400, 4)], meter=new).accepted == 1


def test_meter_swap_refuses_a_removed_meter_and_readings_after_the_swap(db, day0):
    from apps.common.exceptions import Conflict

    old, _ = meter_make(member_make())
    readings_ingest(readings=[_reading(day0 + 8 * STEP, 5000)], meter=old)
    with pytest.raises(Conflict):
        meter_swap(
            old_meter=old,
            new_serial="NEW-2",
            at=day0 + 4 * STEP,
            old_final_import_wh=4000,
            old_final_export_wh=0,
            new_initial_import_wh=0,
            new_initial_export_wh=0,
        )
    assert not Meter.objects.filter(serial="NEW-2").exists()
    old.refresh_from_db()
    assert old.removed_at is None


def test_settlement_energy_sums_main_meters_only(db, day0):
    member = member_make()
    main, _ = meter_make(member)
    ev, _ = meter_register(
        member=member,
        serial="EV-1",
        connection_point=main.connection_point,
        installed_at=main.installed_at,
        role=MeterRole.SUB,
        parent=main,
        bidirectional=False,
    )
    readings_ingest(readings=[_reading(day0, 0, 0), _reading(day0 + STEP, 900, 30)], meter=main)
    readings_ingest(readings=[_reading(day0, 0), _reading(day0 + STEP, 700)], meter=ev)
    totals = member_interval_energy(member=member, start=day0, end=day0 + STEP)
    assert [(t.import_wh, t.export_wh, t.estimated) for t in totals] == [(900, 30, False)]


def _recompute() -> dict[tuple[str, str, int, str, dt.datetime], tuple[int, int, int, int]]:
    """Every rollup from scratch, from interval energy, for comparison."""
    meters = {m.pk: m for m in Meter.objects.select_related("connection_point")}
    result: dict = defaultdict(lambda: [0, 0, 0, 0])
    for e in IntervalEnergy.objects.all():
        meter = meters[e.meter_id]
        hour = e.interval_start.replace(minute=0)
        day = clock.parse_instant(iso(e.interval_start))
        day = dt.datetime.fromtimestamp(day_start(int(day.timestamp())), dt.UTC)
        scopes = [("meter", meter.pk)]
        if meter.role == MeterRole.MAIN:
            scopes += [("member", meter.member_id), ("feeder", meter.connection_point.feeder_id)]
        for scope, scope_id in scopes:
            for grain, bucket in ((RollupGrain.HOUR, hour), (RollupGrain.DAY, day)):
                acc = result[(scope, scope_id, grain, bucket)]
                acc[0] += e.import_wh
                acc[1] += e.export_wh
                acc[2] += 1
                acc[3] += e.estimated
    return {k: tuple(v) for k, v in result.items()}


def _stored_rollups() -> dict:
    result = {}
    for model, scope, field in ((MeterRollup, "meter", "meter_id"), (MemberRollup, "member", "member_id"),
                                (FeederRollup, "feeder", "feeder_id")):  # fmt: skip
        for r in model.objects.all():
            result[(scope, getattr(r, field), r.grain, r.bucket_start)] = (
                r.import_wh, r.export_wh, r.intervals, r.estimated_intervals
            )  # fmt: skip
    return result


def test_rollups_kept_incrementally_equal_a_recompute(db, backend):
    rng = random.Random(3)
    start = clock.today_start_utc() - dt.timedelta(days=4)
    members = [member_make() for _ in range(3)]
    meters = [meter_make(m, feeder=f"F{i % 2}", installed_at=start)[0] for i, m in enumerate(members)]
    meters.append(meter_make(members[0], installed_at=start)[0])  # a second main meter of member 0
    meters.append(
        meter_register(
            member=members[1],
            serial="SUB-PV",
            connection_point=meters[1].connection_point,
            installed_at=start,
            role=MeterRole.SUB,
            parent=meters[1],
            bidirectional=False,
        )[0]
    )
    registers = {m.pk: [0, 0] for m in meters}
    batches: list[list[tuple[Meter, dict]]] = []
    for k in range(3 * 96):
        at = start + k * STEP
        for meter in meters:
            registers[meter.pk][0] += rng.randint(0, 500)
            if meter.bidirectional:
                registers[meter.pk][1] += rng.randint(0, 300)
            batches.append([(meter, _reading(at, *registers[meter.pk]))])
    rng.shuffle(batches)  # late, out-of-order delivery; a fifth of it arrives only later
    held_back = batches[: len(batches) // 5]
    for chunk_start in range(len(batches) // 5, len(batches), 500):
        _ingest_mixed(batches[chunk_start : chunk_start + 500])
        if chunk_start % 2000 == 0:
            rollups_drain()
    rollups_drain()
    assert _stored_rollups() == _recompute()
    _ingest_mixed(held_back)  # estimates get replaced, rollups follow incrementally
    assert RollupBacklog.objects.exists()
    rollups_drain()
    assert not RollupBacklog.objects.exists()
    assert _stored_rollups() == _recompute()
    assert not IntervalEnergy.objects.filter(estimated=True).exists()
    assert rollups_drain() == 0  # running again changes nothing
    assert _stored_rollups() == _recompute()


def _ingest_mixed(batches: list[list[tuple[Meter, dict]]]) -> None:
    by_meter: dict[int, list[dict]] = defaultdict(list)
    meters = {}
    for batch in batches:
        for meter, reading in batch:
            by_meter[meter.pk].append(reading)
            meters[meter.pk] = meter
    for mid, readings in by_meter.items():
        result = readings_ingest(readings=readings, meter=meters[mid])
        assert not result.rejected, result.rejected[:3]


@pytest.mark.slow
def test_a_year_dashboard_for_ten_meters_answers_from_rollups_in_bounded_queries(db, django_assert_num_queries):
    member = member_make()
    start = day_start(int((clock.today_start_utc() - dt.timedelta(days=366)).timestamp()))
    start_at = dt.datetime.fromtimestamp(start, dt.UTC)
    meters = [meter_make(member, installed_at=start_at)[0] for _ in range(10)]
    intervals = 365 * 96
    operator_items = []
    for meter in meters:
        for k in range(0, intervals + 1):
            operator_items.append(
                {"serial": meter.serial, "ts": iso(start_at + k * STEP), "import_wh": 37 * k, "export_wh": 11 * k}
            )
    for chunk in range(0, len(operator_items), services.MAX_READINGS_PER_REQUEST):
        result = readings_ingest(readings=operator_items[chunk : chunk + services.MAX_READINGS_PER_REQUEST])
        assert not result.rejected
    rollups_drain(limit=50_000)
    end_at = start_at + intervals * STEP
    with django_assert_num_queries(3):
        dashboard = member_energy_dashboard(member=member, start=start_at, end=end_at, grain=RollupGrain.DAY)
    assert len(dashboard.member_buckets) in (365, 366)
    assert sum(b.import_wh for b in dashboard.member_buckets) == 10 * 37 * intervals
    assert all(len(rows) == len(dashboard.member_buckets) for rows in dashboard.meter_buckets.values())
    with django_assert_num_queries(3):
        hourly = member_energy_dashboard(member=member, start=end_at - dt.timedelta(days=7), end=end_at, grain="hour")
    assert len(hourly.member_buckets) == 7 * 24
    assert Reading.objects.filter(meter__in=meters).count() == 10 * (intervals + 1)


def test_meter_swap_command_prints_the_new_key(db, day0):
    from io import StringIO

    from django.core.management import CommandError, call_command

    old, _ = meter_make(member_make())
    readings_ingest(readings=[_reading(day0, 100)], meter=old)
    out = StringIO()
    at = iso(day0 + 2 * STEP)
    call_command(
        "meter_swap",
        old.serial,
        "NEW-CMD",
        "--at",
        at,
        "--old-final",
        "300",
        "0",
        "--new-initial",
        "5",
        "0",
        stdout=out,
    )
    assert out.getvalue().strip().startswith("ecm_")
    assert Meter.objects.get(serial="NEW-CMD").installed_at == day0 + 2 * STEP
    with pytest.raises(CommandError, match="already removed"):
        call_command(
            "meter_swap", old.serial, "NEW-CMD2", "--at", at, "--old-final", "300", "0", "--new-initial", "0", "0"
        )


def test_a_quiet_meter_is_estimated_after_the_cutoff_and_corrected_by_its_readings(meter_and_key, day0, backend):
    from apps.meters.services import interval_energy_estimate_quiet

    meter, _ = meter_and_key
    readings_ingest(readings=[_reading(day0 + k * STEP, 1000 + 40 * k, 2 * k) for k in range(9)], meter=meter)
    last = day0 + 8 * STEP
    # Three hours after the last reading, with a one-hour cutoff: two hours are estimated.
    assert interval_energy_estimate_quiet(now=last + dt.timedelta(hours=3)) == 8
    assert interval_energy_estimate_quiet(now=last + dt.timedelta(hours=3)) == 0  # idempotent
    trailing = [e for e in _energy(meter) if e[0] >= last]
    assert [(e[0], e[1], e[2], e[3]) for e in trailing] == [(last + k * STEP, 40, 2, True) for k in range(8)]
    # The meter comes back: its first hour is measured now, the rest stays estimated.
    result = readings_ingest(
        readings=[_reading(last + k * STEP, 1320 + 100 * k, 16 + k) for k in range(1, 5)], meter=meter
    )
    assert result.accepted == 4 and result.corrected_intervals == 4
    after = [e for e in _energy(meter) if e[0] >= last]
    assert [(e[1], e[3]) for e in after] == [(100, False)] * 4 + [(40, True)] * 4
    rollups_drain()
    assert _stored_rollups() == _recompute()
