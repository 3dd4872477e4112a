"""The SQL of each lock the meters app takes, read off the wire (PostgreSQL): a meter row lock
names the meter table alone in ``FOR UPDATE OF``, even when the query joins the connection
point and the member, and the rollup drain takes its advisory lock."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.common import clock
from apps.common.locks import compiled_sql
from apps.meters import locks, services, store
from apps.meters.models import Meter
from tests.factories import member_make, meter_make

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _locking_sql(call) -> list[str]:
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        call()
    return [q["sql"] for q in queries.captured_queries if "FOR " in q["sql"] or "advisory" in q["sql"]]


def test_meter_lock_takes_the_meter_row_alone():
    meter, _key = meter_make(member_make())
    [sql] = _locking_sql(lambda: locks.meter_lock(meter_id=meter.pk))
    assert sql.endswith(f'WHERE "meters_meter"."id" = {meter.pk} ORDER BY "meters_meter"."id" ASC LIMIT 1 '
                        'FOR UPDATE OF "meters_meter"')  # fmt: skip
    assert "JOIN" not in sql


def test_meter_lock_for_swap_joins_but_locks_the_meter_only():
    meter, _key = meter_make(member_make())
    [sql] = _locking_sql(lambda: locks.meter_lock_for_swap(meter_id=meter.pk))
    assert 'INNER JOIN "grid_connectionpoint"' in sql
    assert 'INNER JOIN "members_member"' in sql
    assert sql.endswith('LIMIT 1 FOR UPDATE OF "meters_meter"')
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = locks.meter_lock_for_swap(meter_id=meter.pk)
        assert (locked.connection_point.code, locked.member.pk) == (meter.connection_point.code, meter.member_id)
    assert len(queries) == 1  # both loaded by the locking query


def test_a_missing_meter_raises():
    with transaction.atomic():
        for lock in (locks.meter_lock, locks.meter_lock_for_swap):
            with pytest.raises(Meter.DoesNotExist):
                lock(meter_id=999_999_999)


def test_meters_for_update_locks_in_id_order_the_meter_table_only():
    for sql in (
        compiled_sql(locks.meters_for_update(ids=[3, 1, 2])),
        compiled_sql(locks.meters_for_update(serials=["b", "a"])),
    ):
        assert sql.endswith('ORDER BY "meters_meter"."id" ASC FOR UPDATE OF "meters_meter"')
    assert 'WHERE "meters_meter"."id" IN (3, 1, 2)' in compiled_sql(locks.meters_for_update(ids=[3, 1, 2]))
    assert "\"meters_meter\".\"serial\" IN ('b', 'a')" in compiled_sql(locks.meters_for_update(serials=["b", "a"]))


def test_the_stores_meter_locks():
    meter, _key = meter_make(member_make())
    # PostgreSQL's: one raw statement, FOR NO KEY UPDATE of the meter rows only.
    [sql] = _locking_sql(lambda: store.PostgresReadingStore().meters_lock(ids=[meter.pk]))
    assert sql.endswith("ORDER BY m.id FOR NO KEY UPDATE OF m")
    # The portable one: through locks.meters_for_update (the capacity joined, not locked).
    [sql] = _locking_sql(lambda: store.PortableReadingStore().meters_lock(serials=[meter.serial]))
    assert 'INNER JOIN "grid_connectionpoint"' in sql
    assert sql.endswith('ORDER BY "meters_meter"."id" ASC FOR UPDATE OF "meters_meter"')


def test_rollup_drain_lock_is_the_advisory_lock():
    assert _locking_sql(locks.rollup_drain_lock) == [f"SELECT pg_advisory_xact_lock({locks.ROLLUP_LOCK_KEY})"]


def test_the_services_take_these_locks():
    meter, _key = meter_make(member_make())
    [sql] = _locking_sql(lambda: services.meter_key_rotate(meter=meter))
    assert sql.endswith('LIMIT 1 FOR UPDATE OF "meters_meter"')
    assert _locking_sql(services.rollups_refresh)[0] == f"SELECT pg_advisory_xact_lock({locks.ROLLUP_LOCK_KEY})"
    at = clock.today_start_utc() - dt.timedelta(days=1)
    swap = _locking_sql(
        lambda: services.meter_swap(
            old_meter=meter,
            new_serial=f"{meter.serial}-new",
            at=at,
            old_final_import_wh=10,
            old_final_export_wh=0,
            new_initial_import_wh=0,
            new_initial_export_wh=0,
        )
    )
    assert 'INNER JOIN "members_member"' in swap[0]
    assert swap[0].endswith('LIMIT 1 FOR UPDATE OF "meters_meter"')
