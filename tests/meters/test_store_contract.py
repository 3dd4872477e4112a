"""The storage contract: one set of tests for every method of the meter-data store
(``apps.meters.store.ReadingStore``) and of the rollup recompute (``RollupRecompute``), run
against both implementations on PostgreSQL (the portable one works there too) and against the
portable one on SQLite (:func:`test_the_contract_holds_on_sqlite` runs this file in a pytest
of its own with ``energycoop.settings.test_sqlite``).

Day buckets are checked on the coop's DST days (Europe/Amsterdam): 23 and 25 local hours.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.db import connection, transaction

from apps.common import intervals
from apps.meters import rollups, store
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import (
    FeederRollup,
    IntervalCorrection,
    IntervalEnergy,
    MemberRollup,
    Meter,
    MeterRollup,
    Reading,
    ReadingRejection,
    RollupBacklog,
)
from apps.meters.rollups import PortableRollups, PostgresRollups, RollupRecompute
from apps.meters.services import meter_register
from apps.meters.store import MeterInfo, PortableReadingStore, PostgresReadingStore, ReadingStore
from tests.factories import member_make, meter_make

ROOT = Path(__file__).resolve().parents[2]
STEP = 900
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
AT = dt.datetime(2026, 2, 1, 12, 0, 0, 123_000, tzinfo=dt.UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(k: int) -> int:
    return T0 + k * STEP


def cols(rows: list[tuple], width: int) -> tuple[np.ndarray, ...]:
    """Rows as the store's columns (the fifth, ``estimated``, boolean)."""
    if not rows:
        return tuple(np.array([], dtype=bool if k == 4 else np.int64) for k in range(width))
    return tuple(np.array(c, dtype=bool if k == 4 else np.int64) for k, c in enumerate(zip(*rows, strict=True)))


@dataclass(frozen=True)
class Implementation:
    store: ReadingStore
    rollups: RollupRecompute


@pytest.fixture(params=["postgres", "portable"])
def impl(request, db) -> Implementation:
    if request.param == "postgres":
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL's own store needs PostgreSQL")
        return Implementation(PostgresReadingStore(), PostgresRollups())
    reading_store = PortableReadingStore()
    return Implementation(reading_store, PortableRollups(reading_store))


@pytest.fixture
def meters(db) -> list[Meter]:
    member = member_make()
    return [meter_make(member)[0] for _ in range(3)]


# --- choosing -------------------------------------------------------------------------------


def test_one_store_and_one_recompute_per_vendor(db):
    postgres = connection.vendor == "postgresql"
    assert type(store.get()) is (PostgresReadingStore if postgres else PortableReadingStore)
    assert type(rollups.get()) is (PostgresRollups if postgres else PortableRollups)
    assert store.get() is store.get() and rollups.get() is rollups.get()


# --- meters -------------------------------------------------------------------------------


def test_meters_lock_describes_the_meters_in_id_order(impl, settings):
    member = member_make()
    odd, _ = meter_make(member, serial='M"1\\,{x} y')
    plain, _ = meter_make(member)
    removed = plain.installed_at + dt.timedelta(days=1, minutes=15)
    Meter.objects.filter(pk=plain.pk).update(removed_at=removed, bidirectional=False)
    expected = [
        MeterInfo(
            odd.pk, odd.serial, intervals.to_epoch(odd.installed_at), None, True, odd.connection_point.capacity_w
        ),
        MeterInfo(
            plain.pk,
            plain.serial,
            intervals.to_epoch(plain.installed_at),
            intervals.to_epoch(removed),
            False,
            plain.connection_point.capacity_w,
        ),
    ]
    with transaction.atomic():
        assert impl.store.meters_lock(ids=[plain.pk, odd.pk, 999_999_999]) == expected
        assert impl.store.meters_lock(serials=[plain.serial, odd.serial, 'M"1\\', "nope"]) == expected
        assert impl.store.meters_lock(ids=[odd.pk]) == expected[:1]
        assert impl.store.meters_lock(ids=[]) == []
        assert impl.store.meters_lock(serials=[]) == []


# --- readings -----------------------------------------------------------------------------


def test_readings_insert_and_latest(impl, meters):
    m1, m2, m3 = (m.pk for m in meters)
    impl.store.readings_insert(columns=cols([], 4), received_at=AT)  # nothing: no error
    impl.store.readings_insert(
        columns=cols([(m1, at(0), 10, 1), (m1, at(2), 30, 3), (m1, at(1), 20, 2), (m2, at(5), 7, 0)], 4),
        received_at=AT,
    )
    stored = set(Reading.objects.values_list("meter_id", "ts", "import_wh", "export_wh", "received_at"))
    assert stored == {
        (m1, intervals.from_epoch(at(0)), 10, 1, AT),
        (m1, intervals.from_epoch(at(1)), 20, 2, AT),
        (m1, intervals.from_epoch(at(2)), 30, 3, AT),
        (m2, intervals.from_epoch(at(5)), 7, 0, AT),
    }
    # The latest estimated interval counts, measured ones do not.
    impl.store.intervals_write(
        inserts=cols([(m1, at(0), 10, 1, False), (m1, at(4), 5, 0, True), (m1, at(3), 5, 0, True)], 5), updates=[]
    )
    impl.store.intervals_write(inserts=cols([(m2, at(9), 1, 0, False)], 5), updates=[])
    assert impl.store.readings_latest(meter_ids=[m1, m2, m3]) == {
        m1: ((at(2), 30, 3), at(4)),
        m2: ((at(5), 7, 0), None),
        m3: (None, None),
    }
    assert impl.store.readings_latest(meter_ids=[m3]) == {m3: (None, None)}
    assert impl.store.readings_latest(meter_ids=[]) == {}


def test_readings_around_gives_each_instants_neighbours(impl, meters):
    m1, m2, _m3 = (m.pk for m in meters)
    impl.store.readings_insert(
        columns=cols([(m1, at(k), 10 * k, k) for k in (0, 2, 4, 6, 8)] + [(m2, at(1), 5, 0)], 4), received_at=AT
    )
    assert impl.store.readings_around(pairs=[]) == []
    # At the instant, the nearest before and the nearest after; none twice; sorted.
    assert impl.store.readings_around(pairs=[(m1, at(3)), (m1, at(2)), (m2, at(1)), (m2, at(0))]) == [
        (m1, at(0), 0, 0),
        (m1, at(2), 20, 2),
        (m1, at(4), 40, 4),
        (m2, at(1), 5, 0),
    ]
    assert impl.store.readings_around(pairs=[(m1, at(9))]) == [(m1, at(8), 80, 8)]
    assert impl.store.readings_around(pairs=[(m1, at(-1))]) == [(m1, at(0), 0, 0)]
    # Far apart: at least each instant's neighbours, nothing outside the span they make.
    found = impl.store.readings_around(pairs=[(m1, at(1)), (m1, at(7))])
    assert found == sorted(set(found))
    assert {(m1, at(0), 0, 0), (m1, at(2), 20, 2), (m1, at(6), 60, 6), (m1, at(8), 80, 8)} <= set(found)
    assert set(found) <= {(m1, at(k), 10 * k, k) for k in (0, 2, 4, 6, 8)}


# --- interval energy ----------------------------------------------------------------------


def test_intervals_write_and_in(impl, meters):
    m1, m2, _m3 = (m.pk for m in meters)
    impl.store.intervals_write(inserts=cols([], 5), updates=[])  # nothing: no error
    impl.store.intervals_write(
        inserts=cols([(m1, at(k), k, 2 * k, k % 2 == 0) for k in range(6)] + [(m2, at(2), 99, 0, False)], 5),
        updates=[],
    )
    # Replace two rows and add one in the same call.
    impl.store.intervals_write(
        inserts=cols([(m1, at(6), 60, 0, False)], 5), updates=[(m1, at(1), 11, 12, False), (m1, at(4), 44, 0, False)]
    )
    assert IntervalEnergy.objects.count() == 8
    # Each range is [lo, hi): its start included, its end not.
    assert impl.store.intervals_in(ranges=[(m1, at(1), at(3)), (m1, at(4), at(7)), (m2, at(0), at(2))]) == {
        (m1, at(1)): (11, 12, False),
        (m1, at(2)): (2, 4, True),
        (m1, at(4)): (44, 0, False),
        (m1, at(5)): (5, 10, False),
        (m1, at(6)): (60, 0, False),
    }
    assert impl.store.intervals_in(ranges=[(m2, at(0), at(3))]) == {(m2, at(2)): (99, 0, False)}
    assert impl.store.intervals_in(ranges=[(m2, at(3), at(9))]) == {}
    assert impl.store.intervals_in(ranges=[]) == {}


def test_intervals_in_with_many_ranges(impl, meters):
    """More ranges than the portable store puts in one query."""
    m1 = meters[0].pk
    impl.store.intervals_write(inserts=cols([(m1, at(k), k, 0, False) for k in range(500)], 5), updates=[])
    ranges = [(m1, at(k), at(k + 1)) for k in range(0, 500, 2)]
    assert impl.store.intervals_in(ranges=ranges) == {(m1, at(k)): (k, 0, False) for k in range(0, 500, 2)}


def test_corrections_insert(impl, meters):
    m1 = meters[0].pk
    impl.store.corrections_insert(rows=[], at=AT)
    impl.store.corrections_insert(rows=[(m1, at(3), (4, 0, True), (7, 1, False))], at=AT)
    assert list(
        IntervalCorrection.objects.values_list(
            "meter_id", "interval_start", "old_import_wh", "old_export_wh", "old_estimated",
            "new_import_wh", "new_export_wh", "new_estimated", "created_at",
        )
    ) == [(m1, intervals.from_epoch(at(3)), 4, 0, True, 7, 1, False, AT)]  # fmt: skip


def test_rejections_insert_keeps_what_was_sent_within_the_columns(impl, meters):
    m1 = meters[0].pk
    impl.store.rejections_insert(rows=[], at=AT)
    impl.store.rejections_insert(
        rows=[
            (m1, "SN\x00X", at(1), "spike", "Too much."),
            (None, "S" * 80, None, "invalid", "m" * 300),
        ],
        at=AT,
    )
    assert list(
        ReadingRejection.objects.order_by("pk").values_list(
            "meter_id", "serial", "ts", "code", "message", "received_at"
        )
    ) == [
        (m1, "SN\ufffdX", intervals.from_epoch(at(1)), "spike", "Too much.", AT),
        (None, "S" * 64, None, "invalid", "m" * 255, AT),
    ]


# --- the rollup backlog -------------------------------------------------------------------


def test_backlog_insert_take_and_delete(impl, meters):
    m1, m2, _m3 = (m.pk for m in meters)
    impl.store.backlog_insert(rows=[], at=AT)
    assert impl.store.backlog_take(limit=10) == []
    impl.store.backlog_insert(rows=[(m2, at(0), at(4)), (m1, at(2), at(3)), (m1, at(8), at(9))], at=AT)
    assert set(RollupBacklog.objects.values_list("created_at", flat=True)) == {AT}
    everything = impl.store.backlog_take(limit=10)
    assert [row[1:] for row in everything] == [(m2, at(0), at(4)), (m1, at(2), at(3)), (m1, at(8), at(9))]
    assert [row[0] for row in everything] == sorted(row[0] for row in everything)  # oldest first
    first_two = impl.store.backlog_take(limit=2)
    assert first_two == everything[:2]
    impl.store.backlog_delete(ids=[first_two[1][0], first_two[0][0]])
    assert impl.store.backlog_take(limit=10) == everything[2:]
    impl.store.backlog_delete(ids=[])
    assert impl.store.backlog_take(limit=10) == everything[2:]


# --- rollups ------------------------------------------------------------------------------


@pytest.fixture
def coop(db, settings):
    """Two members on one feeder (the first with a sub-meter behind its main meter), the second
    with a second main meter on another feeder."""
    settings.TIME_ZONE = "Europe/Amsterdam"
    settings.MARKET_INTERVAL_MINUTES = 15
    first, second = member_make(), member_make()
    main_a, _ = meter_make(first, feeder="F-contract")
    sub_a, _ = meter_register(
        member=first,
        serial=f"{main_a.serial}-ev",
        connection_point=main_a.connection_point,
        installed_at=main_a.installed_at,
        role=MeterRole.SUB,
        parent=main_a,
    )
    main_b, _ = meter_make(second, feeder="F-contract")
    main_c, _ = meter_make(second, feeder="F-contract-other")
    return [main_a, sub_a, main_b, main_c]


def _local_day_start(start: dt.datetime) -> dt.datetime:
    local = start.astimezone(AMSTERDAM).date()
    return dt.datetime.combine(local, dt.time(0), tzinfo=AMSTERDAM).astimezone(dt.UTC)


def _expected_rollups() -> dict:
    """Every bucket summed from interval energy, independently of both implementations."""
    meters = {m.pk: m for m in Meter.objects.select_related("connection_point")}
    result: dict = defaultdict(lambda: [0, 0, 0, 0])
    for e in IntervalEnergy.objects.all():
        meter = meters[e.meter_id]
        start = e.interval_start.astimezone(dt.UTC)
        scopes = [("meter", meter.pk)]
        if meter.role == MeterRole.MAIN:
            scopes += [("member", meter.member_id), ("feeder", meter.connection_point.feeder_id)]
        for scope in scopes:
            for grain, bucket in (
                (RollupGrain.HOUR, start.replace(minute=0)),
                (RollupGrain.DAY, _local_day_start(start)),
            ):
                totals = result[(*scope, grain, bucket)]
                totals[0] += e.import_wh
                totals[1] += e.export_wh
                totals[2] += 1
                totals[3] += e.estimated
    return {key: tuple(value) for key, value in result.items()}


def _stored_rollups() -> dict:
    result = {}
    for model, scope, field in ((MeterRollup, "meter", "meter_id"), (MemberRollup, "member", "member_id"),
                                (FeederRollup, "feeder", "feeder_id")):  # fmt: skip
        for r in model.objects.all():
            key = (scope, getattr(r, field), r.grain, r.bucket_start.astimezone(dt.UTC))
            result[key] = (r.import_wh, r.export_wh, r.intervals, r.estimated_intervals)
    return result


@pytest.mark.parametrize(
    ("day", "utc_start", "hours"),
    [
        (dt.date(2025, 3, 30), dt.datetime(2025, 3, 29, 23, tzinfo=dt.UTC), 23),  # clocks go forward
        (dt.date(2025, 10, 26), dt.datetime(2025, 10, 25, 22, tzinfo=dt.UTC), 25),  # clocks go back
        (dt.date(2025, 6, 15), dt.datetime(2025, 6, 14, 22, tzinfo=dt.UTC), 24),
    ],
)
def test_buckets_recompute_over_local_days(impl, coop, day, utc_start, hours):
    # The local day and its neighbours, fully measured by every meter.
    lo = intervals.to_epoch(intervals.local_day_bounds(day - dt.timedelta(days=1))[0])
    hi = intervals.to_epoch(intervals.local_day_bounds(day + dt.timedelta(days=1))[1])
    assert intervals.local_day_bounds(day) == (utc_start, utc_start + dt.timedelta(hours=hours))
    assert len(intervals.local_day_intervals(day)) == hours * 4
    rows = [
        (meter.pk, ts, 10 * n + (ts // STEP) % 7, (ts // STEP) % 3, (ts // STEP) % 5 == 0)
        for n, meter in enumerate(coop, start=1)
        for ts in range(lo, hi, STEP)
    ]
    impl.store.intervals_write(inserts=cols(rows, 5), updates=[])
    with transaction.atomic():
        impl.rollups.buckets_recompute(spans=[(meter.pk, lo, hi) for meter in coop])
    assert _stored_rollups() == _expected_rollups()
    main_a, sub_a, main_b, main_c = coop
    day_bucket = MeterRollup.objects.get(meter=main_a, grain=RollupGrain.DAY, bucket_start=utc_start)
    assert day_bucket.intervals == hours * 4
    day_lo = intervals.to_epoch(utc_start)
    in_day = [r for r in rows if r[0] == main_a.pk and day_lo <= r[1] < day_lo + hours * 3600]
    assert (day_bucket.import_wh, day_bucket.estimated_intervals) == (
        sum(r[2] for r in in_day),
        sum(r[4] for r in in_day),
    )
    member_day = MemberRollup.objects.get(member=main_a.member, grain=RollupGrain.DAY, bucket_start=utc_start)
    assert member_day.intervals == hours * 4  # the main meter only, not its sub-meter
    feeder_day = FeederRollup.objects.get(
        feeder=main_a.connection_point.feeder, grain=RollupGrain.DAY, bucket_start=utc_start
    )
    assert feeder_day.intervals == 2 * hours * 4  # the two main meters on it

    # Late readings change part of two hours around the switch (not on the hour): the spans the
    # backlog would name, and only those, bring every bucket up to date again.
    change_lo, change_hi = intervals.to_epoch(utc_start) + 3600 + STEP, intervals.to_epoch(utc_start) + 3 * 3600
    updates = [
        (meter.pk, ts, 1_000 + (ts // STEP) % 11, 2, True)
        for meter in (main_a, sub_a, main_c)
        for ts in range(change_lo, change_hi, STEP)
    ]
    impl.store.intervals_write(inserts=cols([], 5), updates=updates)
    with transaction.atomic():
        impl.rollups.buckets_recompute(spans=[(meter.pk, change_lo, change_hi) for meter in (main_a, sub_a, main_c)])
    assert _stored_rollups() == _expected_rollups()
    # Recomputing again changes nothing.
    with transaction.atomic():
        impl.rollups.buckets_recompute(spans=[(main_b.pk, lo, hi)])
    assert _stored_rollups() == _expected_rollups()


def test_buckets_recompute_of_new_energy_only(impl, coop):
    """Energy arriving in a bucket that already has some: the bucket grows, its neighbours stay."""
    main_a = coop[0]
    start = intervals.to_epoch(dt.datetime(2025, 3, 30, 0, tzinfo=dt.UTC))
    impl.store.intervals_write(
        inserts=cols([(main_a.pk, start + k * STEP, 5, 1, False) for k in range(8)], 5), updates=[]
    )
    with transaction.atomic():
        impl.rollups.buckets_recompute(spans=[(main_a.pk, start, start + 8 * STEP)])
    impl.store.intervals_write(
        inserts=cols([(main_a.pk, start + k * STEP, 7, 0, True) for k in range(8, 10)], 5), updates=[]
    )
    with transaction.atomic():
        impl.rollups.buckets_recompute(spans=[(main_a.pk, start + 8 * STEP, start + 10 * STEP)])
    assert _stored_rollups() == _expected_rollups()
    hours = MeterRollup.objects.filter(meter=main_a, grain=RollupGrain.HOUR).order_by("bucket_start")
    assert [(h.import_wh, h.intervals, h.estimated_intervals) for h in hours] == [(20, 4, 0), (20, 4, 0), (14, 2, 2)]


# --- the same contract on SQLite ------------------------------------------------------------


@pytest.mark.slow
def test_the_contract_holds_on_sqlite(tmp_path):
    """This file again, in a pytest of its own on the embedded default (SQLite, no Redis)."""
    if connection.vendor == "sqlite":
        pytest.skip("this is the SQLite run")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CHANNELS_PREFIX", "PYTEST_ADDOPTS")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "energycoop.settings.test_sqlite",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'contract.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:randomly", "--create-db"]
    command += ["--ds", "energycoop.settings.test_sqlite", "-k", "not on_sqlite"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last and "error" not in last, last
