"""The two big meter-data tables carry only the indexes the ingest and its readers use: every
extra index is paid for on each of the million rows a day written."""

from __future__ import annotations

import pytest
from django.db import connection


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return {name: definition.split(" USING ", 1)[1] for name, definition in cursor.fetchall()}


@pytest.mark.django_db
def test_readings_have_only_their_primary_key():
    assert _indexes("meters_reading") == {"meters_reading_pkey": "btree (meter_id, ts)"}


@pytest.mark.django_db
def test_interval_energy_has_its_primary_key_and_the_estimated_index_only():
    assert _indexes("meters_intervalenergy") == {
        "meters_intervalenergy_pkey": "btree (meter_id, interval_start)",
        "interval_estimated_idx": "btree (meter_id, interval_start) WHERE estimated",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "scope"),
    [("meters_meterrollup", "meter_id"), ("meters_memberrollup", "member_id"), ("meters_feederrollup", "feeder_id")],
)
def test_rollup_scopes_are_served_by_their_unique_key(table, scope):
    assert sorted(_indexes(table).values()) == sorted(["btree (id)", f"btree ({scope}, grain, bucket_start)"])
