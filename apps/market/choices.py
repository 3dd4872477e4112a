"""Market statuses with their allowed transitions declared once."""

from django.db import models


class IntervalState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Gate closed"
    CLEARED = "cleared", "Cleared"
    SETTLED = "settled", "Settled"


# ``open`` and ``closed`` follow from the clock (gate closure); the stored state moves forward only.
INTERVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    IntervalState.OPEN: frozenset({IntervalState.CLOSED, IntervalState.CLEARED}),
    IntervalState.CLOSED: frozenset({IntervalState.CLEARED}),
    IntervalState.CLEARED: frozenset({IntervalState.SETTLED}),
    IntervalState.SETTLED: frozenset(),
}


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    CANCELLED = "cancelled", "Cancelled"
    FILLED = "filled", "Filled"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    UNFILLED = "unfilled", "Unfilled"


ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.OPEN: frozenset(
        {OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNFILLED}
    ),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.PARTIALLY_FILLED: frozenset(),
    OrderStatus.UNFILLED: frozenset(),
}


class OrderSource(models.TextChoices):
    MANUAL = "manual", "Placed by the member"
    AUTO = "auto", "Automated trading"


class OrderEventKind(models.TextChoices):
    PLACED = "placed", "Placed"
    AMENDED = "amended", "Amended"
    CANCELLED = "cancelled", "Cancelled"
    FILLED = "filled", "Filled"
    EXPIRED = "expired", "Not matched"


class Mechanism(models.TextChoices):
    PAY_AS_CLEAR = "pay_as_clear", "Uniform price (pay-as-clear)"
    PAY_AS_BID = "pay_as_bid", "Pay-as-bid"
