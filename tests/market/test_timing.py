"""Market timing (apps/market/timing.py): gate closure and the opening horizon on the UTC
interval grid, also across the coop's DST changes. No database."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from apps.common.intervals import coop_zone, is_aligned
from apps.market import timing

UTC = dt.UTC
MICROSECOND = dt.timedelta(microseconds=1)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def test_an_interval_ends_one_length_later_and_its_gate_closes_before_it_starts():
    times = timing.interval_times(at("2026-11-23T08:15:00+00:00"))
    assert times.end == at("2026-11-23T08:30:00+00:00")
    assert times.gate_closure == at("2026-11-23T08:10:00+00:00")


def test_the_gate_closes_at_the_instant_of_gate_closure_not_after():
    start = at("2026-11-23T08:15:00+00:00")
    gate = timing.interval_times(start).gate_closure
    assert not timing.gate_is_closed(start, gate - MICROSECOND)
    assert timing.gate_is_closed(start, gate)
    assert timing.gate_is_closed(start, start + dt.timedelta(hours=1))


def test_the_horizon_is_the_opening_hours_ahead_of_now(settings):
    now = at("2026-11-23T08:03:17+00:00")
    assert timing.horizon_end(now) == now + dt.timedelta(hours=24)
    settings.MARKET_OPEN_HOURS = 2
    assert timing.horizon_end(now) == now + dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("now", "first"),
    [
        ("2026-11-23T08:00:00+00:00", "2026-11-23T08:15:00+00:00"),
        ("2026-11-23T08:09:59.999999+00:00", "2026-11-23T08:15:00+00:00"),  # its gate still open
        ("2026-11-23T08:10:00+00:00", "2026-11-23T08:30:00+00:00"),  # 08:15's gate has just closed
        ("2026-11-23T08:14:59+00:00", "2026-11-23T08:30:00+00:00"),
        ("2026-11-23T08:15:00+00:00", "2026-11-23T08:30:00+00:00"),  # 08:15 is under way
    ],
)
def test_the_first_open_interval_is_the_next_whose_gate_is_open(now: str, first: str):
    assert timing.open_interval_starts(at(now), limit=1) == [at(first)]


def test_open_starts_run_on_the_grid_up_to_and_including_the_horizon():
    now = at("2026-11-23T08:00:00+00:00")
    starts = timing.open_interval_starts(now)
    assert starts[0] == at("2026-11-23T08:15:00+00:00")
    assert starts[-1] == timing.horizon_end(now) == at("2026-11-24T08:00:00+00:00")  # a start on the horizon opens
    assert len(starts) == 96
    assert all(is_aligned(start) for start in starts)
    assert all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(starts))
    # One microsecond less and the start on the horizon is not open yet.
    assert timing.open_interval_starts(now - MICROSECOND)[-1] == at("2026-11-24T07:45:00+00:00")
    assert timing.open_interval_starts(now, limit=4) == starts[:4]


@pytest.mark.parametrize(
    ("now", "wall_shift", "starts_at_local_2am"),
    [
        ("2026-03-28T23:00:00+00:00", dt.timedelta(hours=1), 0),  # 29 March: 02:00 CET jumps to 03:00 CEST
        ("2026-10-24T22:00:00+00:00", dt.timedelta(hours=-1), 8),  # 25 October: 03:00 CEST falls back to 02:00 CET
    ],
)
def test_across_a_dst_change_the_grid_stays_regular_in_utc(
    now: str, wall_shift: dt.timedelta, starts_at_local_2am: int
):
    zone = coop_zone()
    starts = timing.open_interval_starts(at(now))
    assert len(starts) == 96  # 24 h of quarter hours: the horizon is in UTC, not local hours
    assert all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(starts))
    assert all(timing.interval_times(s).gate_closure == s - dt.timedelta(minutes=5) for s in starts)
    # The local clock jumps: an hour of local starts is missing in spring and twice in autumn.
    local = [s.astimezone(zone).replace(tzinfo=None) for s in starts]
    assert (local[-1] - local[0]) - (starts[-1] - starts[0]) == wall_shift
    assert sum(t.hour == 2 for t in local) == starts_at_local_2am


def test_timing_reads_the_settings_when_called(settings):
    settings.MARKET_INTERVAL_MINUTES = 30
    settings.MARKET_GATE_CLOSURE_MINUTES = 10
    settings.MARKET_OPEN_HOURS = 2
    now = at("2026-11-23T08:20:00+00:00")  # 08:30's gate closes at 08:20
    times = timing.interval_times(at("2026-11-23T09:00:00+00:00"))
    assert (times.end, times.gate_closure) == (at("2026-11-23T09:30:00+00:00"), at("2026-11-23T08:50:00+00:00"))
    assert timing.open_interval_starts(now) == [
        at("2026-11-23T09:00:00+00:00"),
        at("2026-11-23T09:30:00+00:00"),
        at("2026-11-23T10:00:00+00:00"),
    ]
