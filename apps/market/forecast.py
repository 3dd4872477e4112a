"""Forecast a member's net energy per interval from its own history (pure, no Django).

Method ("like-day slot mean"): for an interval starting at T, take the same 15-minute slot
(same UTC time of day) on the most recent ``LIKE_DAYS`` like days before T's day — weekdays
for a weekday, weekend days for a weekend day, in the coop's time zone — and average the
member's net import (import − export, Wh) over the days that have data. Positive is a
deficit to buy, negative a surplus to sell. A new member with fewer than ``MIN_DAYS`` like
days of data is forecast from the same slot on the most recent days of any kind instead;
fewer than ``MIN_DAYS`` of those either: no forecast, no order. Household load and PV
output repeat strongly by time of day, and this is the baseline demand-response programmes
use too; it needs no training and no weather feed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

LIKE_DAYS = 4
MIN_DAYS = 2
LOOKBACK_DAYS = 21


def _is_weekend(day: dt.date) -> bool:
    return day.isoweekday() >= 6


def like_day_starts(target: dt.datetime, tz: ZoneInfo, *, like_days: int = LIKE_DAYS) -> list[dt.datetime]:
    """The same slot on the most recent like days before ``target`` (UTC instants)."""
    weekend = _is_weekend(target.astimezone(tz).date())
    starts: list[dt.datetime] = []
    for back in range(1, LOOKBACK_DAYS + 1):
        candidate = target - dt.timedelta(days=back)
        if _is_weekend(candidate.astimezone(tz).date()) == weekend:
            starts.append(candidate)
            if len(starts) == like_days:
                break
    return starts


def net_forecast_wh(target: dt.datetime, history_net_wh: Mapping[dt.datetime, int], tz: ZoneInfo) -> int | None:
    """The forecast net import (Wh, integer) for ``target``, or None without enough history."""
    values = [history_net_wh[start] for start in like_day_starts(target, tz) if start in history_net_wh]
    if len(values) < MIN_DAYS:
        recent = (target - dt.timedelta(days=back) for back in range(1, LIKE_DAYS + 1))
        values = [history_net_wh[start] for start in recent if start in history_net_wh]
    if len(values) < MIN_DAYS:
        return None
    total = sum(values)
    # Integer mean, rounded half away from zero so that a symmetric history gives 0.
    quotient, remainder = divmod(abs(total), len(values))
    if 2 * remainder >= len(values):
        quotient += 1
    return quotient if total >= 0 else -quotient
