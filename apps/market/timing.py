"""Market timing on the interval grid: gate closure and the opening horizon.

The grid itself (length, alignment, flooring) is ``apps.common.intervals``; this module only
adds what the market decides about it: when an interval stops taking orders and how far
ahead the market opens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from apps.common.intervals import floor_to_interval, interval_length


@dataclass(frozen=True)
class IntervalTimes:
    start: dt.datetime
    end: dt.datetime
    gate_closure: dt.datetime


def interval_times(start: dt.datetime) -> IntervalTimes:
    return IntervalTimes(
        start=start,
        end=start + interval_length(),
        gate_closure=start - dt.timedelta(minutes=settings.MARKET_GATE_CLOSURE_MINUTES),
    )


def horizon_end(now: dt.datetime) -> dt.datetime:
    """The last interval start that takes orders now (the market opens this far ahead)."""
    return now + dt.timedelta(hours=settings.MARKET_OPEN_HOURS)


def gate_is_closed(start: dt.datetime, now: dt.datetime) -> bool:
    return now >= interval_times(start).gate_closure


def open_interval_starts(now: dt.datetime, *, limit: int | None = None) -> list[dt.datetime]:
    """Starts whose gate is still open, from the next one to the horizon."""
    step = interval_length()
    start = floor_to_interval(now) + step
    while gate_is_closed(start, now):
        start += step
    last = horizon_end(now)
    starts: list[dt.datetime] = []
    while start <= last and (limit is None or len(starts) < limit):
        starts.append(start)
        start += step
    return starts
