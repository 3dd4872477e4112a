"""The SQL of each lock that members and settlement take, read off the wire (PostgreSQL):
a row lock names its own table in ``FOR UPDATE OF`` and never the tables a join or an
ordering would pull in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.common import locks
from apps.members.locks import api_token_lock, member_lock
from apps.members.models import ApiToken, Member
from apps.members.services import api_token_create
from apps.settlement.locks import settled_interval_lock
from apps.settlement.models import SettledInterval
from tests.factories import member_make

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _locking_sql(call) -> str:
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        call()
    statements = [q["sql"] for q in queries.captured_queries if "FOR " in q["sql"] or "advisory" in q["sql"]]
    assert len(statements) == 1, statements
    return statements[0]


def test_member_lock_takes_the_member_row_alone():
    member = member_make()
    sql = _locking_sql(lambda: member_lock(member_id=member.pk))
    # Meta.ordering (by number) is dropped; no join, and only the member table is locked.
    assert sql.endswith('ORDER BY "members_member"."id" ASC LIMIT 1 FOR UPDATE OF "members_member"')
    assert "JOIN" not in sql


def test_member_lock_of_a_missing_member_raises():
    with transaction.atomic(), pytest.raises(Member.DoesNotExist):
        member_lock(member_id=999_999_999)


def test_token_lock_takes_the_token_row_of_that_user_only():
    member = member_make()
    other = member_make()
    token, _key = api_token_create(user=member.user, name="laptop")
    sql = _locking_sql(lambda: api_token_lock(token_id=token.pk, user=member.user))
    assert sql.endswith('FOR UPDATE OF "members_apitoken"')
    with transaction.atomic():
        assert api_token_lock(token_id=token.pk, user=other.user) is None
        assert isinstance(api_token_lock(token_id=token.pk, user=member.user), ApiToken)


def test_settled_interval_lock_takes_its_own_row():
    start = dt.datetime(2026, 3, 29, 0, 45, tzinfo=dt.UTC)
    SettledInterval.objects.create(interval_start=start, first_settled_at=start, rule_version=1)
    sql = _locking_sql(lambda: settled_interval_lock(start=start))
    assert sql.endswith('FOR UPDATE OF "settlement_settledinterval"')
    with transaction.atomic():
        assert settled_interval_lock(start=start + dt.timedelta(minutes=15)) is None


def test_for_update_orders_by_primary_key_and_names_its_own_table():
    qs = locks.for_update(Member.objects.select_related("user").filter(status="active"))
    sql = locks.compiled_sql(qs)
    assert 'ORDER BY "members_member"."id" ASC' in sql
    assert sql.endswith('FOR UPDATE OF "members_member"')  # the joined user row stays unlocked


def test_share_row_and_advisory_lock_sql():
    member = member_make()
    assert locks.share_row_sql(Member) == 'SELECT 1 FROM "members_member" WHERE id = %s FOR SHARE'
    sent = _locking_sql(lambda: locks.share_row(Member, member.pk))
    assert sent == locks.share_row_sql(Member).replace("%s", str(member.pk))
    assert _locking_sql(lambda: locks.advisory_xact(42)) == "SELECT pg_advisory_xact_lock(42)"


@pytest.mark.django_db(transaction=True)
def test_a_shared_row_blocks_a_writer_of_that_row_until_commit():
    """FOR SHARE really holds: a second connection cannot lock the row FOR UPDATE NOWAIT."""
    member = member_make()
    with transaction.atomic():
        locks.share_row(Member, member.pk)
        other = connection.copy()
        try:
            with other.cursor() as cursor, pytest.raises(Exception, match="could not obtain lock"):
                cursor.execute('SELECT 1 FROM "members_member" WHERE id = %s FOR UPDATE NOWAIT', [member.pk])
        finally:
            other.close()
