"""The demo's market replay: past intervals run through the market as they would have run live."""

from __future__ import annotations

import datetime as dt

from apps.common.intervals import floor_to_interval, interval_length
from apps.market.selectors import cleared_interval_starts
from apps.market.services import auto_orders_run, interval_clear
from apps.market.timing import interval_times


def market_history_replay(*, start: dt.datetime, end: dt.datetime) -> int:
    """Run the market over past intervals in [start, end) as it would have run live: automated
    orders placed just before each gate closure, then the clearing. For demo communities with
    backfilled meter history, so that newcomers see past prices at once. Intervals already
    cleared are skipped; returns how many were cleared."""
    step = interval_length()
    cleared = 0
    at = floor_to_interval(start)
    done = cleared_interval_starts(start=at, end=end)
    while at < end:
        if at not in done:
            gate = interval_times(at).gate_closure
            # The past is not news: nothing is published to live sockets.
            auto_orders_run(now=gate - dt.timedelta(seconds=1), intervals=1, publish=False)
            interval_clear(start=at, now=at, publish=False)
            cleared += 1
        at += step
    return cleared
