"""Energy and money helpers: integer Wh, Decimal money rounded half-even, never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MONEY_PLACES = Decimal("0.0001")
STATEMENT_PLACES = Decimal("0.01")
PRICE_PLACES = Decimal("0.00001")


def money_round(value: Decimal) -> Decimal:
    """Round an amount once to the ledger's 4 decimals, half-even."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


def price_round(value: Decimal) -> Decimal:
    """Round a price per kWh to 5 decimals, half-even."""
    return value.quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN)


def energy_amount(quantity_wh: int, price_per_kwh: Decimal) -> Decimal:
    """quantity_wh x price / 1000, rounded once to 4 decimals."""
    if not isinstance(quantity_wh, int):
        raise TypeError("energy is integer Wh")
    return money_round(Decimal(quantity_wh) * price_per_kwh / Decimal(1000))
