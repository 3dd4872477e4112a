"""Writes for meters: registration, device keys, swaps, reading ingest and rollups."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.common import clock
from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.keys import key_hash, key_new
from apps.grid.models import ConnectionPoint
from apps.members.models import Member
from apps.meters import store, vee
from apps.meters.choices import MeterRole, RejectionCode
from apps.meters.models import Meter
from apps.meters.signals import interval_energy_changed

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
        locked = Meter.objects.select_for_update().get(pk=meter.pk)
        return _key_set(meter=locked)


def meter_authenticate(*, key: str) -> Meter | None:
    """The meter whose device key this is, or None (swapped-out meters keep no key)."""
    return Meter.objects.filter(key_hash=key_hash(key)).select_related("member").first()


# --- readings -----------------------------------------------------------------------------

MAX_READINGS_PER_REQUEST = 10_000
# Registers are stored as 64-bit integers; anything near that is a corrupt value, not energy.
MAX_REGISTER_WH = 2**53


def interval_seconds() -> int:
    return settings.MARKET_INTERVAL_MINUTES * 60


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass(frozen=True)
class IngestResult:
    """The contract's answer: accepted and duplicate counts, and each refused item."""

    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)
    corrected_intervals: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in self.rejected],
        }


def readings_envelope_check(body: object) -> list:
    """The ``readings`` list of a request body, or a 400 that stores nothing."""
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise ValidationFailed(
            'The body must be a JSON object with a "readings" list.', fields={"readings": ["A list of readings."]}
        )
    readings = body["readings"]
    if len(readings) > MAX_READINGS_PER_REQUEST:
        raise ValidationFailed(
            f"At most {MAX_READINGS_PER_REQUEST} readings per request; this one has {len(readings)}.",
            fields={"readings": [f"At most {MAX_READINGS_PER_REQUEST} items."]},
        )
    return readings


class _Refused(Exception):
    def __init__(self, code: str, message: str, ts: int | None = None):
        self.code, self.message, self.ts = code, message, ts


def _register(item: dict, name: str) -> int:
    value = item.get(name)
    if type(value) is not int or value < 0 or value > MAX_REGISTER_WH:
        raise _Refused(RejectionCode.INVALID, f"{name} must be a non-negative integer (Wh), got {value!r}.")
    return value


def _instant(raw: object, cache: dict[str, tuple[int, bool]]) -> tuple[int, bool]:
    """(epoch seconds, whole second?) of an ISO 8601 UTC string, parsed once per distinct string."""
    if not isinstance(raw, str):
        raise _Refused(RejectionCode.INVALID, "ts is required: an ISO 8601 UTC instant such as 2026-11-26T10:15:00Z.")
    known = cache.get(raw)
    if known is None:
        try:
            parsed = clock.parse_instant(raw)
        except ValueError:
            raise _Refused(RejectionCode.INVALID, f"ts {raw[:40]!r} is not an ISO 8601 UTC instant.") from None
        known = (store.to_ts(parsed.replace(microsecond=0)), parsed.microsecond == 0)
        cache[raw] = known
    return known


def _item_check(
    item: object,
    *,
    fixed: store.MeterInfo | None,
    by_serial: dict[str, store.MeterInfo],
    cache: dict[str, tuple[int, bool]],
    step: int,
    now_ts: int,
) -> tuple[store.MeterInfo, int, int, int]:
    """One item's checks that need no stored readings; raises :class:`_Refused`."""
    if not isinstance(item, dict):
        raise _Refused(RejectionCode.INVALID, "Each reading is an object with ts, import_wh and export_wh.")
    if fixed is not None:
        info = fixed
        if "serial" in item and item["serial"] != info.serial:
            raise _Refused(RejectionCode.INVALID, f"This endpoint takes readings of meter {info.serial} only.")
    else:
        serial = item.get("serial")
        if not isinstance(serial, str) or not serial:
            raise _Refused(RejectionCode.INVALID, "serial is required for each reading of a bulk request.")
        found = by_serial.get(serial)
        if found is None:
            raise _Refused(RejectionCode.INVALID, f"No meter with serial {serial[:64]!r}.")
        info = found
    ts, whole = _instant(item.get("ts"), cache)
    import_wh = _register(item, "import_wh")
    if info.bidirectional:
        export_wh = _register(item, "export_wh")
    else:
        export_wh = 0 if item.get("export_wh") is None else _register(item, "export_wh")
        if export_wh:
            raise _Refused(RejectionCode.INVALID, f"Meter {info.serial} has no export register: export_wh is 0.")
    if not whole or ts % step:
        raise _Refused(
            RejectionCode.NOT_ON_BOUNDARY,
            f"ts must fall on the {step // 60}-minute interval grid aligned to the hour.",
            ts,
        )
    if ts > now_ts:
        raise _Refused(RejectionCode.FUTURE, "ts lies in the future.", ts)
    if ts < info.installed_ts:
        raise _Refused(RejectionCode.BEFORE_INSTALLATION, f"Meter {info.serial} was installed after ts.", ts)
    if info.removed_ts is not None and ts > info.removed_ts:
        raise _Refused(RejectionCode.INVALID, f"Meter {info.serial} was removed before ts.", ts)
    return info, ts, import_wh, export_wh


def readings_ingest(*, readings: list, meter: Meter | None = None, now: dt.datetime | None = None) -> IngestResult:
    """Validate and store a request's readings; derive interval energy; queue rollups.

    ``meter`` set: the per-meter endpoint (items carry no serial); otherwise each item names
    its ``serial``. One transaction: every accepted reading and the interval energy it
    implies are stored together or not at all. Refused items are answered (and recorded for
    operators) without refusing the request; a resend of a stored reading is a duplicate.
    Late readings are normal: they replace the estimates of the gap they fall into, and the
    changed intervals are recorded as corrections and signalled after commit.
    """
    if not isinstance(readings, list) or len(readings) > MAX_READINGS_PER_REQUEST:
        readings = readings_envelope_check({"readings": readings})
    step = interval_seconds()
    now_ts = store.to_ts((now or clock.now()).replace(microsecond=0))
    received_at = timezone.now()
    rejected: list[Rejection] = []
    rejection_rows: list[tuple[int | None, str, int | None, str, str]] = []
    duplicates = 0

    def refuse(index: int, code: str, message: str, info: store.MeterInfo | None, serial: str, ts: int | None) -> None:
        rejected.append(Rejection(index, code, message))
        rejection_rows.append((info.id if info else None, serial, ts, code, message))

    with transaction.atomic():
        if meter is not None:
            infos = store.meters_lock(ids=[meter.pk])
            fixed: store.MeterInfo | None = infos[0]
            by_serial = {}
        else:
            fixed = None
            serials = {i["serial"] for i in readings if isinstance(i, dict) and isinstance(i.get("serial"), str)}
            infos = store.meters_lock(serials=sorted(serials))
            by_serial = {info.serial: info for info in infos}
        by_id = {info.id: info for info in infos}
        cache: dict[str, tuple[int, bool]] = {}
        candidates: dict[int, list[vee.Candidate]] = defaultdict(list)
        first_seen: dict[tuple[int, int], vee.Candidate] = {}
        for index, item in enumerate(readings):
            try:
                info, ts, import_wh, export_wh = _item_check(
                    item, fixed=fixed, by_serial=by_serial, cache=cache, step=step, now_ts=now_ts
                )
            except _Refused as refusal:
                serial = fixed.serial if fixed else str(item.get("serial", "") if isinstance(item, dict) else "")
                owner = fixed or by_serial.get(serial)
                refuse(index, refusal.code, refusal.message, owner, serial, refusal.ts)
                continue
            candidate = vee.Candidate(index, ts, import_wh, export_wh)
            earlier = first_seen.get((info.id, ts))
            if earlier is None:
                first_seen[(info.id, ts)] = candidate
                candidates[info.id].append(candidate)
            elif (earlier.import_wh, earlier.export_wh) == (import_wh, export_wh):
                duplicates += 1
            else:
                refuse(
                    index,
                    RejectionCode.CONFLICT,
                    f"Differs from item {earlier.index} of this request for the same meter and ts.",
                    info,
                    info.serial,
                    ts,
                )
        accepted, dup, corrected = _readings_store(
            candidates=candidates, by_id=by_id, step=step, received_at=received_at, refuse=refuse
        )
        duplicates += dup
        store.rejections_insert(rows=rejection_rows, at=received_at)
    rejected.sort(key=lambda r: r.index)
    return IngestResult(accepted=accepted, duplicates=duplicates, rejected=rejected, corrected_intervals=corrected)


def _readings_store(*, candidates, by_id, step, received_at, refuse) -> tuple[int, int, int]:
    """Classify the candidates against what is stored, store the accepted readings and their
    interval energy, record corrections and queue rollups. Returns (accepted, duplicates, corrected)."""
    if not candidates:
        return 0, 0, 0
    meter_ids = sorted(candidates)
    latest = store.readings_latest(meter_ids=meter_ids)
    late_pairs = []
    for mid in meter_ids:
        last = latest[mid][0]
        if last is not None:
            late_pairs.extend((mid, c.ts) for c in candidates[mid] if c.ts <= last[0])
    around: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for mid, ts, imp, exp in store.readings_around(pairs=late_pairs):
        around[mid].append((ts, imp, exp))
    accepted_rows: list[tuple[int, int, int, int]] = []
    segments: list[vee.Segment] = []
    duplicates = 0
    for mid in meter_ids:
        info = by_id[mid]
        last = latest[mid][0]
        series = vee.MeterSeries.of([*around.get(mid, ()), *([last] if last else [])])
        verdicts = vee.readings_classify(
            candidates=candidates[mid],
            stored=series,
            step_seconds=step,
            max_wh_per_interval=info.capacity_w * step // 3600,
        )
        accepted_ts = []
        by_index = {c.index: c for c in candidates[mid]}
        for verdict in verdicts:
            c = by_index[verdict.index]
            if verdict.code == "accepted":
                accepted_rows.append((mid, c.ts, c.import_wh, c.export_wh))
                accepted_ts.append(c.ts)
            elif verdict.code == "duplicate":
                duplicates += 1
            else:
                refuse(verdict.index, verdict.code, verdict.message, info, info.serial, c.ts)
        segments.extend(vee.segments_touched(meter_id=mid, accepted=accepted_ts, series=series))
    store.readings_insert(rows=accepted_rows, received_at=received_at)
    corrected = _intervals_derive(segments=segments, latest=latest, step=step, at=received_at)
    return len(accepted_rows), duplicates, corrected


def _intervals_derive(*, segments: list[vee.Segment], latest: dict, step: int, at: dt.datetime) -> int:
    """Interval energy of the touched segments: insert what is new, replace what changed."""
    if not segments:
        return 0
    week = vee.LIKE_DAY_OFFSET_SECONDS
    long_gaps = [s for s in segments if vee.is_long_gap(s)]
    history = store.intervals_in(ranges=[(s.meter_id, s.a_ts - week, s.b_ts - week) for s in long_gaps])
    # Only spans that start before a meter's latest stored interval can hold stored rows.
    overlapping = [
        (s.meter_id, s.a_ts, s.b_ts)
        for s in segments
        if latest[s.meter_id][1] is not None and s.a_ts <= latest[s.meter_id][1]
    ]
    stored = store.intervals_in(ranges=overlapping)
    inserts: list[tuple[int, int, int, int, bool]] = []
    updates: list[tuple[int, int, int, int, bool]] = []
    corrections = []
    spans: dict[int, tuple[int, int]] = {}
    for segment in segments:
        import_history = export_history = None
        if vee.is_long_gap(segment):
            starts = range(segment.a_ts - week, segment.b_ts - week, step)
            known = [history.get((segment.meter_id, s)) for s in starts]
            import_history = [k[0] if k else None for k in known]
            export_history = [k[1] if k else None for k in known]
        changed = False
        for start, imp, exp, estimated in vee.segment_intervals(
            segment, step_seconds=step, import_history=import_history, export_history=export_history
        ):
            old = stored.get((segment.meter_id, start))
            row = (segment.meter_id, start, imp, exp, estimated)
            if old is None:
                inserts.append(row)
            elif old != (imp, exp, estimated):
                updates.append(row)
                corrections.append((segment.meter_id, start, old, (imp, exp, estimated)))
            else:
                continue
            changed = True
        if changed:
            lo, hi = spans.get(segment.meter_id, (segment.a_ts, segment.b_ts))
            spans[segment.meter_id] = (min(lo, segment.a_ts), max(hi, segment.b_ts))
    store.intervals_write(inserts=inserts, updates=updates)
    store.corrections_insert(rows=corrections, at=at)
    store.backlog_insert(rows=[(mid, lo, hi) for mid, (lo, hi) in sorted(spans.items())], at=at)
    if corrections:
        times = store.instants()
        meter_ids = [c[0] for c in corrections]
        interval_starts = [times[c[1]] for c in corrections]
        transaction.on_commit(
            lambda: interval_energy_changed.send(
                sender=Meter, meter_ids=meter_ids, interval_starts=interval_starts
            )
        )
    return len(corrections)


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
    step = interval_seconds()
    if at.tzinfo is None or store.to_ts(at) % step or at.microsecond:
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
        old = Meter.objects.select_for_update().select_related("connection_point", "member").get(pk=old_meter.pk)
        if old.removed_at is not None:
            raise Conflict(f"Meter {old.serial} was already removed.", code="meter_removed")
        if at <= old.installed_at:
            raise ValidationFailed("The swap must follow the old meter's installation.", fields={"at": ["Too early."]})
        if store.to_ts(at) < (store.readings_latest(meter_ids=[old.pk])[old.pk][0] or (0,))[0]:
            raise Conflict(f"Meter {old.serial} has readings after {at:%Y-%m-%d %H:%M}Z.", code="readings_after_swap")
        result = readings_ingest(
            readings=[{"ts": clock.format_instant(at), "import_wh": old_final_import_wh, "export_wh": old_final_export_wh}],
            meter=old,
            now=at,
        )
        if result.rejected:
            raise Conflict(f"The old meter's final reading is refused: {result.rejected[0].message}", code="final_reading")
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


# --- rollups ------------------------------------------------------------------------------

# pg_advisory_xact_lock key of the rollup drain: one drain at a time, so that two never write
# the same bucket from different snapshots.
ROLLUP_LOCK_KEY = 0x6D657465  # "mete"


def rollups_refresh(*, limit: int = 5_000) -> int:
    """Bring the rollups of what the oldest ``limit`` backlog entries touched up to date.

    Recomputes only the touched buckets (meter hours and days, and the member and feeder
    buckets those meters feed) from interval energy, then deletes the entries, in one
    transaction. Idempotent and safe to run twice at once: drains take turns (an advisory
    lock on PostgreSQL, the single writer on SQLite). Returns how many entries it drained.
    """
    from apps.meters import rollups

    with transaction.atomic():
        if store.is_postgres():
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
        from apps.meters.models import RollupBacklog

        batch = list(RollupBacklog.objects.order_by("pk").values_list("pk", "meter_id", "start", "end")[:limit])
        if not batch:
            return 0
        rollups.buckets_recompute(spans=[(mid, store.to_ts(lo), store.to_ts(hi)) for _pk, mid, lo, hi in batch])
        RollupBacklog.objects.filter(pk__in=[row[0] for row in batch]).delete()
    return len(batch)


def rollups_drain(*, limit: int = 5_000) -> int:
    """Run :func:`rollups_refresh` until the backlog is empty; returns the entries drained."""
    total = 0
    while drained := rollups_refresh(limit=limit):
        total += drained
    return total
