"""Market pages: order entry without JavaScript, scoping, trade history and CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from apps.market.choices import OrderStatus
from apps.market.models import Order
from apps.market.services import interval_clear, order_input_parse, order_submit
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT, NOW, iso

pytestmark = pytest.mark.django_db


def _submit(member, side, qty, price):
    return order_submit(
        member=member,
        order=order_input_parse(interval_start=iso(NEXT), side=side, quantity_wh=qty, limit_price=price, now=NOW),
        now=NOW,
    )[0]


def test_market_page_places_and_cancels_an_order_without_javascript(client):
    member = member_make()
    client.force_login(member.user)
    page = client.get(reverse("market"))
    assert page.status_code == 200 and iso(NEXT) in page.content.decode()
    response = client.post(
        reverse("market"),
        {"interval_start": iso(NEXT), "side": "buy", "quantity_wh": 700, "limit_price": "0.15"},
    )
    assert response.status_code == 302
    order = Order.objects.get(member=member)
    assert (order.quantity_wh, order.status) == (700, OrderStatus.OPEN)
    assert client.post(reverse("market-order-cancel", args=[order.pk])).status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_market_page_shows_errors_in_the_form(client):
    member = member_make()
    client.force_login(member.user)
    response = client.post(
        reverse("market"),
        {"interval_start": iso(NEXT), "side": "sell", "quantity_wh": 700, "limit_price": "0.15"},
    )
    assert response.status_code == 200
    assert "Selling needs a main meter." in response.content.decode()
    response = client.post(
        reverse("market"), {"interval_start": iso(NEXT), "side": "buy", "quantity_wh": 700, "limit_price": "0.99"}
    )
    assert "tariff band" in response.content.decode()
    assert not Order.objects.exists()


def test_market_page_shows_prices_depth_and_only_my_orders(client):
    alice, bob = member_make(), member_make()
    meter_make(bob)
    _submit(alice, "buy", 1000, "0.20")
    bob_order = _submit(bob, "sell", 600, "0.10")
    client.force_login(alice.user)
    page = client.get(reverse("market")).content.decode()
    assert "0.20000" in page and "0.10000" in page  # depth of the next interval
    assert f'id="order-{bob_order.pk}"' not in page
    interval_clear(start=NEXT, now=NEXT)
    page = client.get(reverse("market")).content.decode()
    assert "0.15000" in page  # last cleared price


def test_trade_history_filters_and_csv(client):
    alice, bob = member_make(), member_make()
    meter_make(bob)
    _submit(alice, "buy", 1000, "0.20")
    _submit(bob, "sell", 600, "0.10")
    interval_clear(start=NEXT, now=NEXT)
    client.force_login(alice.user)
    page = client.get(reverse("market-trades")).content.decode()
    assert "0.0900" in page  # 600 Wh × 0.15 / 1000
    assert "No trades match." in client.get(reverse("market-trades"), {"side": "sell"}).content.decode()
    response = client.get(reverse("market-trades"), {"format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["interval_start", "side", "quantity_wh", "price", "amount", "order_id"]
    assert rows[1][:5] == [iso(NEXT), "buy", "600", "0.15000", "0.0900"]
    client.force_login(bob.user)
    bob_rows = list(csv.reader(io.StringIO(client.get(reverse("market-trades"), {"format": "csv"}).content.decode())))
    assert [r[1] for r in bob_rows[1:]] == ["sell"]


def test_market_pages_need_login(client):
    assert client.get(reverse("market")).status_code == 302
    assert client.get(reverse("market-trades")).status_code == 302
