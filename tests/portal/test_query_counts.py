"""Query-count pins on the main pages and the list endpoints: each answers in a fixed number
of queries, whether the member has a little history or much more (no query per row)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.market.models import Order, Trade
from apps.settlement.services import intervals_settle_due
from tests.conftest import bearer
from tests.factories import token_make
from tests.settlement.test_settlement import NOW, _community
from tests.settlement.test_settlement import business_clock as business_clock

pytestmark = pytest.mark.postgres

PAGES = {
    "/": 5,
    "/market/": 7,
    "/market/trades/": 5,
    "/settlement/": 6,
    "/account/tokens/": 3,
    "/energy/": 6,
}
ENDPOINTS = {
    "/api/v1/me/": 3,
    "/api/v1/market/intervals/": 6,  # open ones' tariffs: two queries for all of them
    "/api/v1/market/orders/": 2,
    "/api/v1/market/trades/": 3,
    "/api/v1/me/settlements/": 2,
    "/api/v1/me/balance/": 2,
}


def _count(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b"")[:300])
    return len(queries.captured_queries)


def _counts(client, member) -> dict[str, int]:
    client.force_login(member.user)
    api = bearer(token_make(member))
    counts = {url: _count(lambda url=url: client.get(url)) for url in PAGES}
    return counts | {url: _count(lambda url=url: api.get(url)) for url in ENDPOINTS}


@pytest.mark.django_db
def test_pages_and_lists_answer_in_a_fixed_number_of_queries(client):
    people, _ = _community(11, members=6)
    intervals_settle_due(now=NOW)
    by_orders = sorted((Order.objects.filter(member=m).count(), m.pk, m) for m, _meter in people)
    (few_orders, _, quiet), (many_orders, _, busy) = by_orders[0], by_orders[-1]
    assert many_orders >= few_orders + 3 and Trade.objects.exists()
    _counts(client, quiet)  # the first visit creates the intervals now open (a write, once)
    quiet_counts = _counts(client, quiet)
    busy_counts = _counts(client, busy)
    assert busy_counts == quiet_counts, "a query per row crept in"
    assert busy_counts == PAGES | ENDPOINTS
