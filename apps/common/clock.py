"""The one business clock.

Market, readings, clearing, settlement and beat tasks ask :func:`now`, never
``timezone.now()``. ``ENERGYCOOP_CLOCK`` shifts it: the clock reads that instant at the real
moment ``ENERGYCOOP_CLOCK_ANCHOR`` (default: when this process started) and runs forward in
real time from there. Authentication keeps real time (``django.utils.timezone.now``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

_PROCESS_START = timezone.now()


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 instant in UTC (``Z`` or ``+00:00``); any explicit offset is converted."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; write UTC with a trailing Z.")
    return parsed.astimezone(dt.UTC)


def format_instant(value: dt.datetime) -> str:
    """The contract's spelling of an instant: UTC with a trailing ``Z``."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=8)
def _offset(clock: str | None, anchor: str | None) -> dt.timedelta:
    if not clock:
        return dt.timedelta(0)
    anchor_at = parse_instant(anchor) if anchor else _PROCESS_START
    return parse_instant(clock) - anchor_at


def now() -> dt.datetime:
    """The business time, aware, in UTC."""
    offset = _offset(settings.ENERGYCOOP_CLOCK, settings.ENERGYCOOP_CLOCK_ANCHOR)
    return timezone.now().astimezone(dt.UTC) + offset


def today_start_utc() -> dt.datetime:
    """Midnight UTC of the business clock's current day."""
    return now().replace(hour=0, minute=0, second=0, microsecond=0)
