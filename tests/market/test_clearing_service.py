"""Clearing in PostgreSQL: once per interval, under concurrency, failure and SIGKILL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from apps.common.exceptions import Conflict
from apps.market.choices import IntervalState, Mechanism, OrderStatus
from apps.market.models import ClearingResult, Interval, Order, Trade
from apps.market.services import clearing, interval_clear, order_input_parse, order_submit
from tests.conftest import race, sigkill_mid_transaction
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT, NOW, iso

pytestmark = pytest.mark.postgres


def _order(member, side: str, quantity_wh: int, price: str):
    order, _ = order_submit(
        member=member,
        order=order_input_parse(
            interval_start=iso(NEXT), side=side, quantity_wh=quantity_wh, limit_price=price, now=NOW
        ),
        now=NOW,
    )
    return order


def _book() -> dict[str, Order]:
    """Bids 0.25 × 1000, 0.20 × 1500, 0.11 × 800 against offers 0.10 × 1200, 0.18 × 2000."""
    members = [member_make() for _ in range(5)]
    for m in members[3:]:
        meter_make(m)
    return {
        "b1": _order(members[0], "buy", 1000, "0.25"),
        "b2": _order(members[1], "buy", 1500, "0.20"),
        "b3": _order(members[2], "buy", 800, "0.11"),
        "s1": _order(members[3], "sell", 1200, "0.10"),
        "s2": _order(members[4], "sell", 2000, "0.18"),
    }


@pytest.mark.django_db
def test_clearing_writes_trades_fills_and_one_result(django_capture_on_commit_callbacks, monkeypatch):
    orders = _book()
    sent = []
    monkeypatch.setattr("apps.realtime.broadcast.broadcast_many", lambda items: sent.extend(items))
    # Every member but the first buyer has a live socket.
    monkeypatch.setattr(
        "apps.realtime.selectors.members_listening",
        lambda member_ids: set(member_ids) - {orders["b1"].member_id},
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = interval_clear(start=NEXT, now=NEXT)

    # Walk: b1 (0.25) takes 1000 of s1; b2 (0.20) takes s1's 200 and 1300 of s2 (0.18); b3 (0.11)
    # does not cross s2. Last matched: bid 0.20 and offer 0.18 -> price 0.19000.
    assert result.price == Decimal("0.19000")
    assert (result.volume_wh, result.bids_wh, result.offers_wh) == (2500, 3300, 3200)
    trades = list(Trade.objects.order_by("pk").values_list("buy_order_id", "sell_order_id", "quantity_wh"))
    assert trades == [
        (orders["b1"].pk, orders["s1"].pk, 1000),
        (orders["b2"].pk, orders["s1"].pk, 200),
        (orders["b2"].pk, orders["s2"].pk, 1300),
    ]
    assert Trade.objects.get(quantity_wh=1300).buyer_amount == Decimal("0.2470")
    status = {k: Order.objects.get(pk=o.pk) for k, o in orders.items()}
    assert (status["b1"].status, status["b1"].filled_wh) == (OrderStatus.FILLED, 1000)
    assert (status["b2"].status, status["b2"].filled_wh) == (OrderStatus.FILLED, 1500)
    assert (status["b3"].status, status["b3"].filled_wh) == (OrderStatus.UNFILLED, 0)
    assert (status["s2"].status, status["s2"].filled_wh) == (OrderStatus.PARTIALLY_FILLED, 1300)
    assert Interval.objects.get(start=NEXT).state == IntervalState.CLEARED
    # P2P money balances in pay-as-clear: what buyers pay is what sellers get.
    trades_qs = Trade.objects.all()
    assert sum(t.buyer_amount for t in trades_qs) == sum(t.seller_amount for t in trades_qs)

    # Published after commit: the price to everyone, each fill to its member only.
    types = [(payload.type, member_id) for payload, member_id in sent]
    assert types[0] == ("market.cleared", None)
    fills = {payload.order_id: (payload.quantity_wh, member_id) for payload, member_id in sent[1:]}
    assert fills[orders["s2"].pk] == (1300, orders["s2"].member_id)
    assert orders["b3"].pk not in fills  # not filled
    assert orders["b1"].pk not in fills  # filled, but nobody listening

    # Clearing again changes nothing.
    again = interval_clear(start=NEXT, now=NEXT)
    assert again.pk == result.pk and Trade.objects.count() == 3


@pytest.mark.django_db
def test_pay_as_bid_prices_each_side_at_its_own_limit():
    _book()
    result = interval_clear(start=NEXT, now=NEXT, mechanism=Mechanism.PAY_AS_BID)
    assert result.mechanism == Mechanism.PAY_AS_BID
    for trade in Trade.objects.select_related("buy_order", "sell_order"):
        assert trade.buyer_price == trade.buy_order.limit_price
        assert trade.seller_price == trade.sell_order.limit_price
        assert trade.buyer_amount >= trade.seller_amount  # the spread goes to the coop


@pytest.mark.django_db
def test_clearing_before_gate_closure_is_refused():
    _book()
    with pytest.raises(Conflict):
        interval_clear(start=NEXT, now=NOW)
    assert not ClearingResult.objects.exists()


@pytest.mark.django_db
def test_the_pymarket_tie_case_clears():
    buyers = [member_make() for _ in range(3)]
    sellers = [member_make() for _ in range(3)]
    for s in sellers:
        meter_make(s)
    for member, price in zip(buyers, ("0.30", "0.15", "0.08"), strict=True):
        _order(member, "buy", 1000, price)
    for member, price in zip(sellers, ("0.07", "0.15", "0.25"), strict=True):
        _order(member, "sell", 1000, price)
    result = interval_clear(start=NEXT, now=NEXT)
    assert result.volume_wh == 2000 and result.price == Decimal("0.15000")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_clearings_write_once():
    _book()
    results = race(lambda: interval_clear(start=NEXT, now=NEXT).pk)
    assert len(set(results)) == 1
    assert ClearingResult.objects.count() == 1 and Trade.objects.count() == 3


@pytest.mark.django_db
def test_a_failure_half_way_leaves_nothing_and_the_rerun_completes(monkeypatch):
    _book()

    def boom(*args, **kwargs):
        raise RuntimeError("worker died half-way")

    monkeypatch.setattr(clearing, "_orders_write", boom)
    with pytest.raises(RuntimeError):
        interval_clear(start=NEXT, now=NEXT)
    assert not Trade.objects.exists() and not ClearingResult.objects.exists()
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.OPEN}
    monkeypatch.undo()
    assert interval_clear(start=NEXT, now=NEXT).volume_wh == 2500
    assert Trade.objects.count() == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_clearing_leaves_nothing_half_written(tmp_path):
    _book()
    recorded = sigkill_mid_transaction(
        module="apps.market.services.clearing",
        step="_trades_write",
        call=f"interval_clear(start=parse_instant({iso(NEXT)!r}), now=parse_instant({iso(NEXT)!r}))",
        marker=tmp_path / "trades-written",
    )
    # The trades were inserted, not committed, when the process died.
    assert recorded == "3"
    assert not Trade.objects.exists() and not ClearingResult.objects.exists()
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.OPEN}
    result = interval_clear(start=NEXT, now=NEXT)
    assert result.trades_count == 3 and Trade.objects.count() == 3


@pytest.mark.django_db
def test_market_clear_command_clears_what_is_due_and_is_idempotent(settings, capsys):
    _book()
    settings.ENERGYCOOP_CLOCK = iso(NEXT)
    call_command("market_clear")
    assert "price=0.19000" in capsys.readouterr().out
    call_command("market_clear")
    assert "Nothing to clear." in capsys.readouterr().out
    call_command("market_clear", "--interval", iso(NEXT))
    assert "price=0.19000" in capsys.readouterr().out
    assert ClearingResult.objects.count() == 1
