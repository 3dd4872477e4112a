"""Energy and money helpers: integer Wh, Decimal money rounded half-even, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

# One shape for money and one for prices, everywhere: model columns, serializers, forms and
# the pure cores (``apps.common.fields`` and ``apps.common.api.fields`` build on these).
MONEY_MAX_DIGITS = 20
MONEY_DECIMAL_PLACES = 4
PRICE_MAX_DIGITS = 10
PRICE_DECIMAL_PLACES = 5
MONEY_PLACES = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)  # 0.0001
PRICE_PLACES = Decimal(1).scaleb(-PRICE_DECIMAL_PLACES)  # 0.00001
STATEMENT_PLACES = Decimal("0.01")


def money_round(value: Decimal) -> Decimal:
    """Round an amount once to the ledger's 4 decimals, half-even."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


def price_round(value: Decimal) -> Decimal:
    """Round a price per kWh to 5 decimals, half-even."""
    return value.quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN)


def is_price(value: object) -> bool:
    """A Decimal with at most the price's 5 decimal places (what the market accepts)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return False
    if abs(value) >= Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_DECIMAL_PLACES):
        return False  # wider than the price column (and than quantize can hold)
    return value == value.quantize(PRICE_PLACES)


def energy_amount(quantity_wh: int, price_per_kwh: Decimal) -> Decimal:
    """quantity_wh x price / 1000, rounded once to 4 decimals."""
    if not isinstance(quantity_wh, int):
        raise TypeError("energy is integer Wh")
    return money_round(Decimal(quantity_wh) * price_per_kwh / Decimal(1000))
