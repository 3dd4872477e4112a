"""Fixtures of the meter-data tests: a meter with its key, an operator, a day on the grid."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.common import clock
from apps.members.choices import Role
from apps.meters import rollups, store
from tests.conftest import bearer
from tests.factories import member_make, meter_make, token_make

STEP = dt.timedelta(minutes=15)


def iso(value: dt.datetime) -> str:
    return clock.format_instant(value)


@pytest.fixture
def day0() -> dt.datetime:
    """Midnight (UTC) two days ago: well after the meters' installation, well before now."""
    return clock.today_start_utc() - dt.timedelta(days=2)


@pytest.fixture
def meter_and_key(db):
    return meter_make(member_make())


@pytest.fixture
def operator(db):
    return bearer(token_make(member_make(role=Role.OPERATOR)))


@pytest.fixture(params=["postgres", "orm"])
def backend(request, monkeypatch):
    """Run a test through the PostgreSQL store and recompute (COPY, LATERAL, deltas) and
    through the portable ORM ones."""
    if request.param == "orm":
        portable_store, portable_rollups = store.PortableReadingStore(), rollups.PortableRollups()
        monkeypatch.setattr(store, "get", lambda: portable_store)
        monkeypatch.setattr(rollups, "get", lambda: portable_rollups)
    return request.param


def post(client, serial: str, readings: list[dict]):
    return client.post(f"/api/v1/meters/{serial}/readings/", {"readings": readings}, format="json")


def series(start: dt.datetime, count: int, *, import_step: int = 100, export_step: int = 7, first=(1000, 50)):
    """``count`` consecutive readings from ``start``: registers rising steadily."""
    return [
        {"ts": iso(start + k * STEP), "import_wh": first[0] + k * import_step, "export_wh": first[1] + k * export_step}
        for k in range(count)
    ]
