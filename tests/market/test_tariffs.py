"""Which tariff applies to an interval (apps/market/tariffs.py): the defaults, time-of-use
schedules read on the coop's local clock (also on DST days), and dynamic prices over both."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.market.models import DynamicPrice, TariffSchedule
from apps.market.tariffs import _schedule_applies, tariff_for

PEAK = {
    "retail_price": Decimal("0.40000"),
    "feed_in_price": Decimal("0.10000"),
    "imbalance_price": Decimal("0.45000"),
    "network_fee": Decimal("0.04000"),
    "coop_fee": Decimal("0.00600"),
}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def schedule(start: str, end: str, *, weekdays: str = "1234567", save: bool = True, **fields) -> TariffSchedule:
    values = {
        "name": f"{start}-{end}",
        "valid_from": dt.date(2026, 1, 1),
        "weekdays": weekdays,
        "start_time": dt.time.fromisoformat(start),
        "end_time": dt.time.fromisoformat(end),
        **PEAK,
        **fields,
    }
    if not save:
        return TariffSchedule(**values)
    return TariffSchedule.objects.create(**values)


def local(text: str) -> dt.datetime:
    """A local wall-clock time (naive ISO) as the schedule code sees it."""
    return dt.datetime.fromisoformat(text)


# --- A schedule's clock window: pure --------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "applies"),
    [("16:59", False), ("17:00", True), ("20:45", True), ("21:00", False)],
)
def test_a_window_includes_its_start_and_excludes_its_end(clock: str, applies: bool):
    peak = schedule("17:00", "21:00", save=False)
    assert _schedule_applies(peak, local(f"2026-11-23T{clock}")) is applies


@pytest.mark.parametrize(
    ("clock", "applies"),
    [("22:59", False), ("23:00", True), ("23:45", True), ("00:00", True), ("05:45", True), ("06:00", False)],
)
def test_a_window_across_midnight(clock: str, applies: bool):
    night = schedule("23:00", "06:00", save=False)
    assert _schedule_applies(night, local(f"2026-11-23T{clock}")) is applies


@pytest.mark.parametrize(("clock", "applies"), [("17:59", False), ("18:00", True), ("23:45", True), ("00:00", False)])
def test_an_end_of_midnight_means_the_end_of_the_day(clock: str, applies: bool):
    evening = schedule("18:00", "00:00", save=False)
    assert _schedule_applies(evening, local(f"2026-11-23T{clock}")) is applies


def test_weekdays_are_iso_numbers_of_the_local_day():
    weekend = schedule("00:00", "00:00", weekdays="67", save=False)
    assert not _schedule_applies(weekend, local("2026-11-27T12:00"))  # Friday
    assert _schedule_applies(weekend, local("2026-11-28T12:00"))  # Saturday
    assert _schedule_applies(weekend, local("2026-11-29T23:45"))  # Sunday, all day


# --- tariff_for: the database -----------------------------------------------------------


@pytest.mark.django_db
def test_without_schedules_the_defaults_apply(settings):
    tariff = tariff_for(at("2026-11-23T08:15:00+00:00"))
    assert tariff.source == "default"
    assert (tariff.retail_price, tariff.feed_in_price) == (
        Decimal(settings.TARIFF_DEFAULT_RETAIL),
        Decimal(settings.TARIFF_DEFAULT_FEED_IN),
    )
    assert tariff.coop_fee == Decimal(settings.TARIFF_DEFAULT_COOP_FEE)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "peak"),
    [
        ("2026-11-23T15:45:00+00:00", False),  # 16:45 CET
        ("2026-11-23T16:00:00+00:00", True),  # 17:00 CET
        ("2026-06-22T15:00:00+00:00", True),  # 17:00 CEST: the same local hour, an hour earlier in UTC
        ("2026-06-22T19:00:00+00:00", False),  # 21:00 CEST
    ],
)
def test_a_schedule_is_read_on_the_local_clock(start: str, peak: bool):
    peak_schedule = schedule("17:00", "21:00")
    tariff = tariff_for(at(start))
    assert (tariff.source == f"schedule:{peak_schedule.pk}") is peak
    assert (tariff.retail_price == PEAK["retail_price"]) is peak


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "night"),
    [
        ("2026-03-29T00:45:00+00:00", True),  # 01:45 CET, just before the clocks jump
        ("2026-03-29T01:00:00+00:00", True),  # 03:00 CEST: 02:00-03:00 never happened
        ("2026-03-29T03:45:00+00:00", True),  # 05:45 CEST
        ("2026-03-29T04:00:00+00:00", False),  # 06:00 CEST
        ("2026-10-25T00:30:00+00:00", True),  # 02:30 CEST, the first time
        ("2026-10-25T01:30:00+00:00", True),  # 02:30 CET, the second time
        ("2026-10-25T04:45:00+00:00", True),  # 05:45 CET
        ("2026-10-25T05:00:00+00:00", False),  # 06:00 CET
    ],
)
def test_a_night_schedule_on_the_dst_days(start: str, night: bool):
    schedule("23:00", "06:00")
    assert (tariff_for(at(start)).source != "default") is night


@pytest.mark.django_db
def test_validity_dates_are_local_days_and_inclusive():
    schedule("00:00", "00:00", valid_from=dt.date(2027, 1, 1), valid_until=dt.date(2027, 1, 31))
    assert tariff_for(at("2026-12-31T22:45:00+00:00")).source == "default"  # 23:45 on 31 December, local
    assert tariff_for(at("2026-12-31T23:00:00+00:00")).source != "default"  # 00:00 on 1 January, local
    assert tariff_for(at("2027-01-31T22:45:00+00:00")).source != "default"  # 23:45 on 31 January
    assert tariff_for(at("2027-01-31T23:00:00+00:00")).source == "default"  # 1 February


@pytest.mark.django_db
def test_the_highest_priority_wins_then_the_latest_valid_from():
    schedule("00:00", "00:00", name="base")
    newer = schedule("00:00", "00:00", valid_from=dt.date(2026, 6, 1), retail_price=Decimal("0.35000"))
    start = at("2026-11-23T08:15:00+00:00")
    assert tariff_for(start).source == f"schedule:{newer.pk}"
    urgent = schedule("00:00", "00:00", priority=5, retail_price=Decimal("0.50000"))
    assert tariff_for(start).source == f"schedule:{urgent.pk}"
    assert tariff_for(start).retail_price == Decimal("0.50000")


@pytest.mark.django_db
def test_a_dynamic_price_overrides_and_fills_its_gaps_from_the_schedule():
    peak = schedule("00:00", "00:00")
    start = at("2026-11-23T08:15:00+00:00")
    dynamic = DynamicPrice.objects.create(
        interval_start=start, retail_price=Decimal("0.25000"), feed_in_price=Decimal("0.05000")
    )
    tariff = tariff_for(start)
    assert tariff.source == f"dynamic:{dynamic.pk}"
    assert (tariff.retail_price, tariff.feed_in_price) == (Decimal("0.25000"), Decimal("0.05000"))
    assert tariff.imbalance_price == Decimal("0.25000")  # none given: the retail price
    assert (tariff.network_fee, tariff.coop_fee) == (peak.network_fee, peak.coop_fee)
    # Only its own interval.
    assert tariff_for(start + dt.timedelta(minutes=15)).source == f"schedule:{peak.pk}"
