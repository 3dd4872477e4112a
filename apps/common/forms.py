"""Form fields for money and prices: the same shape as the columns (``apps.common.units``)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.common.units import PRICE_DECIMAL_PLACES, PRICE_MAX_DIGITS


class PriceFormField(forms.DecimalField):
    """A price per kWh typed by a member: at most 5 decimals."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", PRICE_MAX_DIGITS)
        kwargs.setdefault("decimal_places", PRICE_DECIMAL_PLACES)
        super().__init__(**kwargs)
