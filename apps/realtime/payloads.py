"""The typed live messages: one frozen dataclass per ``type`` of CONTRACT.md's "Live" section.

Callers build a payload from domain values (aware datetimes, ``Decimal`` prices, integer Wh)
and hand it to :func:`apps.realtime.broadcast.broadcast`. :meth:`LivePayload.as_message`
turns it into the JSON object a socket receives: the contract's field names, plus ``type``
and ``version``; instants as ISO 8601 UTC with a trailing ``Z``, prices as decimal strings
with 5 places (as the REST API writes them), energy as integer Wh, power as integer W.

Values are checked when the payload is built, inside the caller's transaction, so a wrong
value fails the use case that made it rather than a callback after commit. A change that
breaks readers takes a new ``version``; adding a field does not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from apps.common.clock import format_instant
from apps.common.units import price_round

ALERT_LEVELS = frozenset({"info", "warning", "critical"})
DR_STATUSES = frozenset({"scheduled", "active", "completed", "cancelled"})


def _instant(value: dt.datetime, name: str) -> str:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise TypeError(f"{name} must be an aware datetime, got {value!r}")
    return format_instant(value)


def _price(value: Decimal | None, name: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{name} must be a finite Decimal (prices are never floats), got {value!r}")
    return format(price_round(value), "f")


def _integer(value: int, name: str, *, minimum: int | None = 0) -> int:
    # bool is an int subclass; True Wh is a bug, not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _text(value: str, name: str, *, allowed: frozenset[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def _identifier(value: int | str | uuid.UUID, name: str) -> int | str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise TypeError(f"{name} must be an int, a UUID or a non-empty string, got {value!r}")
    return value


def _percent(value: float | int | Decimal, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return round(number, 1)


def _levels(rows: Sequence[Sequence[Any]], name: str) -> list[list[str | int | None]]:
    levels: list[list[str | int | None]] = []
    for index, row in enumerate(rows):
        if len(row) != 2:
            raise ValueError(f"{name}[{index}] must be a (price, quantity_wh) pair, got {row!r}")
        levels.append([_price(row[0], f"{name}[{index}].price"), _integer(row[1], f"{name}[{index}].quantity_wh")])
    return levels


class LivePayload(ABC):
    """What every live message has: a ``type``, a ``version`` and its fields as JSON values."""

    type: ClassVar[str]
    version: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self.fields()

    @abstractmethod
    def fields(self) -> dict[str, Any]:
        """The payload's own fields as JSON values (each type defines them)."""

    def as_message(self) -> dict[str, Any]:
        """The JSON object sent to the socket (``type`` and ``version`` first)."""
        return {"type": self.type, "version": self.version, **self.fields()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarketCleared(LivePayload):
    """An interval cleared: its uniform price (None when nothing matched) and volume."""

    type: ClassVar[str] = "market.cleared"

    interval_start: dt.datetime
    price: Decimal | None
    volume_wh: int
    trades: int

    def fields(self) -> dict[str, Any]:
        return {
            "interval_start": _instant(self.interval_start, "interval_start"),
            "price": _price(self.price, "price", nullable=True),
            "volume_wh": _integer(self.volume_wh, "volume_wh"),
            "trades": _integer(self.trades, "trades"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarketDepth(LivePayload):
    """The aggregated order book of an open interval: bids best (highest) first, offers best (lowest) first.

    Send it through :func:`apps.realtime.broadcast.market_depth_publish`, which throttles it.
    """

    type: ClassVar[str] = "market.depth"

    interval_start: dt.datetime
    bids: Sequence[tuple[Decimal, int]]
    offers: Sequence[tuple[Decimal, int]]

    def fields(self) -> dict[str, Any]:
        return {
            "interval_start": _instant(self.interval_start, "interval_start"),
            "bids": _levels(self.bids, "bids"),
            "offers": _levels(self.offers, "offers"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class TradeFilled(LivePayload):
    """One of a member's orders was (partly) filled. Private: only that member receives it."""

    type: ClassVar[str] = "trade.filled"

    order_id: int | str | uuid.UUID
    quantity_wh: int
    price: Decimal

    def fields(self) -> dict[str, Any]:
        return {
            "order_id": _identifier(self.order_id, "order_id"),
            "quantity_wh": _integer(self.quantity_wh, "quantity_wh", minimum=1),
            "price": _price(self.price, "price"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridLoading(LivePayload):
    """Loading of a grid node (substation, transformer or feeder, by name) at ``ts``, in percent of its rating."""

    type: ClassVar[str] = "grid.loading"

    node: str
    loading_pct: float | int | Decimal
    ts: dt.datetime

    def fields(self) -> dict[str, Any]:
        return {
            "node": _text(self.node, "node"),
            "loading_pct": _percent(self.loading_pct, "loading_pct"),
            "ts": _instant(self.ts, "ts"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridAlert(LivePayload):
    """A grid node crossed a threshold; ``level`` is info, warning or critical."""

    type: ClassVar[str] = "grid.alert"

    node: str
    level: str
    loading_pct: float | int | Decimal
    ts: dt.datetime
    message: str

    def fields(self) -> dict[str, Any]:
        return {
            "node": _text(self.node, "node"),
            "level": _text(self.level, "level", allowed=ALERT_LEVELS),
            "loading_pct": _percent(self.loading_pct, "loading_pct"),
            "ts": _instant(self.ts, "ts"),
            "message": _text(self.message, "message"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class DrEvent(LivePayload):
    """A demand-response event was called or changed state.

    ``feeders`` names the feeders it covers; empty means the whole community.
    """

    type: ClassVar[str] = "dr.event"

    event_id: int | str | uuid.UUID
    start: dt.datetime
    end: dt.datetime
    feeders: Sequence[str]
    target_reduction_w: int
    status: str

    def fields(self) -> dict[str, Any]:
        start, end = _instant(self.start, "start"), _instant(self.end, "end")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if isinstance(self.feeders, str):
            raise TypeError("feeders must be a sequence of feeder names, not one string")
        return {
            "event_id": _identifier(self.event_id, "event_id"),
            "start": start,
            "end": end,
            "feeders": [_text(name, "feeders[]") for name in self.feeders],
            "target_reduction_w": _integer(self.target_reduction_w, "target_reduction_w"),
            "status": _text(self.status, "status", allowed=DR_STATUSES),
        }


PAYLOAD_TYPES: dict[str, type[LivePayload]] = {
    cls.type: cls for cls in (MarketCleared, MarketDepth, TradeFilled, GridLoading, GridAlert, DrEvent)
}
