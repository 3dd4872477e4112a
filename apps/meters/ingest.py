"""The readings pipeline behind ``services.readings_ingest``: checks, classification, interval
energy and storage of one request, in the caller's transaction.

Two routes through it give the same answers:

- the column route: a request whose items are all well-formed objects becomes NumPy columns,
  checked a column at a time. Meters whose new readings simply continue their series (each
  after the latest stored reading, one interval apart, no register going back, no spike, no
  repeat) are settled right there: every reading accepted, every interval measured;
- the item route (:mod:`apps.meters.vee`): everything else (malformed items, late readings,
  gaps, duplicates, conflicts, rollbacks, spikes) is judged reading by reading in time
  order against its stored neighbours.

Both read what is stored set-based (a handful of queries per request, never one per reading)
and write through :mod:`apps.meters.store`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
from django.db import transaction

from apps.common import clock
from apps.common.exceptions import ValidationFailed
from apps.meters import store, vee
from apps.meters.choices import RejectionCode
from apps.meters.models import Meter
from apps.meters.signals import interval_energy_changed

MAX_READINGS_PER_REQUEST = 10_000
_SERIAL = itemgetter("serial")
# One list per field, not a tuple per item: 10,000 tuples would wake the garbage collector.
_FIELDS = (itemgetter("ts"), itemgetter("import_wh"), itemgetter("export_wh"))
# Registers are stored as 64-bit integers; anything near that is a corrupt value, not energy.
MAX_REGISTER_WH = 2**53


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
            "rejected": [{"index": r.index, "code": str(r.code), "message": r.message} for r in self.rejected],
        }


def envelope_check(body: object) -> list:
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


# --- the per-item checks (item route) -------------------------------------------------------


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


def _timing_refusal(info: store.MeterInfo, ts: int, whole: bool, step: int, now_ts: int) -> _Refused | None:
    if not whole or ts % step:
        return _Refused(
            RejectionCode.NOT_ON_BOUNDARY,
            f"ts must fall on the {step // 60}-minute interval grid aligned to the hour.",
            ts,
        )
    if ts > now_ts:
        return _Refused(RejectionCode.FUTURE, "ts lies in the future.", ts)
    if ts < info.installed_ts:
        return _Refused(RejectionCode.BEFORE_INSTALLATION, f"Meter {info.serial} was installed after ts.", ts)
    if info.removed_ts is not None and ts > info.removed_ts:
        return _Refused(RejectionCode.INVALID, f"Meter {info.serial} was removed before ts.", ts)
    return None


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
    refusal = _timing_refusal(info, ts, whole, step, now_ts)
    if refusal is not None:
        raise refusal
    return info, ts, import_wh, export_wh


# --- the request --------------------------------------------------------------------------


@dataclass
class _Request:
    step: int
    now_ts: int
    received_at: dt.datetime
    infos: list[store.MeterInfo]
    fixed: store.MeterInfo | None
    rejected: list[Rejection] = field(default_factory=list)
    rejection_rows: list[tuple[int | None, str, int | None, str, str]] = field(default_factory=list)
    duplicates: int = 0
    # Accepted readings and new or changed intervals, as columns (column route) and rows (item route).
    reading_columns: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    reading_rows: list[tuple[int, int, int, int]] = field(default_factory=list)
    interval_columns: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    interval_inserts: list[tuple[int, int, int, int, bool]] = field(default_factory=list)
    interval_updates: list[tuple[int, int, int, int, bool]] = field(default_factory=list)
    corrections: list = field(default_factory=list)
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)

    def refuse(self, index: int, code: str, message: str, info: store.MeterInfo | None, serial: str, ts: int | None):
        self.rejected.append(Rejection(index, code, message))
        self.rejection_rows.append((info.id if info else None, serial, ts, code, message))

    def span(self, meter_id: int, lo: int, hi: int) -> None:
        old = self.spans.get(meter_id)
        self.spans[meter_id] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))


def run(*, readings: list, meter_id: int | None, now: dt.datetime, step: int, received_at: dt.datetime) -> IngestResult:
    """Check, classify and store one request's readings (the caller holds the transaction)."""
    if meter_id is not None:
        infos = store.meters_lock(ids=[meter_id])
        fixed: store.MeterInfo | None = infos[0]
    else:
        fixed = None
        try:
            named = set(map(_SERIAL, readings))  # all well-formed: one pass in C
        except (KeyError, TypeError):
            named = {i.get("serial") for i in readings if isinstance(i, dict) and isinstance(i.get("serial"), str)}
        # No meter's serial holds a NUL (PostgreSQL text cannot): such an item is refused alone.
        infos = store.meters_lock(serials=sorted(s for s in named if isinstance(s, str) and "\x00" not in s))
    request = _Request(
        step=step, now_ts=store.to_ts(now.replace(microsecond=0)), received_at=received_at, infos=infos, fixed=fixed
    )
    columns = _columns(readings, request)
    candidates: dict[int, list[vee.Candidate]] = defaultdict(list)
    if columns is None:
        _items_check(readings, request, candidates)
        latest = store.readings_latest(meter_ids=sorted(candidates))
    else:
        latest = _columns_settle(columns, request, candidates)
    segments = _items_classify(candidates, request, latest)
    _intervals_derive(segments, request, latest)
    _write(request)
    request.rejected.sort(key=lambda r: r.index)
    accepted = sum(len(c[0]) for c in request.reading_columns) + len(request.reading_rows)
    return IngestResult(accepted, request.duplicates, request.rejected, len(request.corrections))


def _items_check(readings: list, request: _Request, candidates: dict[int, list[vee.Candidate]]) -> None:
    """Item route, first part: each item's own checks."""
    by_serial = {info.serial: info for info in request.infos}
    cache: dict[str, tuple[int, bool]] = {}
    fixed = request.fixed
    for index, item in enumerate(readings):
        try:
            info, ts, import_wh, export_wh = _item_check(
                item, fixed=fixed, by_serial=by_serial, cache=cache, step=request.step, now_ts=request.now_ts
            )
        except _Refused as refusal:
            serial = fixed.serial if fixed else str(item.get("serial", "") if isinstance(item, dict) else "")
            request.refuse(index, refusal.code, refusal.message, fixed or by_serial.get(serial), serial, refusal.ts)
            continue
        # Repeats within the request are judged with the rest, in time order (vee).
        candidates[info.id].append(vee.Candidate(index, ts, import_wh, export_wh))


def _items_classify(candidates: dict[int, list[vee.Candidate]], request: _Request, latest: dict) -> list[vee.Segment]:
    """Item route, second part: judge each meter's candidates against the stored readings."""
    if not candidates:
        return []
    by_id = {info.id: info for info in request.infos}
    late_pairs = []
    for mid, items in candidates.items():
        last = latest[mid][0]
        if last is not None:
            late_pairs.extend((mid, c.ts) for c in items if c.ts <= last[0])
    around: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for mid, ts, imp, exp in store.readings_around(pairs=late_pairs):
        around[mid].append((ts, imp, exp))
    segments: list[vee.Segment] = []
    for mid in sorted(candidates):
        info = by_id[mid]
        last = latest[mid][0]
        series = vee.MeterSeries.of([*around.get(mid, ()), *([last] if last else [])])
        verdicts = vee.readings_classify(
            candidates=candidates[mid],
            stored=series,
            step_seconds=request.step,
            max_wh_per_interval=info.capacity_w * request.step // 3600,
        )
        by_index = {c.index: c for c in candidates[mid]}
        accepted_ts = []
        for verdict in verdicts:
            c = by_index[verdict.index]
            if verdict.code == "accepted":
                request.reading_rows.append((mid, c.ts, c.import_wh, c.export_wh))
                accepted_ts.append(c.ts)
            elif verdict.code == "duplicate":
                request.duplicates += 1
            else:
                request.refuse(verdict.index, verdict.code, verdict.message, info, info.serial, c.ts)
        segments.extend(vee.segments_touched(meter_id=mid, accepted=accepted_ts, series=series))
    return segments


# --- the column route ---------------------------------------------------------------------


@dataclass
class _Columns:
    index: np.ndarray
    meter: np.ndarray
    ts: np.ndarray
    whole: np.ndarray
    imp: np.ndarray
    exp: np.ndarray


def _columns(readings: list, request: _Request) -> _Columns | None:
    """The request as columns, or ``None`` when any item is not a well-formed object (the item
    route then answers each item)."""
    n = len(readings)
    if not n:
        return None
    try:
        if request.fixed is not None:
            if any(len(item) != 3 for item in readings):
                return None  # a serial, a missing register or a stray key: let the item route say which
            meter = np.full(n, request.fixed.id, dtype=np.int64)
        else:
            ids = {info.serial: info.id for info in request.infos}
            meter = np.array(list(map(ids.__getitem__, map(_SERIAL, readings))), dtype=np.int64)
        raw_ts, imports, exports = (list(map(get, readings)) for get in _FIELDS)
    except (KeyError, TypeError, AttributeError):
        return None
    if set(map(type, imports)) != {int} or set(map(type, exports)) != {int}:
        return None  # bool, float, string or null registers: the item route says which
    cache: dict[str, tuple[int, bool]] = {}
    try:
        for raw in set(raw_ts):
            _instant(raw, cache)
    except (_Refused, TypeError):
        return None
    try:
        imp = np.array(imports, dtype=np.int64)
        exp = np.array(exports, dtype=np.int64)
    except OverflowError:
        return None
    if imp.min() < 0 or exp.min() < 0 or imp.max() > MAX_REGISTER_WH or exp.max() > MAX_REGISTER_WH:
        return None
    # Each distinct instant was parsed once; index the request's items into those.
    distinct = list(cache)
    position = {raw: k for k, raw in enumerate(distinct)}
    which = np.array(list(map(position.__getitem__, raw_ts)), dtype=np.int64)
    ts = np.array([cache[raw][0] for raw in distinct], dtype=np.int64)[which]
    whole = np.array([cache[raw][1] for raw in distinct], dtype=bool)[which]
    return _Columns(np.arange(n, dtype=np.int64), meter, ts, whole, imp, exp)


def _columns_settle(cols: _Columns, request: _Request, candidates: dict[int, list[vee.Candidate]]) -> dict:
    """Column route: per-item checks a column at a time; settle the meters whose readings simply
    continue their series; hand every other meter's readings to the item route."""
    step = request.step
    infos = sorted(request.infos, key=lambda i: i.id)
    ids = np.array([i.id for i in infos], dtype=np.int64)
    pos = np.searchsorted(ids, cols.meter)
    installed = np.array([i.installed_ts for i in infos], dtype=np.int64)[pos]
    removed = np.array([i.removed_ts if i.removed_ts is not None else 2**62 for i in infos], dtype=np.int64)[pos]
    bidirectional = np.array([i.bidirectional for i in infos], dtype=bool)[pos]
    capacity_wh = (np.array([i.capacity_w for i in infos], dtype=np.int64) * step // 3600)[pos]
    bad = (~cols.whole) | (cols.ts % step != 0) | (cols.ts > request.now_ts) | (cols.ts < installed)
    bad |= (cols.ts > removed) | (~bidirectional & (cols.exp != 0))
    for i in np.flatnonzero(bad).tolist():
        info = infos[pos[i]]
        refusal = _timing_refusal(info, int(cols.ts[i]), bool(cols.whole[i]), step, request.now_ts)
        if refusal is None:  # the export register of an import-only meter
            refusal = _Refused(RejectionCode.INVALID, f"Meter {info.serial} has no export register: export_wh is 0.")
        request.refuse(i, refusal.code, refusal.message, info, info.serial, refusal.ts)
    keep = ~bad
    index, meter, ts, imp, exp, cap = (
        cols.index[keep], cols.meter[keep], cols.ts[keep], cols.imp[keep], cols.exp[keep], capacity_wh[keep]
    )  # fmt: skip
    order = np.lexsort((index, ts, meter))
    index, meter, ts, imp, exp, cap = index[order], meter[order], ts[order], imp[order], exp[order], cap[order]
    meter_ids = np.unique(meter)
    latest = store.readings_latest(meter_ids=meter_ids.tolist())
    none = np.iinfo(np.int64).min
    last_ts = np.array([(latest[m][0] or (none,))[0] for m in meter_ids.tolist()], dtype=np.int64)
    last_imp = np.array([(latest[m][0] or (0, 0, 0))[1] for m in meter_ids.tolist()], dtype=np.int64)
    last_exp = np.array([(latest[m][0] or (0, 0, 0))[2] for m in meter_ids.tolist()], dtype=np.int64)
    last_interval = np.array([latest[m][1] if latest[m][1] is not None else none for m in meter_ids.tolist()])
    group = np.searchsorted(meter_ids, meter)
    first = np.ones(len(meter), dtype=bool)
    first[1:] = meter[1:] != meter[:-1]
    prev_ts = np.where(first, last_ts[group], np.roll(ts, 1))
    prev_imp = np.where(first, last_imp[group], np.roll(imp, 1))
    prev_exp = np.where(first, last_exp[group], np.roll(exp, 1))
    has_prev = prev_ts != none
    d_imp, d_exp = imp - prev_imp, exp - prev_exp
    # Anything but "one interval after the previous reading, registers rising within the
    # connection's capacity" goes the item route, as does a meter with estimated intervals
    # past its latest reading (a quiet meter's estimates, to replace).
    simple = ~has_prev | ((ts - prev_ts == step) & (d_imp >= 0) & (d_exp >= 0) & (d_imp <= cap) & (d_exp <= cap))
    simple &= (last_interval[group] == none) | (last_interval[group] + step <= last_ts[group])
    complex_meters = np.unique(meter[~simple])
    item_route = np.isin(meter, complex_meters)
    for i in np.flatnonzero(item_route).tolist():
        candidates[int(meter[i])].append(vee.Candidate(int(index[i]), int(ts[i]), int(imp[i]), int(exp[i])))
    fast = ~item_route
    request.reading_columns.append((meter[fast], ts[fast], imp[fast], exp[fast]))
    measured = fast & has_prev
    if measured.any():
        request.interval_columns.append((meter[measured], prev_ts[measured], d_imp[measured], d_exp[measured]))
        m, lo, hi = meter[measured], prev_ts[measured], ts[measured]
        starts = np.ones(len(m), dtype=bool)
        starts[1:] = m[1:] != m[:-1]
        ends = np.ones(len(m), dtype=bool)
        ends[:-1] = m[1:] != m[:-1]
        for mid, a, b in zip(m[starts].tolist(), lo[starts].tolist(), hi[ends].tolist(), strict=True):
            request.span(mid, a, b)
    return latest


# --- interval energy of the item route ----------------------------------------------------


def _intervals_derive(segments: list[vee.Segment], request: _Request, latest: dict) -> None:
    """Interval energy of the touched segments: new rows, changed rows and their corrections."""
    if not segments:
        return
    step = request.step
    week = vee.LIKE_DAY_OFFSET_SECONDS
    long_gaps = [s for s in segments if vee.is_long_gap(s)]
    history = store.intervals_in(ranges=[(s.meter_id, s.a_ts - week, s.b_ts - week) for s in long_gaps])
    # Only spans that start at or before a meter's latest estimated interval can hold stored
    # rows: measured intervals lie between adjacent readings, where no new reading can land.
    overlapping = [
        (s.meter_id, s.a_ts, s.b_ts)
        for s in segments
        if latest[s.meter_id][1] is not None and s.a_ts <= latest[s.meter_id][1]
    ]
    stored = store.intervals_in(ranges=overlapping)
    for segment in segments:
        import_history = export_history = None
        if vee.is_long_gap(segment):
            known = [history.get((segment.meter_id, s)) for s in range(segment.a_ts - week, segment.b_ts - week, step)]
            import_history = [k[0] if k else None for k in known]
            export_history = [k[1] if k else None for k in known]
        changed = False
        for start, imp, exp, estimated in vee.segment_intervals(
            segment, step_seconds=step, import_history=import_history, export_history=export_history
        ):
            old = stored.get((segment.meter_id, start))
            row = (segment.meter_id, start, imp, exp, estimated)
            if old is None:
                request.interval_inserts.append(row)
            elif old != (imp, exp, estimated):
                request.interval_updates.append(row)
                request.corrections.append((segment.meter_id, start, old, (imp, exp, estimated)))
            else:
                continue
            changed = True
        if changed:
            request.span(segment.meter_id, segment.a_ts, segment.b_ts)


# --- storage ------------------------------------------------------------------------------


def _write(request: _Request) -> None:
    at = request.received_at
    store.readings_insert(columns=_stack(request.reading_columns, request.reading_rows, 4), received_at=at)
    inserts = _stack(
        [(*c, np.zeros(len(c[0]), dtype=bool)) for c in request.interval_columns], request.interval_inserts, 5
    )
    store.intervals_write(inserts=inserts, updates=request.interval_updates)
    store.corrections_insert(rows=request.corrections, at=at)
    store.backlog_insert(rows=[(mid, lo, hi) for mid, (lo, hi) in sorted(request.spans.items())], at=at)
    store.rejections_insert(rows=request.rejection_rows, at=at)
    if request.corrections:
        times = store.instants()
        meter_ids = [c[0] for c in request.corrections]
        interval_starts = [times[c[1]] for c in request.corrections]
        _send: Callable[[], object] = lambda: interval_energy_changed.send(  # noqa: E731
            sender=Meter, meter_ids=meter_ids, interval_starts=interval_starts
        )
        transaction.on_commit(_send)


def _stack(columns: list[tuple[np.ndarray, ...]], rows: list[tuple], width: int) -> tuple[np.ndarray, ...]:
    """Column chunks and row tuples as one set of columns."""
    parts = [list(c) for c in columns]
    if rows:
        transposed = list(zip(*rows, strict=True))
        parts.append([np.array(transposed[k], dtype=bool if k == 4 else np.int64) for k in range(width)])
    if not parts:
        return tuple(np.array([], dtype=bool if k == 4 else np.int64) for k in range(width))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(width))
