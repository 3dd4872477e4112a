"""Automated trading: the forecast and the orders it places, amends and cancels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.market import forecast
from apps.market.choices import OrderSource, OrderStatus, Side
from apps.market.models import Order, TradingPreference
from apps.market.services import auto_orders_run, order_input_parse, order_submit
from tests.conftest import race
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT, NOW, iso
from tests.market.history import history_ingest

TZ = ZoneInfo("Europe/Amsterdam")
HISTORY_START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)


def test_like_days_are_weekdays_for_a_weekday_and_weekends_for_a_weekend():
    monday = dt.datetime(2026, 11, 23, 8, 15, tzinfo=dt.UTC)
    assert [d.day for d in forecast.like_day_starts(monday, TZ)] == [20, 19, 18, 17]
    saturday = dt.datetime(2026, 11, 28, 8, 15, tzinfo=dt.UTC)
    assert [d.day for d in forecast.like_day_starts(saturday, TZ)] == [22, 21, 15, 14]


def test_forecast_is_the_integer_mean_of_the_like_day_slots():
    target = dt.datetime(2026, 11, 23, 8, 15, tzinfo=dt.UTC)
    days = forecast.like_day_starts(target, TZ)
    history = {days[0]: -300, days[1]: -301, days[2]: -302}
    assert forecast.net_forecast_wh(target, history, TZ) == -301
    assert forecast.net_forecast_wh(target, {days[0]: 5}, TZ) is None  # too little history
    # A new member with only a weekend behind them: the most recent days of any kind.
    sunday, saturday = target - dt.timedelta(days=1), target - dt.timedelta(days=2)
    assert forecast.net_forecast_wh(target, {sunday: -100, saturday: -300}, TZ) == -200
    assert forecast.net_forecast_wh(target, {days[0]: 1, days[1]: 2}, TZ) == 2  # 1.5 rounds away from 0


def _seller_net(at: dt.datetime) -> int:
    return -400 if 8 <= at.hour < 10 else 100


@pytest.fixture
def community(db):
    seller, buyer = member_make(), member_make()
    seller_meter, _ = meter_make(seller, installed_at=HISTORY_START)
    buyer_meter, _ = meter_make(buyer, installed_at=HISTORY_START)
    history_ingest(seller_meter, start=HISTORY_START, end=NOW, net_wh=_seller_net, now=NOW)
    history_ingest(buyer_meter, start=HISTORY_START, end=NOW, net_wh=lambda at: 500, now=NOW)
    return seller, buyer


def _auto(member, start=NEXT):
    return Order.objects.filter(member=member, interval__start=start, source=OrderSource.AUTO)


@pytest.mark.django_db
def test_surplus_is_offered_and_deficit_bid_for_and_a_second_run_changes_nothing(community):
    seller, buyer = community
    report = auto_orders_run(now=NOW, intervals=4)
    assert report.placed == 8 and report.errors == 0
    sell = _auto(seller).get()
    assert (sell.side, sell.quantity_wh, sell.status) == (Side.SELL, 400, OrderStatus.OPEN)
    # Default limits lie a quarter into the band [0.07, 0.30]: sellers ask 0.1275, buyers bid 0.2425.
    assert sell.limit_price == Decimal("0.12750")
    buy = _auto(buyer).get()
    assert (buy.side, buy.quantity_wh, buy.limit_price) == (Side.BUY, 500, Decimal("0.24250"))
    again = auto_orders_run(now=NOW, intervals=4)
    assert (again.placed, again.amended, again.cancelled, again.unchanged) == (0, 0, 0, 8)
    assert Order.objects.count() == 8


@pytest.mark.django_db
def test_preferences_amend_and_pause_cancels(community):
    seller, _ = community
    auto_orders_run(now=NOW, intervals=1)
    preference = TradingPreference.objects.create(member=seller, sell_min_price=Decimal("0.15"))
    assert auto_orders_run(now=NOW, intervals=1).amended == 1
    assert _auto(seller).get().limit_price == Decimal("0.15000")
    preference.enabled = False
    preference.save()
    assert auto_orders_run(now=NOW, intervals=1).cancelled == 1
    assert not _auto(seller).filter(status=OrderStatus.OPEN).exists()


@pytest.mark.django_db
def test_a_members_own_order_takes_the_interval_out(community):
    seller, _ = community
    auto_orders_run(now=NOW, intervals=1)
    order_submit(
        member=seller,
        order=order_input_parse(interval_start=iso(NEXT), side="sell", quantity_wh=100, limit_price="0.2", now=NOW),
        now=NOW,
    )
    auto_orders_run(now=NOW, intervals=1)
    orders = Order.objects.filter(member=seller, interval__start=NEXT)
    assert orders.filter(source=OrderSource.MANUAL, status=OrderStatus.OPEN).count() == 1
    assert not orders.filter(source=OrderSource.AUTO, status=OrderStatus.OPEN).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_place_each_order_once(community):
    race(lambda: auto_orders_run(now=NOW, intervals=4))
    assert Order.objects.filter(source=OrderSource.AUTO, status=OrderStatus.OPEN).count() == 8
