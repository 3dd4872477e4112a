"""The interval grid, in one place: its length, alignment, and the intervals of a local day
or month (the coop's ``TIME_ZONE``, so a DST day has 92 or 100 quarter hours, not 96).

Every app that needs "which 15 minutes is this" or "which instants make up the member's
Tuesday" asks here; none derives it again. Instants are aware and in UTC; local days and
months are dates in the coop's zone. Market-only timing (gate closure, the opening horizon)
stays in ``apps.market.timing`` and is built on this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def coop_zone() -> ZoneInfo:
    """The coop's time zone (``TIME_ZONE``): where days, months and the member's clock live."""
    return _zone(settings.TIME_ZONE)


def interval_minutes() -> int:
    return int(settings.MARKET_INTERVAL_MINUTES)


def interval_seconds() -> int:
    return interval_minutes() * 60


def interval_length() -> dt.timedelta:
    return dt.timedelta(minutes=interval_minutes())


def is_aligned(start: dt.datetime) -> bool:
    """On the interval grid, aligned to the hour (UTC)."""
    minutes = interval_minutes()
    return start.second == 0 and start.microsecond == 0 and (start.minute % minutes == 0) and 60 % minutes == 0


def floor_to_interval(at: dt.datetime) -> dt.datetime:
    """The start of the interval holding ``at`` (UTC)."""
    minutes = interval_minutes()
    at = at.astimezone(dt.UTC)
    return at.replace(minute=at.minute - at.minute % minutes, second=0, microsecond=0)


def interval_starts(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """The interval starts in ``[start, end)``, from the interval holding ``start``."""
    step = interval_length()
    at = floor_to_interval(start)
    end = end.astimezone(dt.UTC)
    while at < end:
        yield at
        at += step


def local_midnight(day: dt.date, zone: ZoneInfo | None = None) -> dt.datetime:
    """The UTC instant the local ``day`` begins."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone or coop_zone()).astimezone(dt.UTC)


def local_date(at: dt.datetime, zone: ZoneInfo | None = None) -> dt.date:
    """The coop's local date holding the instant ``at``."""
    return at.astimezone(zone or coop_zone()).date()


def local_day_bounds(day: dt.date, zone: ZoneInfo | None = None) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` in UTC of the local ``day``: 23, 24 or 25 hours long."""
    zone = zone or coop_zone()
    return local_midnight(day, zone), local_midnight(day + dt.timedelta(days=1), zone)


def local_days_bounds(first: dt.date, last: dt.date, zone: ZoneInfo | None = None) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` in UTC from the start of local ``first`` to the end of local ``last``."""
    zone = zone or coop_zone()
    return local_midnight(first, zone), local_midnight(last + dt.timedelta(days=1), zone)


def local_day_start(at: dt.datetime, zone: ZoneInfo | None = None) -> dt.datetime:
    """The UTC instant the local day holding ``at`` began."""
    zone = zone or coop_zone()
    return local_midnight(local_date(at, zone), zone)


def local_month_bounds(year: int, month: int, zone: ZoneInfo | None = None) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` in UTC of a local calendar month."""
    zone = zone or coop_zone()
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return local_midnight(dt.date(year, month, 1), zone), local_midnight(following, zone)


def local_day_intervals(day: dt.date, zone: ZoneInfo | None = None) -> list[dt.datetime]:
    """The interval starts of a local day: 96 quarter hours, 92 or 100 on the DST days."""
    return list(interval_starts(*local_day_bounds(day, zone)))


def local_month_intervals(year: int, month: int, zone: ZoneInfo | None = None) -> list[dt.datetime]:
    return list(interval_starts(*local_month_bounds(year, month, zone)))


def to_epoch(at: dt.datetime) -> int:
    """Whole UTC epoch seconds of an aware instant (the meter store's time axis)."""
    return int((at - EPOCH).total_seconds())


def from_epoch(ts: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=int(ts))
