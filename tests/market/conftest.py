from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.common.clock import format_instant

# The business clock in market tests: 08:00:00Z on a Monday, running on from the test's start.
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
NEXT = NOW + dt.timedelta(minutes=15)  # the first interval whose gate (08:10) is still open


@pytest.fixture(autouse=True)
def business_clock(settings):
    settings.ENERGYCOOP_CLOCK = format_instant(NOW)
    settings.ENERGYCOOP_CLOCK_ANCHOR = format_instant(timezone.now())
    return NOW


def iso(value: dt.datetime) -> str:
    return format_instant(value)
