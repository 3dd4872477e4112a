"""The interface of the meter-data store, and what both implementations share.

Times are integer epoch seconds (UTC) in and out, as in :mod:`apps.meters.vee`; the time
axis itself is :mod:`apps.common.intervals` (``to_epoch``/``from_epoch``).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from apps.common import intervals
from apps.meters.models import IntervalCorrection

EPOCH = intervals.EPOCH
to_ts = intervals.to_epoch
# Portable queries OR together one condition per meter; SQLite limits expression depth.
ORM_CHUNK = 200

# Row shapes of the interface.
Latest = tuple[tuple[int, int, int] | None, int | None]  # (latest reading (ts, import, export), latest estimate)
IntervalValue = tuple[int, int, bool]  # (import_wh, export_wh, estimated)
IntervalRow = tuple[int, int, int, int, bool]  # (meter_id, start, import_wh, export_wh, estimated)
Correction = tuple[int, int, IntervalValue, IntervalValue]  # (meter_id, start, old, new)
RejectionRow = tuple[int | None, str, int | None, str, str]  # (meter_id, serial, ts, code, message)


class MeterInfo(NamedTuple):
    """A locked meter, as the checks need it (a tuple: built 10,000 at a time, cheaply)."""

    id: int
    serial: str
    installed_ts: int
    removed_ts: int | None
    bidirectional: bool
    capacity_w: int


class _Instants(dict):
    """epoch seconds -> aware datetime, built once per distinct instant."""

    def __missing__(self, ts: int) -> dt.datetime:
        value = intervals.from_epoch(ts)
        self[ts] = value
        return value


def instants() -> _Instants:
    return _Instants()


def chunks(items: Sequence, size: int = ORM_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rejection_rows_clean(rows: Sequence[RejectionRow]) -> list[RejectionRow]:
    """A serial as sent, with any NUL (which PostgreSQL text cannot hold) shown as U+FFFD."""
    return [(m, serial.replace("\x00", "\ufffd"), ts, code, message) for m, serial, ts, code, message in rows]


class ReadingStore(abc.ABC):
    """Set-based reads and writes of the meter-data tables for the ingest service.

    Every method covers a whole request, never one reading. Implementations hold no state:
    :func:`apps.meters.store.get` picks one per database vendor, once.
    """

    # --- meters ---------------------------------------------------------------------------

    @abc.abstractmethod
    def meters_lock(self, *, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> list[MeterInfo]:
        """Lock the meters (by id or serial) in id order for this transaction and describe them."""

    # --- reads ----------------------------------------------------------------------------

    @abc.abstractmethod
    def readings_latest(self, *, meter_ids: Sequence[int]) -> dict[int, Latest]:
        """Per meter: its latest stored reading ``(ts, import_wh, export_wh)`` and the start of its
        latest estimated interval (epoch seconds), each ``None`` when there is none.

        Estimated intervals are the only stored energy a new reading can fall into (measured
        intervals lie between adjacent readings), so they are all the ingest needs to know of."""

    @abc.abstractmethod
    def readings_around(self, *, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
        """For each ``(meter_id, ts)``: the stored reading at ts, the nearest before and the nearest
        after it, as ``(meter_id, ts, import_wh, export_wh)`` rows (without repeats), sorted.

        An implementation may return more of the meter's stored readings, never any outside the
        span from the nearest before its earliest asked instant to the nearest after its latest
        (the portable one returns that whole span: three queries, whatever the pairs)."""

    @abc.abstractmethod
    def intervals_in(self, *, ranges: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], IntervalValue]:
        """Stored interval energy of meter m with start in [lo, hi), for each ``(m, lo, hi)``."""

    # --- writes ---------------------------------------------------------------------------

    @abc.abstractmethod
    def readings_insert(self, *, columns: Sequence[np.ndarray], received_at: dt.datetime) -> None:
        """Store new readings, given as columns ``(meter_id, ts, import_wh, export_wh)``."""

    @abc.abstractmethod
    def intervals_write(self, *, inserts: Sequence[np.ndarray], updates: Sequence[IntervalRow]) -> None:
        """Store new interval energy (columns ``meter_id, start, import_wh, export_wh, estimated``)
        and replace changed rows (tuples in the same order)."""

    def corrections_insert(self, *, rows: Sequence[Correction], at: dt.datetime) -> None:
        """Record that stored intervals changed: ``(meter_id, start, old, new)``.

        The same on every database: corrections are few (late readings only), so the ORM's
        batched insert is as good as a COPY."""
        if not rows:
            return
        times = instants()
        IntervalCorrection.objects.bulk_create(
            [
                IntervalCorrection(
                    meter_id=m,
                    interval_start=times[s],
                    old_import_wh=old[0],
                    old_export_wh=old[1],
                    old_estimated=old[2],
                    new_import_wh=new[0],
                    new_export_wh=new[1],
                    new_estimated=new[2],
                    created_at=at,
                )
                for m, s, old, new in rows
            ],
            batch_size=1000,
        )

    @abc.abstractmethod
    def rejections_insert(self, *, rows: Sequence[RejectionRow], at: dt.datetime) -> None:
        """Record refused readings ``(meter_id, serial, ts, code, message)``; a serial as sent, cut
        to 64 characters, with any NUL (which PostgreSQL text cannot hold) shown as U+FFFD; a
        message cut to 255."""

    # --- the rollup backlog ---------------------------------------------------------------

    @abc.abstractmethod
    def backlog_insert(self, *, rows: Sequence[tuple[int, int, int]], at: dt.datetime) -> None:
        """Rollups of meter m are due for [lo, hi): ``(meter_id, lo, hi)``."""

    @abc.abstractmethod
    def backlog_take(self, *, limit: int) -> list[tuple[int, int, int, int]]:
        """The oldest ``limit`` rollup backlog entries ``(id, meter_id, start, end)``, times in epoch
        seconds (the caller holds the drain lock and deletes them with :meth:`backlog_delete`)."""

    @abc.abstractmethod
    def backlog_delete(self, *, ids: Sequence[int]) -> None:
        """Delete exactly these backlog entries (never by range: an entry with a lower id may commit
        after the batch was read, and must wait for the next drain)."""
