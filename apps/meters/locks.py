"""Row and advisory locks of the meters app (built on ``apps.common.locks``).

The meter row comes after the member's in the order of ``docs/architecture.md``; the rollup
drain's advisory lock is taken alone. A meter is locked FOR UPDATE of the meter table only,
even when its connection point and member are loaded with it. The ingest's meter lock on
PostgreSQL is one raw statement (``PostgresReadingStore.meters_lock``: FOR NO KEY UPDATE OF
the meter rows, in id order); the portable store takes :func:`meters_for_update`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet

from apps.common.locks import advisory_xact, for_update, one_for_update
from apps.meters.models import Meter

# pg_advisory_xact_lock key of the rollup drain: one drain at a time, so that two never write
# the same bucket from different snapshots.
ROLLUP_LOCK_KEY = 0x6D657465  # "mete"


def meters_for_update(*, ids: Sequence[int] = (), serials: Sequence[str] = ()) -> QuerySet[Meter]:
    """The meters with these ids (else these serials), locked in id order once evaluated."""
    queryset = Meter.objects.filter(pk__in=ids) if ids else Meter.objects.filter(serial__in=serials)
    return for_update(queryset)


def meter_lock(*, meter_id: int) -> Meter:
    """The meter row, FOR UPDATE OF the meter table only (raises Meter.DoesNotExist)."""
    return _found(one_for_update(Meter.objects.all(), pk=meter_id), meter_id)


def meter_lock_for_swap(*, meter_id: int) -> Meter:
    """The meter row with its connection point and member loaded, FOR UPDATE OF the meter table
    only: neither of the joined rows is locked (raises Meter.DoesNotExist)."""
    queryset = Meter.objects.select_related("connection_point", "member")
    return _found(one_for_update(queryset, pk=meter_id), meter_id)


def rollup_drain_lock() -> None:
    """The rollup drain's turn, until the transaction ends (see :data:`ROLLUP_LOCK_KEY`)."""
    advisory_xact(ROLLUP_LOCK_KEY)


def _found(meter: Meter | None, meter_id: int) -> Meter:
    if meter is None:
        raise Meter.DoesNotExist(f"No meter {meter_id}.")
    return meter
