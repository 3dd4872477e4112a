"""The money columns widened to one shape (18 → 20 digits) keep every amount: data written
under the schema of the previous main survives the migration unchanged."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from apps.market.models import Trade
from apps.settlement.models import MemberSettlement
from apps.settlement.services import intervals_settle_due
from tests.settlement.test_settlement import NOW, _community

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MONEY_COLUMNS = {
    "market_trade": ("buyer_amount", "seller_amount"),
    "settlement_membersettlement": ("p2p_cost", "p2p_revenue", "grid_cost", "grid_credit", "fees", "total"),
}


def _precision() -> dict[tuple[str, str], tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, numeric_precision, numeric_scale FROM information_schema.columns"
            " WHERE table_name = ANY(%s)",
            [list(MONEY_COLUMNS)],
        )
        found = {(t, c): (p, s) for t, c, p, s in cursor.fetchall()}
    return {(t, c): found[(t, c)] for t, cols in MONEY_COLUMNS.items() for c in cols}


def _contents() -> tuple[list, list]:
    trades = list(Trade.objects.order_by("pk").values())
    settlements = list(MemberSettlement.objects.order_by("pk").values())
    return trades, settlements


@pytest.mark.django_db(transaction=True)
def test_money_columns_widen_and_keep_the_data():
    _community(7, members=6)
    intervals_settle_due(now=NOW)
    before = _contents()
    assert before[0] and before[1], "the community traded and settled"
    try:
        call_command("migrate", "market", "0002", verbosity=0)
        call_command("migrate", "settlement", "0001", verbosity=0)
        assert set(_precision().values()) == {(18, 4)}  # the previous main's columns
        assert _contents() == before
        call_command("migrate", verbosity=0)
    finally:
        call_command("migrate", verbosity=0)  # never leave the reused test database behind
    assert set(_precision().values()) == {(20, 4)}
    assert _contents() == before
