"""The clearing rule as a straightforward sort-and-walk in pure Python: slow, obviously right.

It exists only to check the NumPy engine (``apps.market.matching``): the oracle of the
differential tests in test_matching.py and the baseline bench/clearing.py times the engine
against. It shares no code with the engine beyond its public types and price conversions;
even the midpoint is worked out here in Decimal rather than by the engine's integer trick.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

from apps.market.matching import (
    ClearingResult,
    Mechanism,
    Order,
    Side,
    Trade,
    price_from_scaled,
    price_to_scaled,
    priority_time,
)

Row = tuple[int, bool, int, int, int]  # order_id, is_buy, quantity_wh, price_scaled, submitted


def midpoint_scaled(bid_scaled: int, offer_scaled: int) -> int:
    """The midpoint of two scaled prices, rounded half-even to a whole scaled unit."""
    return int((Decimal(bid_scaled + offer_scaled) / 2).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class WalkClearing:
    """`walk_rows`'s output in plain ints: trades as (buy id, sell id, Wh, buyer price,
    seller price) tuples with scaled prices, fills for matched orders only."""

    mechanism: Mechanism
    price_scaled: int | None
    volume_wh: int
    bids_wh: int
    offers_wh: int
    trades: list[tuple[int, int, int, int, int]]
    filled_wh: dict[int, int]

    def to_result(self, order_ids: Iterable[int]) -> ClearingResult:
        """The result, with a 0 fill for every order of `order_ids` that did not trade."""
        filled = dict.fromkeys(order_ids, 0)
        filled.update(self.filled_wh)
        return ClearingResult(
            mechanism=self.mechanism,
            clearing_price=None if self.price_scaled is None else price_from_scaled(self.price_scaled),
            volume_wh=self.volume_wh,
            bids_wh=self.bids_wh,
            offers_wh=self.offers_wh,
            trades=tuple(
                Trade(
                    buy_order_id=buy_id,
                    sell_order_id=sell_id,
                    quantity_wh=quantity,
                    buyer_price=price_from_scaled(buyer_price),
                    seller_price=price_from_scaled(seller_price),
                )
                for buy_id, sell_id, quantity, buyer_price, seller_price in self.trades
            ),
            filled_wh=MappingProxyType(dict(sorted(filled.items()))),
        )


def walk_rows(rows: Sequence[Row], *, mechanism: Mechanism = Mechanism.PAY_AS_CLEAR) -> WalkClearing:
    """The rule as a straightforward sort-and-walk over plain tuples (rows are trusted)."""
    mechanism = Mechanism(mechanism)
    bids = sorted((row for row in rows if row[1]), key=lambda row: (-row[3], row[4], row[0]))
    offers = sorted((row for row in rows if not row[1]), key=lambda row: (row[3], row[4], row[0]))
    trades: list[tuple[int, int, int, int, int]] = []
    filled: dict[int, int] = {}
    volume_wh = 0
    i = j = 0
    bid_left = bids[0][2] if bids else 0
    offer_left = offers[0][2] if offers else 0
    last_bid = last_offer = None
    while i < len(bids) and j < len(offers):
        bid, offer = bids[i], offers[j]
        if bid[3] < offer[3]:
            break
        quantity = min(bid_left, offer_left)
        trades.append((bid[0], offer[0], quantity, bid[3], offer[3]))
        filled[bid[0]] = filled.get(bid[0], 0) + quantity
        filled[offer[0]] = filled.get(offer[0], 0) + quantity
        volume_wh += quantity
        last_bid, last_offer = bid, offer
        bid_left -= quantity
        offer_left -= quantity
        if not bid_left:
            i += 1
            bid_left = bids[i][2] if i < len(bids) else 0
        if not offer_left:
            j += 1
            offer_left = offers[j][2] if j < len(offers) else 0
    price_scaled = None
    if last_bid is not None and last_offer is not None:
        price_scaled = midpoint_scaled(last_bid[3], last_offer[3])
        if mechanism is Mechanism.PAY_AS_CLEAR:
            trades = [(buy_id, sell_id, q, price_scaled, price_scaled) for buy_id, sell_id, q, _, _ in trades]
    return WalkClearing(
        mechanism=mechanism,
        price_scaled=price_scaled,
        volume_wh=volume_wh,
        bids_wh=sum(bid[2] for bid in bids),
        offers_wh=sum(offer[2] for offer in offers),
        trades=trades,
        filled_wh=filled,
    )


def clear_reference(orders: Iterable[Order], *, mechanism: Mechanism = Mechanism.PAY_AS_CLEAR) -> ClearingResult:
    """Clear a book of `Order`s with the pure-Python sort-and-walk (no NumPy)."""
    orders = tuple(orders)
    if len({order.id for order in orders}) != len(orders):
        raise ValueError("order ids must be unique")
    rows = [
        (
            order.id,
            order.side is Side.BUY,
            order.quantity_wh,
            price_to_scaled(order.limit_price),
            priority_time(order.submitted_at),
        )
        for order in orders
    ]
    return walk_rows(rows, mechanism=mechanism).to_result(order.id for order in orders)
