"""Recomputing touched rollup buckets from interval energy (called by ``rollups_refresh``).

Hour buckets are UTC hours; day buckets are the coop's local days (``TIME_ZONE``), stored as
their UTC start. Member and feeder buckets sum main meters only.

Two implementations of one interface (:class:`~apps.meters.rollups.base.RollupRecompute`): on
PostgreSQL by deltas in a few set-based statements (:mod:`.postgres`), elsewhere by summing
each touched bucket again in portable ORM queries (:mod:`.portable`). :func:`get` picks one per
database vendor, once.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from apps.meters.rollups.base import HOUR, RollupRecompute, Totals, day_end, day_start, spans_merge
from apps.meters.rollups.portable import PortableRollups
from apps.meters.rollups.postgres import PostgresRollups

__all__ = [
    "HOUR",
    "PortableRollups",
    "PostgresRollups",
    "RollupRecompute",
    "Totals",
    "buckets_recompute",
    "day_end",
    "day_start",
    "get",
    "spans_merge",
]

IMPLEMENTATIONS: dict[str, type[RollupRecompute]] = {"postgresql": PostgresRollups}
_chosen: dict[str, RollupRecompute] = {}


def get() -> RollupRecompute:
    """The recompute for the default database: PostgreSQL's own, else the portable one (per
    vendor, built once)."""
    vendor = connection.vendor
    recompute = _chosen.get(vendor)
    if recompute is None:
        recompute = _chosen[vendor] = IMPLEMENTATIONS.get(vendor, PortableRollups)()
    return recompute


def buckets_recompute(*, spans: Sequence[tuple[int, int, int]]) -> None:
    """Recompute every bucket that intervals of meter m in [lo, hi) fall in, for each span."""
    get().buckets_recompute(spans=spans)
