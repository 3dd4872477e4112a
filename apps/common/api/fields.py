import datetime as dt

from rest_framework import serializers


class UtcDateTimeField(serializers.DateTimeField):
    """Instants as the contract writes them: ISO 8601 in UTC with a trailing Z."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def to_representation(self, value: dt.datetime) -> str | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
