"""``{% price_tile %}``: the live price tile (templates/realtime/_price_tile.html) with its data."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from apps.common.clock import format_instant, parse_instant
from apps.realtime.selectors import cleared_recent

register = template.Library()


def cleared_for_display(message: dict[str, Any]) -> dict[str, Any]:
    """A market.cleared message (strings, as sockets get it) with an aware ``interval_start``."""
    return {**message, "interval_start": parse_instant(message["interval_start"])}


@register.filter
def instant(value: Any) -> str:
    """An aware datetime as the contract spells instants (UTC, trailing Z), as live.js sees them."""
    return format_instant(value) if value else ""


@register.inclusion_tag("realtime/_price_tile.html", takes_context=True)
def price_tile(context: template.Context, last_cleared: Any = None, live_url: str = "/ws/live/") -> dict[str, Any]:
    """The tile for the last cleared interval: ``last_cleared`` if the page has it (e.g. from the
    market's own results), else the last ``market.cleared`` the live stream announced."""
    if last_cleared is None:
        recent = cleared_recent(limit=1)
        last_cleared = cleared_for_display(recent[0]) if recent else None
    return {
        "last_cleared": last_cleared,
        "live_url": live_url,
        "CURRENCY": context.get("CURRENCY", settings.CURRENCY),
    }
