import datetime as dt

from rest_framework import serializers

from apps.common.units import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, PRICE_DECIMAL_PLACES, PRICE_MAX_DIGITS


class UtcDateTimeField(serializers.DateTimeField):
    """Instants as the contract writes them: ISO 8601 in UTC with a trailing Z."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def to_representation(self, value: dt.datetime) -> str | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class MoneyField(serializers.DecimalField):
    """An amount as the contract writes it: a decimal string with 4 places."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(**kwargs)  # type: ignore[arg-type]


class PriceField(serializers.DecimalField):
    """A price per kWh as the contract writes it: a decimal string with 5 places."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", PRICE_MAX_DIGITS)
        kwargs.setdefault("decimal_places", PRICE_DECIMAL_PLACES)
        super().__init__(**kwargs)  # type: ignore[arg-type]
