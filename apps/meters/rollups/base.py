"""What both rollup recomputes share: the buckets (UTC hours, the coop's local days) and the
interface.

Hour buckets are UTC hours; day buckets are the coop's local days (``TIME_ZONE``, so 23 or 25
hours on the DST days), stored as their UTC start. Times are UTC epoch seconds.
"""

from __future__ import annotations

import abc
from collections import defaultdict
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from apps.common import intervals

HOUR = 3600
Totals = list[int]  # [import_wh, export_wh, intervals, estimated_intervals]


def day_start(ts: int, zone: ZoneInfo | None = None) -> int:
    """UTC epoch seconds of the start of the coop's local day holding ``ts``."""
    return intervals.to_epoch(intervals.local_day_start(intervals.from_epoch(ts), zone))


def day_end(ts: int, zone: ZoneInfo | None = None) -> int:
    """UTC epoch seconds of the end (the next local midnight) of the coop's local day holding ``ts``."""
    day = intervals.local_date(intervals.from_epoch(ts), zone)
    return intervals.to_epoch(intervals.local_day_bounds(day, zone)[1])


def spans_merge(spans: Iterable[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """Per meter, its ``[lo, hi)`` spans sorted, overlapping or touching ones joined."""
    by_meter: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for mid, lo, hi in sorted(spans):
        ranges = by_meter[mid]
        if ranges and lo <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], hi))
        else:
            ranges.append((lo, hi))
    return by_meter


class RollupRecompute(abc.ABC):
    """Brings the rollup buckets that spans of interval energy fall in up to date.

    The caller (``services.rollups_refresh``) holds the drain lock and deletes the backlog
    entries the spans came from in the same transaction. :func:`apps.meters.rollups.get`
    picks one implementation per database vendor, once.
    """

    @abc.abstractmethod
    def buckets_recompute(self, *, spans: Sequence[tuple[int, int, int]]) -> None:
        """Recompute every bucket that intervals of meter m in [lo, hi) fall in, for each span:
        the meter's hours and local days, and (main meters only) its member's and feeder's."""
