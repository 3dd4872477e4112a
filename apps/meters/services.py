"""Writes for meters: registration, device keys, swaps, reading ingest and rollups."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.common import clock, intervals
from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.keys import key_hash, key_new
from apps.grid.models import ConnectionPoint
from apps.members.models import Member
from apps.meters import ingest, locks, rollups, store
from apps.meters.choices import MeterRole
from apps.meters.models import Meter

DEVICE_KEY_PREFIX = "ecm"


def meter_register(
    *,
    member: Member,
    serial: str,
    connection_point: ConnectionPoint,
    installed_at: dt.datetime,
    role: str = MeterRole.MAIN,
    parent: Meter | None = None,
    bidirectional: bool = True,
) -> tuple[Meter, str]:
    """Register a meter and give it its first device key (returned once, stored hashed)."""
    serial = serial.strip()
    if not serial:
        raise ValidationFailed("A meter needs a serial.", fields={"serial": ["This field is required."]})
    if role not in MeterRole.values:
        raise ValidationFailed(f"Unknown meter role {role!r}.", fields={"role": [f"One of {MeterRole.values}."]})
    if role == MeterRole.SUB:
        if parent is None or parent.role != MeterRole.MAIN:
            raise ValidationFailed("A sub-meter sits behind a main meter.", fields={"parent": ["A main meter."]})
        if parent.member_id != member.pk or parent.connection_point_id != connection_point.pk:
            raise ValidationFailed(
                "A sub-meter belongs to its main meter's member and connection.", fields={"parent": ["Mismatch."]}
            )
    elif parent is not None:
        raise ValidationFailed("A main meter has no parent.", fields={"parent": ["Leave empty for a main meter."]})
    with transaction.atomic():
        if Meter.objects.filter(serial=serial).exists():
            raise Conflict(f"Meter {serial} is already registered.", code="meter_exists")
        if (
            role == MeterRole.MAIN
            and Meter.objects.filter(
                connection_point=connection_point, role=MeterRole.MAIN, removed_at__isnull=True
            ).exists()
        ):
            raise Conflict(
                f"Connection point {connection_point.code} already has a main meter.", code="main_meter_exists"
            )
        meter = Meter.objects.create(
            serial=serial,
            member=member,
            connection_point=connection_point,
            role=role,
            parent=parent,
            bidirectional=bidirectional,
            installed_at=installed_at,
        )
        key = _key_set(meter=meter)
    return meter, key


def _key_set(*, meter: Meter) -> str:
    key = key_new(DEVICE_KEY_PREFIX)
    meter.key_hash = key_hash(key)
    meter.key_prefix = key[:10]
    meter.key_rotated_at = timezone.now()
    meter.save(update_fields=["key_hash", "key_prefix", "key_rotated_at", "updated_at"])
    return key


def meter_key_rotate(*, meter: Meter) -> str:
    """A new device key for the meter; the previous key stops working at once."""
    with transaction.atomic():
        locked = locks.meter_lock(meter_id=meter.pk)
        return _key_set(meter=locked)


def meter_authenticate(*, key: str) -> Meter | None:
    """The meter whose device key this is, or None (swapped-out meters keep no key)."""
    return Meter.objects.filter(key_hash=key_hash(key)).select_related("member").first()


# --- readings -----------------------------------------------------------------------------

MAX_READINGS_PER_REQUEST = ingest.MAX_READINGS_PER_REQUEST
Rejection = ingest.Rejection
IngestResult = ingest.IngestResult
readings_envelope_check = ingest.envelope_check


def readings_ingest(*, readings: list, meter: Meter | None = None, now: dt.datetime | None = None) -> IngestResult:
    """Validate and store a request's readings; derive their interval energy; queue rollups.

    ``meter`` set: the per-meter endpoint (items need no serial); otherwise each item names
    its ``serial``. One transaction, with a row lock on every meter written: the accepted
    readings and the interval energy they imply are stored together or not at all, and two
    requests for one meter take turns. Refused items are answered with their code (and kept
    for operators) without refusing the request; a resend of a stored reading is a
    duplicate. Late readings are normal: they replace the estimates of the gap they fall in,
    and the changed intervals are recorded as corrections and signalled after commit
    (``signals.interval_energy_changed``). ``now`` defaults to the business clock.
    """
    if not isinstance(readings, list) or len(readings) > MAX_READINGS_PER_REQUEST:
        readings = readings_envelope_check({"readings": readings})
    with transaction.atomic():
        return ingest.run(
            readings=readings,
            meter_id=meter.pk if meter is not None else None,
            now=now or clock.now(),
            step=intervals.interval_seconds(),
            received_at=timezone.now(),
        )


def meter_swap(
    *,
    old_meter: Meter,
    new_serial: str,
    at: dt.datetime,
    old_final_import_wh: int,
    old_final_export_wh: int,
    new_initial_import_wh: int,
    new_initial_export_wh: int,
) -> tuple[Meter, str]:
    """Replace ``old_meter`` by a new meter at the interval boundary ``at``.

    The old meter's registers close with its final reading at ``at`` and it is removed (its
    device key stops working); the new meter, on the same connection with the same owner,
    role and parent, is installed at ``at`` and opens with its initial reading. Each meter's
    interval energy comes from its own registers, so the interval ending at ``at`` belongs to
    the old meter and the one starting at ``at`` to the new one: nothing is negative or
    counted twice. Sub-meters behind the old main meter move behind the new one. Returns the
    new meter and its device key (shown once).
    """
    step = intervals.interval_seconds()
    if at.tzinfo is None or intervals.to_epoch(at) % step or at.microsecond:
        raise ValidationFailed("A swap happens at an interval boundary (UTC).", fields={"at": ["Not on the grid."]})
    if at > clock.now():
        raise ValidationFailed("A swap cannot be recorded ahead of time.", fields={"at": ["In the future."]})
    for name, value in (
        ("old_final_import_wh", old_final_import_wh),
        ("old_final_export_wh", old_final_export_wh),
        ("new_initial_import_wh", new_initial_import_wh),
        ("new_initial_export_wh", new_initial_export_wh),
    ):
        if type(value) is not int or value < 0:
            raise ValidationFailed(f"{name} must be a non-negative integer (Wh).", fields={name: ["Integer Wh >= 0."]})
    with transaction.atomic():
        old = locks.meter_lock_for_swap(meter_id=old_meter.pk)
        if old.removed_at is not None:
            raise Conflict(f"Meter {old.serial} was already removed.", code="meter_removed")
        if at <= old.installed_at:
            raise ValidationFailed("The swap must follow the old meter's installation.", fields={"at": ["Too early."]})
        if intervals.to_epoch(at) < (store.readings_latest(meter_ids=[old.pk])[old.pk][0] or (0,))[0]:
            raise Conflict(f"Meter {old.serial} has readings after {at:%Y-%m-%d %H:%M}Z.", code="readings_after_swap")
        result = readings_ingest(
            readings=[
                {"ts": clock.format_instant(at), "import_wh": old_final_import_wh, "export_wh": old_final_export_wh}
            ],
            meter=old,
            now=at,
        )
        if result.rejected:
            raise Conflict(
                f"The old meter's final reading is refused: {result.rejected[0].message}", code="final_reading"
            )
        old.removed_at = at
        old.key_hash = None
        old.save(update_fields=["removed_at", "key_hash", "updated_at"])
        new, key = meter_register(
            member=old.member,
            serial=new_serial,
            connection_point=old.connection_point,
            installed_at=at,
            role=old.role,
            parent=old.parent,
            bidirectional=old.bidirectional,
        )
        if old.role == MeterRole.MAIN:
            Meter.objects.filter(parent=old, removed_at__isnull=True).update(parent=new)
        result = readings_ingest(
            readings=[
                {"ts": clock.format_instant(at), "import_wh": new_initial_import_wh, "export_wh": new_initial_export_wh}
            ],
            meter=new,
            now=at,
        )
        if result.rejected:
            raise ValidationFailed(
                f"The new meter's initial reading is refused: {result.rejected[0].message}",
                fields={"new_initial_import_wh": [result.rejected[0].message]},
            )
    return new, key


# --- estimates for meters that went quiet -------------------------------------------------

# How long after an interval ends its meter may stay silent before the interval is estimated
# (settlement's default cutoff is one hour), and how far back a silent meter is filled.
QUIET_ESTIMATE_AFTER = dt.timedelta(hours=1)
QUIET_ESTIMATE_HORIZON = dt.timedelta(days=7)


def interval_energy_estimate_quiet(*, now: dt.datetime | None = None, meter_ids: list[int] | None = None) -> int:
    """Estimate the intervals after each quiet meter's latest reading, up to an hour ago.

    For settlement at its cutoff: a main or sub-meter in service whose latest reading is older
    than ``QUIET_ESTIMATE_AFTER`` gets estimated intervals from that reading up to
    ``now - QUIET_ESTIMATE_AFTER`` (at most ``QUIET_ESTIMATE_HORIZON`` back): each interval the
    same meter's energy one week earlier, else its mean over the day before its latest
    reading, else zero; all flagged ``estimated``. When the readings arrive, the segment they
    close is recomputed from the registers, replacing these estimates, and the changes are
    recorded as corrections and signalled. Idempotent: only intervals without a value are
    filled; meters are locked as the ingest locks them. Returns the intervals estimated.
    """
    step = intervals.interval_seconds()
    now = now or clock.now()
    until = intervals.to_epoch(now - QUIET_ESTIMATE_AFTER) // step * step
    horizon = until - int(QUIET_ESTIMATE_HORIZON.total_seconds())
    queryset = Meter.objects.filter(installed_at__lte=now).exclude(removed_at__lte=now)
    if meter_ids is not None:
        queryset = queryset.filter(pk__in=meter_ids)
    with transaction.atomic():
        infos = store.meters_lock(ids=list(queryset.values_list("pk", flat=True)))
        latest = store.readings_latest(meter_ids=[i.id for i in infos])
        spans: dict[int, tuple[int, int]] = {}
        for info in infos:
            last, last_interval = latest[info.id]
            if last is None:
                continue
            start = max(last[0], horizon, last_interval + step if last_interval is not None else 0)
            if start < until:
                spans[info.id] = (start, until)
        if not spans:
            return 0
        week = 7 * 86400
        history = store.intervals_in(ranges=[(m, lo - week, hi - week) for m, (lo, hi) in spans.items()])
        day_before = store.intervals_in(
            ranges=[(m, latest[m][0][0] - 86400, latest[m][0][0]) for m in spans]  # type: ignore[index]
        )
        means: dict[int, tuple[int, int]] = {}
        for (mid, _start), (imp, exp, _est) in day_before.items():
            acc = means.get(mid, (0, 0))
            means[mid] = (acc[0] + imp, acc[1] + exp)
        counts: dict[int, int] = {}
        for mid, _start in day_before:
            counts[mid] = counts.get(mid, 0) + 1
        rows: list[tuple[int, int, int, int, bool]] = []
        for mid, (lo, hi) in spans.items():
            fallback = (means[mid][0] // counts[mid], means[mid][1] // counts[mid]) if mid in counts else (0, 0)
            for start in range(lo, hi, step):
                known = history.get((mid, start - week))
                imp, exp = (known[0], known[1]) if known else fallback
                rows.append((mid, start, imp, exp, True))
        columns = tuple(zip(*rows, strict=True))
        store.intervals_write(
            inserts=tuple(np.array(c, dtype=bool if k == 4 else np.int64) for k, c in enumerate(columns)), updates=[]
        )
        store.backlog_insert(rows=[(m, lo, hi) for m, (lo, hi) in sorted(spans.items())], at=timezone.now())
    return len(rows)


# --- rollups ------------------------------------------------------------------------------


def rollups_refresh(*, limit: int = 5_000) -> int:
    """Bring the rollups of what the oldest ``limit`` backlog entries touched up to date.

    Only the touched buckets change: each touched meter hour is recomputed from its interval
    energy, and (on PostgreSQL) its change is added to the meter's day and to its member's
    and feeder's hour and day; the portable path recomputes those buckets from their parts.
    The entries are deleted in the same transaction. Idempotent and safe to run twice at
    once: drains take turns (an advisory lock on PostgreSQL, the single writer on SQLite).
    Returns how many entries it drained.
    """
    with transaction.atomic():
        locks.rollup_drain_lock()
        batch = store.backlog_take(limit=limit)
        if not batch:
            return 0
        rollups.buckets_recompute(spans=[(mid, lo, hi) for _pk, mid, lo, hi in batch])
        store.backlog_delete(ids=[row[0] for row in batch])
    return len(batch)


def rollups_drain(*, limit: int = 5_000) -> int:
    """Run :func:`rollups_refresh` until the backlog is empty; returns the entries drained."""
    total = 0
    while drained := rollups_refresh(limit=limit):
        total += drained
    return total
