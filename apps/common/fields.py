"""Model fields for money and prices: one ``max_digits`` and one scale each (``units``).

They deconstruct as plain ``DecimalField`` so migrations show the column, not the helper.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.common.units import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, PRICE_DECIMAL_PLACES, PRICE_MAX_DIGITS


class MoneyField(models.DecimalField):
    """An amount in the coop's currency, 4 decimals (rounded once, half-even, by ``money_round``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


class PriceField(models.DecimalField):
    """A price per kWh, 5 decimals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", PRICE_MAX_DIGITS)
        kwargs.setdefault("decimal_places", PRICE_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs
