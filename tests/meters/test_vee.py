"""The pure validation, estimation and editing rules (``apps.meters.vee``): plain data, no database."""

from __future__ import annotations

import pytest

from apps.meters import vee
from apps.meters.choices import RejectionCode
from apps.meters.vee import Candidate, MeterSeries, Segment, Verdict

STEP = 900
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MAX_WH = 1_000  # per interval


def at(k: int) -> int:
    return T0 + k * STEP


def classify(candidates: list[Candidate], stored: MeterSeries | None = None) -> list[Verdict]:
    return vee.readings_classify(
        candidates=candidates, stored=stored if stored is not None else MeterSeries(), step_seconds=STEP,
        max_wh_per_interval=MAX_WH,
    )  # fmt: skip


def codes(verdicts: list[Verdict]) -> list[tuple[int, str]]:
    return [(v.index, str(v.code)) for v in verdicts]


# --- MeterSeries --------------------------------------------------------------------------


def test_series_of_sorts_and_drops_repeats():
    series = MeterSeries.of([(at(2), 30, 3), (at(0), 10, 1), (at(2), 30, 3), (at(1), 20, 2)])
    assert series.timestamps == [at(0), at(1), at(2)]
    assert series.values == {at(0): (10, 1), at(1): (20, 2), at(2): (30, 3)}


def test_series_add_appends_or_inserts_in_order():
    series = MeterSeries.of([(at(0), 10, 0), (at(4), 50, 0)])
    series.add(at(8), 90, 0)  # after the last: appended
    series.add(at(2), 30, 0)  # in between: inserted
    assert series.timestamps == [at(0), at(2), at(4), at(8)]
    assert series.values[at(2)] == (30, 0)


def test_series_neighbours_are_strictly_before_and_after():
    series = MeterSeries.of([(at(0), 10, 0), (at(4), 50, 0)])
    assert series.before(at(0)) is None
    assert series.before(at(2)) == at(0)
    assert series.before(at(4)) == at(0)
    assert series.before(at(5)) == at(4)
    assert series.after(at(4)) is None
    assert series.after(at(2)) == at(4)
    assert series.after(at(0)) == at(4)
    assert series.after(at(-1)) == at(0)
    assert MeterSeries().before(at(0)) is None and MeterSeries().after(at(0)) is None


# --- readings_classify: duplicates and conflicts ---------------------------------------------


def test_first_readings_are_accepted_and_become_history():
    stored = MeterSeries()
    verdicts = classify([Candidate(0, at(0), 10, 1), Candidate(1, at(1), 20, 2)], stored)
    assert codes(verdicts) == [(0, "accepted"), (1, "accepted")]
    assert stored.timestamps == [at(0), at(1)]


def test_a_repeat_of_a_stored_reading_is_a_duplicate():
    stored = MeterSeries.of([(at(0), 10, 1)])
    assert codes(classify([Candidate(0, at(0), 10, 1)], stored)) == [(0, "duplicate")]
    assert stored.timestamps == [at(0)]


def test_a_different_value_for_a_stored_instant_is_a_conflict():
    stored = MeterSeries.of([(at(0), 10, 1)])
    [verdict] = classify([Candidate(0, at(0), 11, 1)], stored)
    assert verdict.code == RejectionCode.CONFLICT
    assert "import_wh=10, export_wh=1" in verdict.message
    assert "never overwritten" in verdict.message
    assert stored.values[at(0)] == (10, 1)


def test_repeats_within_one_request_duplicate_or_conflict_with_the_accepted_item():
    verdicts = classify([Candidate(0, at(0), 10, 0), Candidate(1, at(0), 10, 0), Candidate(2, at(0), 12, 0)])
    assert codes(verdicts) == [(0, "accepted"), (1, "duplicate"), (2, RejectionCode.CONFLICT)]
    assert verdicts[2].message == "Differs from item 0 of this request for the same meter and ts."


def test_candidates_are_judged_in_time_then_request_order():
    # Item 0 comes later in time than item 1: item 1 is judged first and is the history of item 0.
    verdicts = classify([Candidate(0, at(1), 5, 0), Candidate(1, at(0), 10, 0)])
    assert codes(verdicts) == [(1, "accepted"), (0, RejectionCode.REGISTER_ROLLBACK)]
    # Same instant: the lower index wins, the other is the conflict.
    verdicts = classify([Candidate(5, at(0), 20, 0), Candidate(3, at(0), 10, 0)])
    assert codes(verdicts) == [(3, "accepted"), (5, RejectionCode.CONFLICT)]


# --- readings_classify: register rollbacks ----------------------------------------------------


@pytest.mark.parametrize(("register", "values"), [("import_wh", (9, 5)), ("export_wh", (10, 4))])
def test_a_register_lower_than_the_reading_before_is_a_rollback(register, values):
    stored = MeterSeries.of([(at(0), 10, 5)])
    [verdict] = classify([Candidate(0, at(1), *values)], stored)
    assert verdict.code == RejectionCode.REGISTER_ROLLBACK
    assert verdict.message.startswith(f"{register} ") and "is lower than" in verdict.message
    assert "2026-01-01T00:00:00Z" in verdict.message
    assert at(1) not in stored.values


@pytest.mark.parametrize(("register", "values"), [("import_wh", (51, 0)), ("export_wh", (40, 1))])
def test_a_register_higher_than_the_reading_after_is_a_rollback(register, values):
    stored = MeterSeries.of([(at(0), 0, 0), (at(8), 50, 0)])
    [verdict] = classify([Candidate(0, at(4), *values)], stored)
    assert verdict.code == RejectionCode.REGISTER_ROLLBACK
    assert verdict.message.startswith(f"{register} ") and "read later, at 2026-01-01T02:00:00Z" in verdict.message


def test_unchanged_registers_are_no_rollback():
    stored = MeterSeries.of([(at(0), 10, 5), (at(2), 10, 5)])
    assert codes(classify([Candidate(0, at(1), 10, 5)], stored)) == [(0, "accepted")]


def test_a_counter_reset_to_zero_is_refused_not_taken_as_a_new_meter():
    stored = MeterSeries.of([(at(0), 123_456, 789)])
    verdicts = classify([Candidate(0, at(1), 0, 0), Candidate(1, at(2), 100, 0)], stored)
    # The reset is refused; the next reading is judged against the stored one (100 < 123,456).
    assert codes(verdicts) == [(0, RejectionCode.REGISTER_ROLLBACK), (1, RejectionCode.REGISTER_ROLLBACK)]


# --- readings_classify: spikes --------------------------------------------------------------


def test_at_most_the_connection_capacity_per_interval():
    stored = MeterSeries.of([(at(0), 0, 0)])
    assert codes(classify([Candidate(0, at(1), MAX_WH, MAX_WH)], stored)) == [(0, "accepted")]
    [verdict] = classify([Candidate(1, at(2), 2 * MAX_WH + 1, MAX_WH)], stored)
    assert verdict.code == RejectionCode.SPIKE
    assert verdict.message == (
        f"import_wh rose {MAX_WH + 1} Wh in 1 interval(s) since 2026-01-01T00:15:00Z; "
        f"the connection carries at most {MAX_WH} Wh per interval."
    )


def test_a_gap_allows_the_capacity_of_each_of_its_intervals():
    stored = MeterSeries.of([(at(0), 0, 0)])
    assert codes(classify([Candidate(0, at(4), 4 * MAX_WH, 0)], stored)) == [(0, "accepted")]
    [verdict] = classify([Candidate(1, at(8), 8 * MAX_WH + 1, 0)], stored)
    assert verdict.code == RejectionCode.SPIKE and "in 4 interval(s)" in verdict.message


def test_an_export_spike_is_a_spike_too():
    stored = MeterSeries.of([(at(0), 0, 0)])
    [verdict] = classify([Candidate(0, at(1), 0, MAX_WH + 1)], stored)
    assert verdict.code == RejectionCode.SPIKE and verdict.message.startswith("export_wh rose")


def test_a_late_reading_must_not_imply_a_spike_until_the_next_one():
    stored = MeterSeries.of([(at(0), 0, 0), (at(2), 2 * MAX_WH, 0)])
    # 0 then 0 at 00:15 would leave 2,000 Wh for the one interval to 00:30.
    [verdict] = classify([Candidate(0, at(1), 0, 0)], stored)
    assert verdict.code == RejectionCode.SPIKE
    assert verdict.message.startswith(f"import_wh would rise {2 * MAX_WH} Wh in 1 interval(s) until")
    assert codes(classify([Candidate(1, at(1), MAX_WH, 0)], stored)) == [(1, "accepted")]


def test_a_rejected_reading_is_no_history_for_the_next():
    stored = MeterSeries.of([(at(0), 0, 0)])
    verdicts = classify([Candidate(0, at(1), 5 * MAX_WH, 0), Candidate(1, at(2), 2 * MAX_WH, 0)], stored)
    # Item 1 is judged against the stored reading (2 intervals, 2,000 Wh: allowed), not item 0.
    assert codes(verdicts) == [(0, RejectionCode.SPIKE), (1, "accepted")]
    assert stored.timestamps == [at(0), at(2)]


# --- segments ---------------------------------------------------------------------------------


def test_a_reading_after_the_last_closes_one_segment():
    series = MeterSeries.of([(at(0), 10, 1), (at(1), 30, 4)])
    assert vee.segments_touched(meter_id=7, accepted=[at(1)], series=series) == [Segment(7, at(0), 10, 1, at(1), 30, 4)]


def test_the_first_reading_of_a_meter_closes_no_segment():
    series = MeterSeries.of([(at(0), 10, 1)])
    assert vee.segments_touched(meter_id=7, accepted=[at(0)], series=series) == []
    assert vee.segments_touched(meter_id=7, accepted=[], series=series) == []


def test_a_late_reading_splits_its_gap_in_two():
    series = MeterSeries.of([(at(0), 0, 0), (at(4), 40, 0), (at(8), 80, 0)])
    assert vee.segments_touched(meter_id=1, accepted=[at(4)], series=series) == [
        Segment(1, at(0), 0, 0, at(4), 40, 0),
        Segment(1, at(4), 40, 0, at(8), 80, 0),
    ]


def test_consecutive_accepted_readings_give_each_segment_once():
    series = MeterSeries.of([(at(k), 10 * k, 0) for k in range(4)])
    segments = vee.segments_touched(meter_id=1, accepted=[at(3), at(1), at(2)], series=series)
    assert [(s.a_ts, s.b_ts) for s in segments] == [(at(0), at(1)), (at(1), at(2)), (at(2), at(3))]


def test_a_long_gap_is_longer_than_six_hours():
    hours = vee.LONG_GAP_HOURS * 3600 // STEP
    assert not vee.is_long_gap(Segment(1, at(0), 0, 0, at(hours), 0, 0))
    assert vee.is_long_gap(Segment(1, at(0), 0, 0, at(hours + 1), 0, 0))


# --- sharing energy out -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (10, [1, 1, 1], [3, 3, 4]),
        (0, [1, 1, 1], [0, 0, 0]),
        (7, [1], [7]),
        (100, [1, 3], [25, 75]),
        (5, [1, 1, 1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0, 1, 1]),
        (1, [1_000_000, 1], [0, 1]),
    ],
)
def test_share_out_sums_exactly_by_cumulative_rounding_down(total, weights, parts):
    assert vee.share_out(total, weights) == parts
    assert sum(parts) == total


def test_like_day_weights():
    assert vee.like_day_weights([None, None, None, None]) == [1, 1, 1, 1]
    assert vee.like_day_weights([8, None, None, None]) == [1, 1, 1, 1]  # under half known: linear
    assert vee.like_day_weights([8, 4, None, None]) == [9, 5, 7, 7]  # half known: the mean fills in
    assert vee.like_day_weights([0, 0, 0]) == [1, 1, 1]  # a day of zeros: linear
    assert vee.like_day_weights([5, 0, 10]) == [6, 1, 11]  # no energy still gets a little


def test_one_interval_is_measured():
    segment = Segment(1, at(0), 100, 10, at(1), 160, 13)
    assert vee.segment_intervals(segment, step_seconds=STEP) == [(at(0), 60, 3, False)]


def test_a_gap_is_estimated_linearly_and_sums_to_the_delta():
    segment = Segment(1, at(0), 100, 0, at(4), 110, 3)
    assert vee.segment_intervals(segment, step_seconds=STEP) == [
        (at(0), 2, 0, True),
        (at(1), 3, 1, True),
        (at(2), 2, 1, True),
        (at(3), 3, 1, True),
    ]


def test_a_long_gap_follows_the_like_day_history_of_each_register():
    segment = Segment(1, at(0), 0, 0, at(4), 100, 40)
    rows = vee.segment_intervals(
        segment, step_seconds=STEP, import_history=[0, 9, None, 29], export_history=[None, None, None, 3]
    )
    assert [r[0] for r in rows] == [at(0), at(1), at(2), at(3)]
    assert [r[1] for r in rows] == vee.share_out(100, [1, 10, 13, 30])  # the mean (12) fills the unknown one
    assert [r[2] for r in rows] == [10, 10, 10, 10]  # export: too little known, linear
    assert all(r[3] for r in rows)
    assert sum(r[1] for r in rows) == 100 and sum(r[2] for r in rows) == 40


def test_a_gap_with_no_energy_is_zeros_still_estimated():
    segment = Segment(1, at(0), 50, 5, at(3), 50, 5)
    assert vee.segment_intervals(segment, step_seconds=STEP) == [(at(k), 0, 0, True) for k in range(3)]
