"""Interval arithmetic: length, alignment to the hour, gate closure, the opening horizon."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class IntervalTimes:
    start: dt.datetime
    end: dt.datetime
    gate_closure: dt.datetime


def interval_length() -> dt.timedelta:
    return dt.timedelta(minutes=settings.MARKET_INTERVAL_MINUTES)


def is_aligned(start: dt.datetime) -> bool:
    """On the interval grid, aligned to the hour (UTC)."""
    minutes = settings.MARKET_INTERVAL_MINUTES
    return start.second == 0 and start.microsecond == 0 and (start.minute % minutes == 0) and 60 % minutes == 0


def interval_times(start: dt.datetime) -> IntervalTimes:
    return IntervalTimes(
        start=start,
        end=start + interval_length(),
        gate_closure=start - dt.timedelta(minutes=settings.MARKET_GATE_CLOSURE_MINUTES),
    )


def floor_to_interval(at: dt.datetime) -> dt.datetime:
    minutes = settings.MARKET_INTERVAL_MINUTES
    at = at.astimezone(dt.UTC)
    return at.replace(minute=at.minute - at.minute % minutes, second=0, microsecond=0)


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
