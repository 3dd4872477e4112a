from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.common import clock


def test_without_a_setting_the_clock_is_real_time(settings):
    settings.ENERGYCOOP_CLOCK = None
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()


def test_shifted_clock_reads_the_setting_at_the_anchor_and_runs_on(settings):
    real_now = timezone.now()
    settings.ENERGYCOOP_CLOCK = "2026-11-20T09:00:00Z"
    settings.ENERGYCOOP_CLOCK_ANCHOR = clock.format_instant(real_now - dt.timedelta(minutes=10))
    shifted = clock.now()
    expected = dt.datetime(2026, 11, 20, 9, 10, tzinfo=dt.UTC)
    assert abs(shifted - expected) < dt.timedelta(seconds=5)
    assert clock.today_start_utc() == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T08:00:00Z", dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)),
        ("2026-11-23T08:00:00+00:00", dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)),
        ("2026-11-23T09:00:00+01:00", dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)),
    ],
)
def test_parse_instant(text, expected):
    assert clock.parse_instant(text) == expected
    assert clock.format_instant(clock.parse_instant(text)) == "2026-11-23T08:00:00Z"


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        clock.parse_instant("2026-11-23T08:00:00")


def test_authentication_keeps_real_time(settings):
    # Sessions and tokens use django.utils.timezone, which the business clock never touches.
    settings.ENERGYCOOP_CLOCK = "2030-01-01T00:00:00Z"
    assert abs(timezone.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    assert clock.now().year == 2030
