"""The matching engine (apps/market/matching.py): the rule on worked books, the edge cases,
and its invariants under Hypothesis, the NumPy engine checked against the pure-Python
sort-and-walk (tests/market/reference_walk.py). No database: the engine is pure."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.market.matching import (
    Book,
    ClearingResult,
    Mechanism,
    Order,
    Side,
    clear,
    clear_book,
    price_from_scaled,
    price_to_scaled,
)
from tests.conftest import ROOT
from tests.market.reference_walk import clear_reference, walk_rows

BUY, SELL = Side.BUY, Side.SELL
MECHANISMS = list(Mechanism)


def bid(order_id: int, price: str, quantity_wh: int = 1, at: int = 0) -> Order:
    return Order(id=order_id, side=BUY, quantity_wh=quantity_wh, limit_price=Decimal(price), submitted_at=at)


def offer(order_id: int, price: str, quantity_wh: int = 1, at: int = 0) -> Order:
    return Order(id=order_id, side=SELL, quantity_wh=quantity_wh, limit_price=Decimal(price), submitted_at=at)


def both(orders: list[Order], mechanism: Mechanism = Mechanism.PAY_AS_CLEAR) -> ClearingResult:
    """Clear with the engine and with the reference; they must agree exactly."""
    result = clear(orders, mechanism=mechanism)
    assert clear_reference(orders, mechanism=mechanism) == result
    return result


def pairs(result: ClearingResult) -> list[tuple[int, int, int]]:
    return [(trade.buy_order_id, trade.sell_order_id, trade.quantity_wh) for trade in result.trades]


# --- The rule on worked books ---------------------------------------------------------


def test_marginal_pair_at_equal_prices_clears_pymarket_case() -> None:
    # pymarket's huang finds no trade here; the rule trades 2 units at 5.
    orders = [bid(1, "10"), bid(2, "5"), bid(3, "3"), offer(4, "1"), offer(5, "5"), offer(6, "8")]
    result = both(orders)
    assert result.clearing_price == Decimal("5.00000")
    assert result.volume_wh == 2
    assert pairs(result) == [(1, 4, 1), (2, 5, 1)]
    assert dict(result.filled_wh) == {1: 1, 2: 1, 3: 0, 4: 1, 5: 1, 6: 0}
    assert (result.bids_wh, result.offers_wh) == (3, 3)


def test_last_order_is_filled_partially_and_price_is_the_midpoint() -> None:
    orders = [bid(1, "0.30", 5000), offer(2, "0.10", 2000), offer(3, "0.20", 2000), offer(4, "0.35", 5000)]
    result = both(orders)
    assert pairs(result) == [(1, 2, 2000), (1, 3, 2000)]
    assert result.volume_wh == 4000
    assert dict(result.filled_wh) == {1: 4000, 2: 2000, 3: 2000, 4: 0}
    assert result.clearing_price == Decimal("0.25000")  # (0.30 + 0.20) / 2
    assert {trade.buyer_price for trade in result.trades} == {Decimal("0.25000")}


def test_trades_pair_buyers_and_sellers_in_priority_order() -> None:
    orders = [
        bid(1, "0.30", 3),
        bid(2, "0.25", 3),
        offer(3, "0.10", 2),
        offer(4, "0.12", 2),
        offer(5, "0.20", 4),
    ]
    result = both(orders)
    assert pairs(result) == [(1, 3, 2), (1, 4, 1), (2, 4, 1), (2, 5, 2)]
    assert result.volume_wh == 6
    assert result.clearing_price == Decimal("0.22500")  # bid 2 (0.25) and offer 5 (0.20)
    assert result.filled_wh[5] == 2


def test_bids_above_the_price_may_stay_unmatched_when_offers_run_out() -> None:
    result = both([bid(1, "0.40", 10), bid(2, "0.39", 10), offer(3, "0.05", 10)])
    assert pairs(result) == [(1, 3, 10)]
    assert result.clearing_price == Decimal("0.22500")
    assert result.filled_wh[2] == 0


def test_midpoint_rounds_half_even_to_five_decimals() -> None:
    down = both([bid(1, "0.10001"), offer(2, "0.10000")])  # 0.100005 -> 0.10000
    up = both([bid(1, "0.10003"), offer(2, "0.10000")])  # 0.100015 -> 0.10002
    assert down.clearing_price == Decimal("0.10000")
    assert up.clearing_price == Decimal("0.10002")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pay_as_bid_prices_each_side_at_its_limit_and_the_spread_goes_to_the_coop(mechanism: Mechanism) -> None:
    orders = [bid(1, "0.30", 1000), bid(2, "0.24", 1000), offer(3, "0.10", 1500), offer(4, "0.20", 500)]
    result = both(orders, mechanism)
    assert pairs(result) == [(1, 3, 1000), (2, 3, 500), (2, 4, 500)]
    assert result.clearing_price == Decimal("0.22000")
    if mechanism is Mechanism.PAY_AS_CLEAR:
        assert all(trade.buyer_price == trade.seller_price == Decimal("0.22000") for trade in result.trades)
        assert result.spread_amount == 0
    else:
        assert [(trade.buyer_price, trade.seller_price) for trade in result.trades] == [
            (Decimal("0.30000"), Decimal("0.10000")),
            (Decimal("0.24000"), Decimal("0.10000")),
            (Decimal("0.24000"), Decimal("0.20000")),
        ]
        # 1000 x 0.20 + 500 x 0.14 + 500 x 0.04, per kWh
        assert result.spread_amount == Decimal("0.2900")


def test_trade_amounts_round_once_and_balance_with_the_spread() -> None:
    result = both([bid(1, "0.33333", 7), offer(2, "0.11111", 7)], Mechanism.PAY_AS_BID)
    (trade,) = result.trades
    assert trade.buyer_amount == Decimal("0.0023")  # 0.00233331
    assert trade.seller_amount == Decimal("0.0008")  # 0.00077777
    assert trade.buyer_amount == trade.seller_amount + trade.spread_amount


# --- Edge cases -----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_empty_book(mechanism: Mechanism) -> None:
    result = both([], mechanism)
    assert result == ClearingResult(mechanism, None, 0, 0, 0, (), result.filled_wh)
    assert dict(result.filled_wh) == {}


@pytest.mark.parametrize("side", [BUY, SELL])
def test_one_side_only(side: Side) -> None:
    orders = [Order(id=i, side=side, quantity_wh=100, limit_price=Decimal("0.2"), submitted_at=0) for i in (1, 2)]
    result = both(orders)
    assert (result.clearing_price, result.volume_wh, result.trades) == (None, 0, ())
    assert (result.bids_wh, result.offers_wh) == ((200, 0) if side is BUY else (0, 200))
    assert dict(result.filled_wh) == {1: 0, 2: 0}


def test_no_crossing() -> None:
    result = both([bid(1, "0.19999", 100), offer(2, "0.20000", 100)])
    assert (result.clearing_price, result.volume_wh, result.trades) == (None, 0, ())


def test_all_orders_at_one_price() -> None:
    orders = [bid(1, "0.2", 300), bid(2, "0.2", 300), offer(3, "0.2", 200), offer(4, "0.2", 200)]
    result = both(orders)
    assert result.clearing_price == Decimal("0.20000")
    assert pairs(result) == [(1, 3, 200), (1, 4, 100), (2, 4, 100)]
    assert dict(result.filled_wh) == {1: 300, 2: 100, 3: 200, 4: 200}


def test_ties_in_price_go_to_the_earlier_order_then_to_the_lower_id() -> None:
    orders = [
        bid(7, "0.2", 100, at=5),
        bid(9, "0.2", 100, at=1),
        bid(3, "0.2", 100, at=5),
        offer(8, "0.1", 100, at=9),
        offer(2, "0.1", 100, at=9),
    ]
    result = both(orders)
    assert pairs(result) == [(9, 2, 100), (3, 8, 100)]
    assert result.filled_wh[7] == 0


def test_ties_with_datetimes_as_submission_times() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    orders = [
        Order(id=5, side=BUY, quantity_wh=1, limit_price=Decimal("0.3"), submitted_at=t0 + timedelta(microseconds=1)),
        Order(id=6, side=BUY, quantity_wh=1, limit_price=Decimal("0.3"), submitted_at=t0),
        Order(id=1, side=SELL, quantity_wh=1, limit_price=Decimal("0.1"), submitted_at=t0),
    ]
    assert pairs(both(orders)) == [(6, 1, 1)]


def test_zero_prices() -> None:
    result = both([bid(1, "0", 10), offer(2, "0.00000", 10), offer(3, "0", 5)])
    assert result.clearing_price == Decimal("0.00000")
    assert pairs(result) == [(1, 2, 10)]
    nothing = both([bid(1, "0", 10), offer(2, "0.00001", 10)])
    assert nothing.volume_wh == 0


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_single_huge_order(mechanism: Mechanism) -> None:
    huge = 10**12
    orders = [bid(1, "0.40", huge)] + [offer(i, "0.05", 3000) for i in range(2, 6)]
    result = both(orders, mechanism)
    assert result.volume_wh == 12000
    assert result.filled_wh[1] == 12000
    assert result.bids_wh == huge
    both([bid(1, "0.40", huge), offer(2, "0.05", huge), offer(3, "0.05", huge)], mechanism)


def test_negative_limit_prices_clear_by_the_same_rule() -> None:
    result = both([bid(1, "-0.00001"), offer(2, "-0.00004")])
    assert result.clearing_price == Decimal("-0.00002")  # -0.000025 -> even neighbour


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity_wh": 0}, "quantity_wh"),
        ({"quantity_wh": -1}, "quantity_wh"),
        ({"quantity_wh": True}, "quantity_wh"),
        ({"limit_price": Decimal("0.123456")}, "decimal places"),
        ({"limit_price": Decimal("NaN")}, "finite"),
        ({"limit_price": 0.1}, "Decimal"),
        ({"limit_price": Decimal("1e10")}, "out of range"),
        ({"submitted_at": datetime(2030, 1, 1)}, "aware"),  # naive on purpose
        ({"side": "hold"}, "hold"),
    ],
)
def test_invalid_orders_are_refused(kwargs: dict, message: str) -> None:
    fields = {"id": 1, "side": BUY, "quantity_wh": 1, "limit_price": Decimal("0.1"), "submitted_at": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        Order(**fields)


def test_a_price_with_trailing_zeros_is_still_five_decimals() -> None:
    assert price_to_scaled(Decimal("0.1000000")) == 10000
    assert price_from_scaled(10000) == Decimal("0.10000")
    assert str(price_from_scaled(0)) == "0.00000"


def test_duplicate_ids_are_refused() -> None:
    orders = [bid(2, "0.2"), offer(1, "0.1"), offer(2, "0.1")]
    with pytest.raises(ValueError, match="unique"):
        clear(orders)
    with pytest.raises(ValueError, match="unique"):
        clear_reference(orders)


def test_book_from_arrays_checks_its_columns() -> None:
    good = {
        "order_id": [1, 2],
        "is_buy": [True, False],
        "quantity_wh": [1, 1],
        "price_scaled": [20000, 10000],
        "submitted": [0, 0],
    }
    book = Book.from_arrays(**good)
    assert len(book) == 2
    assert not book.price_scaled.flags.writeable
    assert clear_book(book).volume_wh == 1
    for bad, message in [
        ({"quantity_wh": [1, 0]}, "quantity_wh"),
        ({"price_scaled": [0.2, 0.1]}, "integers"),
        ({"is_buy": [1, 0]}, "bool"),
        ({"order_id": [1]}, "length"),
        ({"price_scaled": [10**15, 0]}, "range"),
        ({"quantity_wh": [2**62, 2**62], "is_buy": [True, True]}, "int64"),
    ]:
        with pytest.raises(ValueError, match=message):
            Book.from_arrays(**(good | bad))


def test_the_engine_imports_without_django() -> None:
    code = "import sys, apps.market.matching; assert not any(m.startswith('django') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PATH": "/usr/bin:/bin"})


# --- Invariants -----------------------------------------------------------------------

# Few distinct prices and times so that ties and equal marginal prices come up often.
PRICES = st.integers(min_value=0, max_value=12).map(lambda n: Decimal(n * 2500).scaleb(-5))


@st.composite
def books(draw: st.DrawFn, max_size: int = 24) -> list[Order]:
    size = draw(st.integers(min_value=0, max_value=max_size))
    ids = draw(st.lists(st.integers(min_value=1, max_value=10**6), min_size=size, max_size=size, unique=True))
    return [
        Order(
            id=order_id,
            side=draw(st.sampled_from([BUY, SELL])),
            quantity_wh=draw(st.one_of(st.integers(1, 50), st.integers(1, 10**12))),
            limit_price=draw(st.one_of(PRICES, st.decimals(min_value=0, max_value=1, places=5))),
            submitted_at=draw(st.integers(min_value=0, max_value=3)),
        )
        for order_id in ids
    ]


def max_crossing_volume(orders: list[Order]) -> int:
    """The most that can trade at any single price, by brute force over the limit prices."""
    best = 0
    for price in {order.limit_price for order in orders}:
        demand = sum(order.quantity_wh for order in orders if order.side is BUY and order.limit_price >= price)
        supply = sum(order.quantity_wh for order in orders if order.side is SELL and order.limit_price <= price)
        best = max(best, min(demand, supply))
    return best


def priority(order: Order) -> tuple:
    sign = -1 if order.side is BUY else 1
    return (sign * order.limit_price, order.submitted_at, order.id)


@settings(max_examples=200, deadline=None)
@given(orders=books(), mechanism=st.sampled_from(MECHANISMS))
def test_invariants(orders: list[Order], mechanism: Mechanism) -> None:
    result = clear(orders, mechanism=mechanism)
    by_id = {order.id: order for order in orders}

    assert set(result.filled_wh) == set(by_id)
    for order_id, filled_wh in result.filled_wh.items():
        assert 0 <= filled_wh <= by_id[order_id].quantity_wh  # no order overfilled
    for trade in result.trades:
        buyer, seller = by_id[trade.buy_order_id], by_id[trade.sell_order_id]
        assert (buyer.side, seller.side) == (BUY, SELL)
        assert trade.quantity_wh > 0
        assert trade.buyer_price <= buyer.limit_price  # buyers pay at most their limit
        assert trade.seller_price >= seller.limit_price  # sellers get at least theirs
        if mechanism is Mechanism.PAY_AS_CLEAR:
            assert trade.buyer_price == trade.seller_price == result.clearing_price
        else:
            assert (trade.buyer_price, trade.seller_price) == (buyer.limit_price, seller.limit_price)
        assert trade.buyer_amount == trade.seller_amount + trade.spread_amount
        assert trade.spread_amount >= 0

    volume = result.volume_wh
    assert volume == max_crossing_volume(orders)
    bought = sum(wh for order_id, wh in result.filled_wh.items() if by_id[order_id].side is BUY)
    sold = sum(wh for order_id, wh in result.filled_wh.items() if by_id[order_id].side is SELL)
    assert bought == sold == sum(trade.quantity_wh for trade in result.trades) == volume
    assert result.bids_wh == sum(order.quantity_wh for order in orders if order.side is BUY)
    assert result.offers_wh == sum(order.quantity_wh for order in orders if order.side is SELL)
    assert (result.clearing_price is None) == (volume == 0) == (result.trades == ())

    # Price-time priority: an order short of full only if every better one is full, and
    # at most one order per side is filled partially.
    for side in (BUY, SELL):
        ranked = sorted((order for order in orders if order.side is side), key=priority)
        fills = [result.filled_wh[order.id] for order in ranked]
        full = [fill == order.quantity_wh for fill, order in zip(fills, ranked, strict=True)]
        if False in full:
            first_short = full.index(False)
            assert not any(fills[first_short + 1 :])


@settings(max_examples=150, deadline=None)
@given(orders=books(max_size=40), mechanism=st.sampled_from(MECHANISMS))
def test_engine_equals_reference(orders: list[Order], mechanism: Mechanism) -> None:
    assert clear(orders, mechanism=mechanism) == clear_reference(orders, mechanism=mechanism)


@settings(max_examples=100, deadline=None)
@given(orders=books(), mechanism=st.sampled_from(MECHANISMS), data=st.data())
def test_deterministic_under_shuffling(orders: list[Order], mechanism: Mechanism, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(orders))
    assert clear(shuffled, mechanism=mechanism) == clear(orders, mechanism=mechanism)
    assert clear_reference(shuffled, mechanism=mechanism) == clear(orders, mechanism=mechanism)


@pytest.mark.parametrize(
    ("seed", "price_high", "rows_in_time_order"),
    [
        (1, 40_000, True),  # a tariff band's span, rows as loaded by (submitted, id): radix sort as they are
        (2, 40_000, False),  # rows in any order: ranked by (submitted, id) first
        (3, 2_000_000, True),  # prices spanning more than 2^16 units: the three-key lexsort
    ],
)
def test_engine_equals_the_walk_on_a_large_random_book(seed: int, price_high: int, rows_in_time_order: bool) -> None:
    rng = np.random.default_rng(seed)
    size = 20_000
    submitted = rng.integers(0, 50, size)  # few distinct times: many ties
    order_id = rng.permutation(size).astype(np.int64) + 1
    if rows_in_time_order:
        submitted, order_id = np.sort(submitted), np.arange(1, size + 1)
    columns = {
        "order_id": order_id,
        "is_buy": rng.random(size) < 0.5,
        "quantity_wh": rng.integers(100, 5001, size),
        "price_scaled": rng.integers(5_000, price_high + 1, size) // 100 * 100,  # coarse: many ties
        "submitted": submitted,
    }
    book = Book.from_arrays(**columns)
    rows = list(zip(*(np.asarray(columns[name]).tolist() for name in columns), strict=True))
    for mechanism in MECHANISMS:
        engine = clear_book(book, mechanism=mechanism)
        walk = walk_rows(rows, mechanism=mechanism)
        assert engine.volume_wh > 0
        assert (engine.price_scaled, engine.volume_wh) == (walk.price_scaled, walk.volume_wh)
        assert engine.to_result() == walk.to_result(order_id.tolist())
