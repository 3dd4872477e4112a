"""Validation, estimation and editing (VEE) of meter readings: the pure algorithm.

Plain data in, plain data out, no ORM: the services fetch what is stored (set-based), call
these functions and write the results. Times are integer seconds since the Unix epoch (UTC),
energies integer Wh.

- :func:`readings_classify` decides, for each candidate reading of one meter, whether it is
  accepted, a duplicate or rejected (``conflict``, ``register_rollback``, ``spike``), against
  the stored readings around it and the other readings of the same request.
- :func:`segments_touched` names the spans between consecutive readings whose interval
  energy the accepted readings determine (or re-determine, when a late reading splits a gap).
- :func:`segment_intervals` shares a segment's register deltas out over its intervals: one
  interval is measured; a gap is estimated, linearly or by like-day weights, always summing
  exactly to the measured delta.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from apps.meters.choices import RejectionCode

# Gaps longer than this many hours are shared out by a like-day profile, shorter ones linearly.
LONG_GAP_HOURS = 6
# The like day: the same time one week earlier (same weekday, same time of day).
LIKE_DAY_OFFSET_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Candidate:
    """One reading of a request that passed the checks that need no stored data."""

    index: int
    ts: int
    import_wh: int
    export_wh: int


@dataclass(frozen=True, slots=True)
class Verdict:
    index: int
    code: str  # "accepted", "duplicate" or a RejectionCode
    message: str = ""


@dataclass(frozen=True, slots=True)
class Segment:
    """Two consecutive readings of one meter; its energy is ``b - a`` over ``(b.ts - a.ts) / step`` intervals."""

    meter_id: int
    a_ts: int
    a_import_wh: int
    a_export_wh: int
    b_ts: int
    b_import_wh: int
    b_export_wh: int


@dataclass(slots=True)
class MeterSeries:
    """The stored readings of one meter that matter for a request, plus those it accepts."""

    timestamps: list[int] = field(default_factory=list)
    values: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, readings: Iterable[tuple[int, int, int]]) -> MeterSeries:
        series = cls()
        for ts, import_wh, export_wh in sorted(set(readings)):
            series.timestamps.append(ts)
            series.values[ts] = (import_wh, export_wh)
        return series

    def add(self, ts: int, import_wh: int, export_wh: int) -> None:
        if not self.timestamps or ts > self.timestamps[-1]:
            self.timestamps.append(ts)
        else:
            bisect.insort(self.timestamps, ts)
        self.values[ts] = (import_wh, export_wh)

    def before(self, ts: int) -> int | None:
        i = bisect.bisect_left(self.timestamps, ts)
        return self.timestamps[i - 1] if i > 0 else None

    def after(self, ts: int) -> int | None:
        i = bisect.bisect_right(self.timestamps, ts)
        return self.timestamps[i] if i < len(self.timestamps) else None


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def readings_classify(
    *,
    candidates: Sequence[Candidate],
    stored: MeterSeries,
    step_seconds: int,
    max_wh_per_interval: int,
) -> list[Verdict]:
    """A verdict for each candidate of one meter; accepted ones are added to ``stored``.

    Candidates are judged in time order (then in request order), each against its nearest
    neighbours among the stored readings and the candidates accepted before it, so a
    request's own readings count as history for each other: a repeat of an accepted or
    stored reading is a duplicate, a different value for its timestamp a conflict. The
    stored neighbours must include, for every candidate, the nearest stored reading before
    and after it and any at its timestamp.
    """
    verdicts: list[Verdict] = []
    accepted_here: dict[int, int] = {}  # ts -> index of the item of this request accepted for it
    for c in sorted(candidates, key=lambda c: (c.ts, c.index)):
        known = stored.values.get(c.ts)
        if known is not None:
            if known == (c.import_wh, c.export_wh):
                verdicts.append(Verdict(c.index, "duplicate"))
            elif c.ts in accepted_here:
                verdicts.append(
                    Verdict(
                        c.index,
                        RejectionCode.CONFLICT,
                        f"Differs from item {accepted_here[c.ts]} of this request for the same meter and ts.",
                    )
                )
            else:
                verdicts.append(
                    Verdict(
                        c.index,
                        RejectionCode.CONFLICT,
                        f"A different reading for {_iso(c.ts)} is stored (import_wh={known[0]}, "
                        f"export_wh={known[1]}); stored readings are never overwritten.",
                    )
                )
            continue
        rejection = _neighbour_check(c, stored, step_seconds, max_wh_per_interval)
        if rejection is not None:
            verdicts.append(rejection)
            continue
        stored.add(c.ts, c.import_wh, c.export_wh)
        accepted_here[c.ts] = c.index
        verdicts.append(Verdict(c.index, "accepted"))
    return verdicts


def _neighbour_check(c: Candidate, stored: MeterSeries, step: int, max_wh: int) -> Verdict | None:
    prev_ts = stored.before(c.ts)
    if prev_ts is not None:
        p_import, p_export = stored.values[prev_ts]
        for name, value, earlier in (("import_wh", c.import_wh, p_import), ("export_wh", c.export_wh, p_export)):
            if value < earlier:
                return Verdict(
                    c.index,
                    RejectionCode.REGISTER_ROLLBACK,
                    f"{name} {value} is lower than {earlier} read at {_iso(prev_ts)}.",
                )
        intervals = (c.ts - prev_ts) // step
        for name, delta in (("import_wh", c.import_wh - p_import), ("export_wh", c.export_wh - p_export)):
            if delta > max_wh * intervals:
                return Verdict(
                    c.index,
                    RejectionCode.SPIKE,
                    f"{name} rose {delta} Wh in {intervals} interval(s) since {_iso(prev_ts)}; "
                    f"the connection carries at most {max_wh} Wh per interval.",
                )
    next_ts = stored.after(c.ts)
    if next_ts is not None:
        n_import, n_export = stored.values[next_ts]
        for name, value, later in (("import_wh", c.import_wh, n_import), ("export_wh", c.export_wh, n_export)):
            if value > later:
                return Verdict(
                    c.index,
                    RejectionCode.REGISTER_ROLLBACK,
                    f"{name} {value} is higher than {later} read later, at {_iso(next_ts)}.",
                )
        intervals = (next_ts - c.ts) // step
        for name, delta in (("import_wh", n_import - c.import_wh), ("export_wh", n_export - c.export_wh)):
            if delta > max_wh * intervals:
                return Verdict(
                    c.index,
                    RejectionCode.SPIKE,
                    f"{name} would rise {delta} Wh in {intervals} interval(s) until {_iso(next_ts)}; "
                    f"the connection carries at most {max_wh} Wh per interval.",
                )
    return None


def segments_touched(*, meter_id: int, accepted: Iterable[int], series: MeterSeries) -> list[Segment]:
    """The segments whose energy the accepted readings (timestamps) determine, each once."""
    seen: set[int] = set()
    segments: list[Segment] = []
    for ts in sorted(accepted):
        for a_ts, b_ts in ((series.before(ts), ts), (ts, series.after(ts))):
            if a_ts is None or b_ts is None or a_ts in seen:
                continue
            seen.add(a_ts)
            a_import, a_export = series.values[a_ts]
            b_import, b_export = series.values[b_ts]
            segments.append(Segment(meter_id, a_ts, a_import, a_export, b_ts, b_import, b_export))
    return segments


def is_long_gap(segment: Segment) -> bool:
    return segment.b_ts - segment.a_ts > LONG_GAP_HOURS * 3600


def share_out(total_wh: int, weights: Sequence[int]) -> list[int]:
    """``total_wh`` split in proportion to positive integer ``weights``; the parts sum exactly to it.

    Cumulative rounding down: part k is floor(total x W_k / W) - floor(total x W_(k-1) / W),
    which is what interpolating a register between its two readings gives.
    """
    whole = sum(weights)
    parts: list[int] = []
    cumulative = done = 0
    for weight in weights:
        cumulative += weight
        upto = total_wh * cumulative // whole
        parts.append(upto - done)
        done = upto
    return parts


def like_day_weights(history: Sequence[int | None]) -> list[int]:
    """Weights from the like day's energies (``None`` where unknown); all ones when too little is known.

    One is added to every weight so that an interval with no energy on the like day still
    gets a little, and a like day of zeros gives a linear share.
    """
    known = [value for value in history if value is not None]
    if len(known) * 2 < len(history):
        return [1] * len(history)
    fill = sum(known) // len(known)
    return [(fill if value is None else value) + 1 for value in history]


def segment_intervals(
    segment: Segment,
    *,
    step_seconds: int,
    import_history: Sequence[int | None] | None = None,
    export_history: Sequence[int | None] | None = None,
) -> list[tuple[int, int, int, bool]]:
    """``(interval_start, import_wh, export_wh, estimated)`` for each interval of the segment.

    A segment of one interval is measured. Longer ones are estimated: linearly, or, for gaps
    over ``LONG_GAP_HOURS`` with like-day history given, in proportion to that history.
    """
    count = (segment.b_ts - segment.a_ts) // step_seconds
    import_delta = segment.b_import_wh - segment.a_import_wh
    export_delta = segment.b_export_wh - segment.a_export_wh
    if count == 1:
        return [(segment.a_ts, import_delta, export_delta, False)]
    linear = [1] * count
    import_weights = like_day_weights(import_history) if import_history is not None else linear
    export_weights = like_day_weights(export_history) if export_history is not None else linear
    imports = share_out(import_delta, import_weights)
    exports = share_out(export_delta, export_weights)
    return [(segment.a_ts + k * step_seconds, imports[k], exports[k], True) for k in range(count)]
