"""Query parameters shared by the API views, refused with the contract's 400 when malformed."""

from __future__ import annotations

import datetime as dt

from rest_framework.request import Request

from apps.common import clock
from apps.common.exceptions import ValidationFailed


def instant_param(request: Request, name: str) -> dt.datetime | None:
    """The ISO 8601 UTC instant in query parameter ``name``, or None when it is absent."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return clock.parse_instant(value)
    except ValueError:
        raise ValidationFailed(
            f"{name} is not an ISO 8601 UTC instant.", fields={name: ["Not a UTC instant."]}
        ) from None
