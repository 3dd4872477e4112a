"""The interval grid and the coop's local days and months (Europe/Amsterdam in the settings)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from apps.common import intervals

UTC = dt.UTC
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(autouse=True)
def _coop(settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    settings.MARKET_INTERVAL_MINUTES = 15


def test_alignment_and_floor():
    assert intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 45, tzinfo=UTC))
    assert not intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 50, tzinfo=UTC))
    assert not intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 45, 1, tzinfo=UTC))
    assert not intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 45, 0, 1, tzinfo=UTC))
    local = dt.datetime(2026, 5, 1, 12, 59, 59, 999999, tzinfo=AMS)  # 10:59:59 UTC
    assert intervals.floor_to_interval(local) == dt.datetime(2026, 5, 1, 10, 45, tzinfo=UTC)
    assert intervals.floor_to_interval(local).tzinfo is UTC
    assert intervals.interval_seconds() == 900
    assert intervals.interval_length() == dt.timedelta(minutes=15)


def test_other_interval_lengths(settings):
    settings.MARKET_INTERVAL_MINUTES = 30
    assert intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 30, tzinfo=UTC))
    assert not intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 45, tzinfo=UTC))
    assert len(intervals.local_day_intervals(dt.date(2026, 5, 1))) == 48
    settings.MARKET_INTERVAL_MINUTES = 7  # does not divide the hour: nothing is aligned
    assert not intervals.is_aligned(dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("day", "count", "hours"),
    [
        (dt.date(2026, 3, 28), 96, 24),
        (dt.date(2026, 3, 29), 92, 23),  # clocks go forward at 02:00
        (dt.date(2026, 10, 25), 100, 25),  # clocks go back at 03:00
        (dt.date(2026, 10, 26), 96, 24),
    ],
)
def test_a_local_day_has_92_96_or_100_quarter_hours(day, count, hours):
    start, end = intervals.local_day_bounds(day)
    assert end - start == dt.timedelta(hours=hours)
    starts = intervals.local_day_intervals(day)
    assert len(starts) == count
    assert starts[0] == start and starts[-1] + intervals.interval_length() == end
    assert all(b - a == intervals.interval_length() for a, b in itertools.pairwise(starts))
    assert {intervals.local_date(s) for s in starts} == {day}


def test_local_midnight_and_day_start():
    assert intervals.local_midnight(dt.date(2026, 7, 1)) == dt.datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert intervals.local_midnight(dt.date(2026, 1, 1)) == dt.datetime(2025, 12, 31, 23, tzinfo=UTC)
    # 23:30 UTC on 30 June is already 1 July in Amsterdam.
    assert intervals.local_date(dt.datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == dt.date(2026, 7, 1)
    assert intervals.local_day_start(dt.datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == dt.datetime(
        2026, 6, 30, 22, tzinfo=UTC
    )


def test_local_months_including_the_dst_months_and_december():
    start, end = intervals.local_month_bounds(2026, 3)
    assert (start, end) == (dt.datetime(2026, 2, 28, 23, tzinfo=UTC), dt.datetime(2026, 3, 31, 22, tzinfo=UTC))
    assert len(intervals.local_month_intervals(2026, 3)) == 31 * 96 - 4
    assert len(intervals.local_month_intervals(2026, 10)) == 31 * 96 + 4
    start, end = intervals.local_month_bounds(2026, 12)
    assert end == dt.datetime(2026, 12, 31, 23, tzinfo=UTC)
    march = intervals.local_month_bounds(2026, 3)
    assert intervals.local_days_bounds(dt.date(2026, 3, 1), dt.date(2026, 3, 31)) == march


def test_interval_starts_floors_the_first_and_excludes_the_end():
    a = dt.datetime(2026, 5, 1, 10, 7, tzinfo=UTC)
    b = dt.datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    assert list(intervals.interval_starts(a, b)) == [
        dt.datetime(2026, 5, 1, 10, m, tzinfo=UTC) for m in (0, 15, 30, 45)
    ]
    assert list(intervals.interval_starts(b, b)) == []


def test_epoch_round_trip():
    at = dt.datetime(2026, 10, 25, 1, 15, tzinfo=UTC)
    assert intervals.from_epoch(intervals.to_epoch(at)) == at
    assert intervals.to_epoch(intervals.EPOCH) == 0
