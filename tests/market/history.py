"""Metered history for market tests, stored through the real readings ingest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apps.common.clock import format_instant
from apps.meters.services import readings_ingest


def history_ingest(
    meter, *, start: dt.datetime, end: dt.datetime, net_wh: Callable[[dt.datetime], int], now: dt.datetime
) -> None:
    """Cumulative registers every 15 minutes from ``start`` to ``end`` (inclusive) such that
    each interval's net import is ``net_wh(interval_start)`` (negative: export)."""
    imp = exp = 0
    at = start
    readings = [{"ts": format_instant(at), "import_wh": imp, "export_wh": exp}]
    while at < end:
        net = net_wh(at)
        if net >= 0:
            imp += net
        else:
            exp += -net
        at += dt.timedelta(minutes=15)
        readings.append({"ts": format_instant(at), "import_wh": imp, "export_wh": exp})
    result = readings_ingest(readings=readings, meter=meter, now=now)
    assert not result.rejected, result.rejected[:3]
