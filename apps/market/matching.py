"""The matching engine: one interval's order book in, trades and the result out.

Pure on purpose: no Django, no database, no clock (import-linter keeps it so). The market
services load the book, call `clear_book` (or `clear`) and write what comes back; the same
book always gives the same output, whatever order its orders arrive in.

The rule (DESIGN.md, "Market"): a uniform-price double auction. Bids are ranked by
price descending, offers by price ascending, each then by submission time and then by
lower order id. Walking both rankings, the best remaining bid is matched with the best
remaining offer while the bid's limit is at least the offer's; the last order matched
may be filled partially. Every trade names one buyer and one seller. Pay-as-clear, the
default, prices every trade at the midpoint of the limits of the last matched bid and the
last matched offer, rounded to 5 decimals half-even; pay-as-bid prices each trade at the
buyer's limit for the buyer and the seller's limit for the seller, the spread going to
the coop's market account. Nothing matched: no trades and no price.

Prices travel as integers in units of 10^-5 currency/kWh (`PRICE_SCALE`), energy as
integer Wh, so the hot path is exact NumPy int64 arithmetic and never touches a float.
The same rule as a plain sort-and-walk in pure Python lives beside the tests
(``tests/market/reference_walk.py``): the oracle of the differential tests and the
baseline of bench/clearing.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np

from apps.common.units import PRICE_DECIMAL_PLACES, PRICE_PLACES, energy_amount

__all__ = [
    "MAX_ABS_PRICE_SCALED",
    "PRICE_DECIMALS",
    "PRICE_SCALE",
    "Book",
    "BookClearing",
    "ClearingResult",
    "Mechanism",
    "Order",
    "Side",
    "Trade",
    "clear",
    "clear_book",
    "price_from_scaled",
    "price_to_scaled",
    "priority_time",
]

PRICE_DECIMALS = PRICE_DECIMAL_PLACES
PRICE_SCALE = 10**PRICE_DECIMALS
# |limit price| below 10^9 per kWh keeps every scaled price, its negation and the sum of
# two of them far inside int64.
MAX_ABS_PRICE_SCALED = 10**9 * PRICE_SCALE - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Mechanism(enum.StrEnum):
    """How matched trades are priced; the matching itself is the same for both."""

    PAY_AS_CLEAR = "pay_as_clear"
    PAY_AS_BID = "pay_as_bid"


def price_to_scaled(price: Decimal) -> int:
    """The exact integer number of 10^-5 units in `price`; refuses more than 5 decimals."""
    if not isinstance(price, Decimal) or not price.is_finite():
        raise ValueError(f"limit price must be a finite Decimal, got {price!r}")
    scaled = price.scaleb(PRICE_DECIMALS)
    integral = scaled.to_integral_value()
    if scaled != integral:
        raise ValueError(f"limit price {price} has more than {PRICE_DECIMALS} decimal places")
    value = int(integral)
    if abs(value) > MAX_ABS_PRICE_SCALED:
        raise ValueError(f"limit price {price} is out of range")
    return value


def price_from_scaled(value: int) -> Decimal:
    """The Decimal price, always with exactly 5 decimal places, of a scaled integer."""
    return Decimal(int(value)).scaleb(-PRICE_DECIMALS).quantize(PRICE_PLACES)


def priority_time(submitted_at: datetime | int) -> int:
    """An order's time priority as an integer: microseconds since the epoch for an aware
    datetime; an int (a submission sequence, or microseconds already) is taken as it is.
    One book should use one kind, or the comparison means nothing."""
    if isinstance(submitted_at, datetime):
        if submitted_at.tzinfo is None or submitted_at.utcoffset() is None:
            raise ValueError("submitted_at must be an aware datetime")
        return (submitted_at - _EPOCH) // _ONE_MICROSECOND
    if isinstance(submitted_at, bool) or not isinstance(submitted_at, int):
        raise ValueError(f"submitted_at must be an aware datetime or an int, got {submitted_at!r}")
    if not _INT64_MIN <= submitted_at <= _INT64_MAX:
        raise ValueError("submitted_at is out of range")
    return submitted_at


def _midpoint_scaled(bid_scaled: int, offer_scaled: int) -> int:
    """The midpoint of two scaled prices, rounded half-even to a whole scaled unit."""
    total = bid_scaled + offer_scaled
    half = total // 2  # floor, also for negative totals
    if total % 2 and half % 2:
        half += 1  # exactly halfway: take the even neighbour
    return half


# --- Public plain-data types ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """One order of the book. `submitted_at` is an aware datetime or an integer sequence."""

    id: int
    side: Side
    quantity_wh: int
    limit_price: Decimal
    submitted_at: datetime | int

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not _INT64_MIN <= self.id <= _INT64_MAX:
            raise ValueError(f"order id must be an int64, got {self.id!r}")
        object.__setattr__(self, "side", Side(self.side))
        quantity = self.quantity_wh
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= _INT64_MAX:
            raise ValueError(f"order {self.id}: quantity_wh must be a positive int, got {quantity!r}")
        price_to_scaled(self.limit_price)
        priority_time(self.submitted_at)


@dataclass(frozen=True, slots=True)
class Trade:
    """One buyer, one seller, a quantity, and the price each side pays or gets.

    Under pay-as-clear both prices are the clearing price. Amounts follow DESIGN.md: a
    trade's amount is quantity_wh x price / 1000 rounded once to 4 decimals (half-even);
    `spread_amount` is the difference of the two rounded amounts, so the buyer's debit
    equals the seller's credit plus the coop's spread to the last digit.
    """

    buy_order_id: int
    sell_order_id: int
    quantity_wh: int
    buyer_price: Decimal
    seller_price: Decimal

    @property
    def buyer_amount(self) -> Decimal:
        return energy_amount(self.quantity_wh, self.buyer_price)

    @property
    def seller_amount(self) -> Decimal:
        return energy_amount(self.quantity_wh, self.seller_price)

    @property
    def spread_amount(self) -> Decimal:
        return self.buyer_amount - self.seller_amount


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """The outcome of one interval's clearing.

    `clearing_price` is the midpoint of the last matched pair under either mechanism (the
    interval's published price; under pay-as-bid it prices no trade), None when nothing
    matched. `bids_wh` and `offers_wh` are the total quantities offered on each side.
    `filled_wh` maps every order id of the book to the Wh it got (0 when unmatched).
    Trades come in priority order of the walk.
    """

    mechanism: Mechanism
    clearing_price: Decimal | None
    volume_wh: int
    bids_wh: int
    offers_wh: int
    trades: tuple[Trade, ...]
    filled_wh: MappingProxyType[int, int] = field(repr=False, hash=False)

    @property
    def spread_amount(self) -> Decimal:
        """What the coop's market account receives (zero under pay-as-clear)."""
        return sum((trade.spread_amount for trade in self.trades), Decimal("0.0000"))


# --- NumPy columns: the hot path ------------------------------------------------------


def _column(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got {array.dtype}")
    if array.dtype == np.uint64 and array.size and int(array.max()) > _INT64_MAX:
        raise ValueError(f"{name} is out of int64 range")
    column = np.array(array, dtype=np.int64, copy=True)
    column.flags.writeable = False
    return column


def _check_side_total(quantity_wh: np.ndarray, name: str) -> None:
    """Refuse a side whose cumulative quantity would overflow int64."""
    if not quantity_wh.size:
        return
    if int(quantity_wh.max()) * quantity_wh.size <= _INT64_MAX:
        return  # the cheap bound settles nearly every real book
    if int(quantity_wh.sum(dtype=object)) > _INT64_MAX:
        raise ValueError(f"the {name} quantities sum beyond int64")


@dataclass(frozen=True, eq=False, slots=True)
class Book:
    """An order book as read-only NumPy columns, one row per order, in any row order.

    `price_scaled` is the limit price x 10^5 (see `price_to_scaled`), `submitted` the time
    priority as an integer (see `priority_time`). Build it with `from_orders` or
    `from_arrays`, which check every row; the constructor itself trusts its caller.
    """

    order_id: np.ndarray
    is_buy: np.ndarray
    quantity_wh: np.ndarray
    price_scaled: np.ndarray
    submitted: np.ndarray

    def __len__(self) -> int:
        return int(self.order_id.size)

    @classmethod
    def from_arrays(
        cls,
        *,
        order_id: Any,
        is_buy: Any,
        quantity_wh: Any,
        price_scaled: Any,
        submitted: Any,
    ) -> Book:
        """A checked book from array-likes (copied): unique ids, quantities > 0, prices in range."""
        ids = _column(order_id, "order_id")
        quantity = _column(quantity_wh, "quantity_wh")
        price = _column(price_scaled, "price_scaled")
        time = _column(submitted, "submitted")
        buy = np.asarray(is_buy)
        if buy.ndim != 1 or (buy.size and buy.dtype != np.bool_):
            raise ValueError("is_buy must be a one-dimensional bool array")
        buy = np.array(buy, dtype=np.bool_, copy=True)
        buy.flags.writeable = False
        if not ids.size == buy.size == quantity.size == price.size == time.size:
            raise ValueError("book columns differ in length")
        if ids.size:
            if not (quantity > 0).all():
                raise ValueError("every quantity_wh must be > 0")
            if int(np.abs(price).max()) > MAX_ABS_PRICE_SCALED:
                raise ValueError("a limit price is out of range")
            # Rows loaded by id are already strictly increasing: skip the sort then.
            if not (ids[1:] > ids[:-1]).all():
                sorted_ids = np.sort(ids)
                if (sorted_ids[1:] == sorted_ids[:-1]).any():
                    raise ValueError("order ids must be unique")
            _check_side_total(quantity[buy], "bid")
            _check_side_total(quantity[~buy], "offer")
        return cls(order_id=ids, is_buy=buy, quantity_wh=quantity, price_scaled=price, submitted=time)

    @classmethod
    def from_orders(cls, orders: Iterable[Order]) -> Book:
        orders = tuple(orders)
        return cls.from_arrays(
            order_id=np.array([order.id for order in orders], dtype=np.int64),
            is_buy=np.array([order.side is Side.BUY for order in orders], dtype=np.bool_),
            quantity_wh=np.array([order.quantity_wh for order in orders], dtype=np.int64),
            price_scaled=np.array([price_to_scaled(order.limit_price) for order in orders], dtype=np.int64),
            submitted=np.array([priority_time(order.submitted_at) for order in orders], dtype=np.int64),
        )


@dataclass(frozen=True, eq=False, slots=True)
class BookClearing:
    """The engine's output as columns: trades in walk order, fills aligned with the book.

    `buyer_price_scaled`/`seller_price_scaled` are per trade; `filled_wh[i]` is what row i
    of the book got. `to_result` turns it into plain dataclasses with Decimal prices.
    """

    mechanism: Mechanism
    price_scaled: int | None
    volume_wh: int
    bids_wh: int
    offers_wh: int
    buy_order_id: np.ndarray
    sell_order_id: np.ndarray
    quantity_wh: np.ndarray
    buyer_price_scaled: np.ndarray
    seller_price_scaled: np.ndarray
    order_id: np.ndarray
    filled_wh: np.ndarray

    @property
    def clearing_price(self) -> Decimal | None:
        return None if self.price_scaled is None else price_from_scaled(self.price_scaled)

    def to_result(self) -> ClearingResult:
        return _result(
            mechanism=self.mechanism,
            price_scaled=self.price_scaled,
            volume_wh=self.volume_wh,
            bids_wh=self.bids_wh,
            offers_wh=self.offers_wh,
            trades=zip(
                self.buy_order_id.tolist(),
                self.sell_order_id.tolist(),
                self.quantity_wh.tolist(),
                self.buyer_price_scaled.tolist(),
                self.seller_price_scaled.tolist(),
                strict=True,
            ),
            filled=zip(self.order_id.tolist(), self.filled_wh.tolist(), strict=True),
        )


def _result(
    *,
    mechanism: Mechanism,
    price_scaled: int | None,
    volume_wh: int,
    bids_wh: int,
    offers_wh: int,
    trades: Iterable[tuple[int, int, int, int, int]],
    filled: Iterable[tuple[int, int]],
) -> ClearingResult:
    prices: dict[int, Decimal] = {}

    def price(value: int) -> Decimal:
        if value not in prices:
            prices[value] = price_from_scaled(value)
        return prices[value]

    return ClearingResult(
        mechanism=mechanism,
        clearing_price=None if price_scaled is None else price(price_scaled),
        volume_wh=volume_wh,
        bids_wh=bids_wh,
        offers_wh=offers_wh,
        trades=tuple(
            Trade(
                buy_order_id=buy_id,
                sell_order_id=sell_id,
                quantity_wh=quantity,
                buyer_price=price(buyer_price),
                seller_price=price(seller_price),
            )
            for buy_id, sell_id, quantity, buyer_price, seller_price in trades
        ),
        filled_wh=MappingProxyType(dict(sorted(filled))),
    )


_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False


def _in_time_order(submitted: np.ndarray, order_id: np.ndarray) -> bool:
    """Whether rows already run by (submitted, id), as a loader ordering by them gives."""
    later = submitted[1:] > submitted[:-1]
    tied = submitted[1:] == submitted[:-1]
    return bool((later | (tied & (order_id[1:] > order_id[:-1]))).all())


def _priority(price: np.ndarray, submitted: np.ndarray, order_id: np.ndarray, *, bids: bool) -> np.ndarray:
    """The permutation ranking one side: best price first, then earlier, then lower id.

    Order ids are unique, so the ranking is total and does not depend on the rows' order.
    When the side's prices span fewer than 2^16 units (0.65535/kWh: any real tariff band),
    a stable 16-bit sort on price (NumPy's radix sort, linear) over rows already in
    (submitted, id) order gives the ranking far faster than a three-key lexsort.
    """
    if not price.size:
        return np.zeros(0, dtype=np.intp)
    low, high = int(price.min()), int(price.max())
    if high - low >= 2**16:
        return np.lexsort((order_id, submitted, -price if bids else price))
    in_time = None if _in_time_order(submitted, order_id) else np.lexsort((order_id, submitted))
    if in_time is not None:
        price = price[in_time]
    key = (high - price if bids else price - low).astype(np.uint16)
    ranking = np.argsort(key, kind="stable")
    return ranking if in_time is None else in_time[ranking]


def _taking_part(end: np.ndarray, price: np.ndarray, other_end: np.ndarray, other_price: np.ndarray, bids: bool) -> int:
    """How many orders of one ranking take part in the walk.

    An order takes part iff, at the cumulative volume where it starts, the other side
    still has an order and the two cross. Demand prices fall and supply prices rise with
    volume, so those orders are a prefix of the ranking, found here by bisection.
    """
    low, high = 0, int(end.size)
    while low < high:
        middle = (low + high) // 2
        start = int(end[middle - 1]) if middle else 0
        facing = int(np.searchsorted(other_end, start, side="right"))
        if facing < other_end.size and (
            price[middle] >= other_price[facing] if bids else price[middle] <= other_price[facing]
        ):
            low = middle + 1
        else:
            high = middle
    return low


def clear_book(book: Book, *, mechanism: Mechanism = Mechanism.PAY_AS_CLEAR) -> BookClearing:
    """Clear a book with NumPy: rank each side, find the crossing volume from the cumulative
    quantities, then cut one trade wherever either cumulative sequence steps."""
    mechanism = Mechanism(mechanism)
    buy_rows = np.flatnonzero(book.is_buy)
    sell_rows = np.flatnonzero(~book.is_buy)
    filled = np.zeros(len(book), dtype=np.int64)
    bid_quantity = book.quantity_wh[buy_rows]
    offer_quantity = book.quantity_wh[sell_rows]
    bids_wh = int(bid_quantity.sum())
    offers_wh = int(offer_quantity.sum())
    bid_price = book.price_scaled[buy_rows]
    offer_price = book.price_scaled[sell_rows]

    bids_in = offers_in = 0
    if buy_rows.size and sell_rows.size:
        ranking = _priority(bid_price, book.submitted[buy_rows], book.order_id[buy_rows], bids=True)
        buy_rows, bid_price, bid_end = buy_rows[ranking], bid_price[ranking], np.cumsum(bid_quantity[ranking])
        ranking = _priority(offer_price, book.submitted[sell_rows], book.order_id[sell_rows], bids=False)
        sell_rows, offer_price, offer_end = sell_rows[ranking], offer_price[ranking], np.cumsum(offer_quantity[ranking])
        bids_in = _taking_part(bid_end, bid_price, offer_end, offer_price, bids=True)
        # The best bid crosses the best offer or neither does.
        offers_in = _taking_part(offer_end, offer_price, bid_end, bid_price, bids=False) if bids_in else 0
    if not bids_in:
        return BookClearing(
            mechanism=mechanism,
            price_scaled=None,
            volume_wh=0,
            bids_wh=bids_wh,
            offers_wh=offers_wh,
            buy_order_id=_EMPTY,
            sell_order_id=_EMPTY,
            quantity_wh=_EMPTY,
            buyer_price_scaled=_EMPTY,
            seller_price_scaled=_EMPTY,
            order_id=book.order_id,
            filled_wh=filled,
        )
    volume_wh = int(min(bid_end[bids_in - 1], offer_end[offers_in - 1]))
    price_scaled = _midpoint_scaled(int(bid_price[bids_in - 1]), int(offer_price[offers_in - 1]))

    # Trades: merging the two cumulative sequences (cut at the volume) gives every point
    # where a buyer or a seller changes; each step between two points is one trade.
    bid_cut = np.minimum(bid_end[:bids_in], volume_wh)
    offer_cut = np.minimum(offer_end[:offers_in], volume_wh)
    points = np.concatenate((bid_cut, offer_cut))
    merged = np.argsort(points, kind="stable")  # two sorted runs: a linear merge
    points = points[merged]
    from_bid = merged < bids_in
    first = np.empty(points.size, dtype=np.bool_)  # a point both sides reach counts once
    first[0] = True
    np.not_equal(points[1:], points[:-1], out=first[1:])
    # The buyer of a step is the number of bid points before it; the seller likewise.
    buyer: np.ndarray = (np.cumsum(from_bid) - from_bid)[first]
    seller: np.ndarray = (np.cumsum(~from_bid) - ~from_bid)[first]
    points = points[first]
    quantity = np.diff(points, prepend=0)

    if mechanism is Mechanism.PAY_AS_CLEAR:
        buyer_price = seller_price = np.full(points.size, price_scaled, dtype=np.int64)
    else:
        buyer_price = bid_price[buyer]
        seller_price = offer_price[seller]
    filled[buy_rows[:bids_in]] = np.diff(bid_cut, prepend=0)
    filled[sell_rows[:offers_in]] = np.diff(offer_cut, prepend=0)
    return BookClearing(
        mechanism=mechanism,
        price_scaled=price_scaled,
        volume_wh=volume_wh,
        bids_wh=bids_wh,
        offers_wh=offers_wh,
        buy_order_id=book.order_id[buy_rows[buyer]],
        sell_order_id=book.order_id[sell_rows[seller]],
        quantity_wh=quantity,
        buyer_price_scaled=buyer_price,
        seller_price_scaled=seller_price,
        order_id=book.order_id,
        filled_wh=filled,
    )


def clear(orders: Iterable[Order], *, mechanism: Mechanism = Mechanism.PAY_AS_CLEAR) -> ClearingResult:
    """Clear a book of `Order`s with the NumPy engine."""
    return clear_book(Book.from_orders(orders), mechanism=mechanism).to_result()
