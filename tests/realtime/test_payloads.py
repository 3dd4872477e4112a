"""Typed payloads: the contract's field names and spellings, and refusals at build time."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.realtime import groups
from apps.realtime.payloads import (
    PAYLOAD_TYPES,
    DrEvent,
    GridAlert,
    GridLoading,
    MarketCleared,
    MarketDepth,
    TradeFilled,
)

START = dt.datetime(2026, 11, 26, 10, 15, tzinfo=dt.UTC)


def test_market_cleared():
    amsterdam = START.astimezone(ZoneInfo("Europe/Amsterdam"))
    message = MarketCleared(interval_start=amsterdam, price=Decimal("0.1234"), volume_wh=12_000, trades=4).as_message()
    assert message == {
        "type": "market.cleared",
        "version": 1,
        "interval_start": "2026-11-26T10:15:00Z",
        "price": "0.12340",
        "volume_wh": 12_000,
        "trades": 4,
    }


def test_market_cleared_without_a_match_has_a_null_price():
    message = MarketCleared(interval_start=START, price=None, volume_wh=0, trades=0).as_message()
    assert message["price"] is None and message["volume_wh"] == 0


def test_market_depth():
    message = MarketDepth(
        interval_start=START, bids=[(Decimal("0.2"), 1000), (Decimal("0.15"), 2500)], offers=[]
    ).as_message()
    assert message == {
        "type": "market.depth",
        "version": 1,
        "interval_start": "2026-11-26T10:15:00Z",
        "bids": [["0.20000", 1000], ["0.15000", 2500]],
        "offers": [],
    }


@pytest.mark.parametrize(("order_id", "spelled"), [(42, 42), ("a1", "a1"), (uuid.UUID(int=1), str(uuid.UUID(int=1)))])
def test_trade_filled(order_id, spelled):
    message = TradeFilled(order_id=order_id, quantity_wh=700, price=Decimal("0.125")).as_message()
    assert message == {
        "type": "trade.filled",
        "version": 1,
        "order_id": spelled,
        "quantity_wh": 700,
        "price": "0.12500",
    }


def test_grid_loading_and_alert():
    assert GridLoading(node="F-1", loading_pct=Decimal("87.25"), ts=START).as_message() == {
        "type": "grid.loading",
        "version": 1,
        "node": "F-1",
        "loading_pct": 87.2,
        "ts": "2026-11-26T10:15:00Z",
    }
    assert GridAlert(node="T-1", level="warning", loading_pct=91, ts=START, message="High load").as_message() == {
        "type": "grid.alert",
        "version": 1,
        "node": "T-1",
        "level": "warning",
        "loading_pct": 91.0,
        "ts": "2026-11-26T10:15:00Z",
        "message": "High load",
    }


def test_dr_event():
    message = DrEvent(
        event_id=7,
        start=START,
        end=START + dt.timedelta(hours=2),
        feeders=("F-1",),
        target_reduction_w=25_000,
        status="active",
    ).as_message()
    assert message == {
        "type": "dr.event",
        "version": 1,
        "event_id": 7,
        "start": "2026-11-26T10:15:00Z",
        "end": "2026-11-26T12:15:00Z",
        "feeders": ["F-1"],
        "target_reduction_w": 25_000,
        "status": "active",
    }


@pytest.mark.parametrize(
    "build",
    [
        lambda: MarketCleared(interval_start=START.replace(tzinfo=None), price=None, volume_wh=0, trades=0),
        lambda: MarketCleared(interval_start=START, price=0.12, volume_wh=0, trades=0),
        lambda: MarketCleared(interval_start=START, price=Decimal("NaN"), volume_wh=0, trades=0),
        lambda: MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=12.5, trades=0),
        lambda: MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=True, trades=0),
        lambda: MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=-1, trades=0),
        lambda: MarketDepth(interval_start=START, bids=[(Decimal("0.1"),)], offers=[]),
        lambda: TradeFilled(order_id=1, quantity_wh=0, price=Decimal("0.1")),
        lambda: TradeFilled(order_id=None, quantity_wh=1, price=Decimal("0.1")),
        lambda: GridLoading(node="", loading_pct=1, ts=START),
        lambda: GridLoading(node="F", loading_pct=float("nan"), ts=START),
        lambda: GridAlert(node="F", level="panic", loading_pct=1, ts=START, message="x"),
        lambda: DrEvent(event_id=1, start=START, end=START, feeders=[], target_reduction_w=1, status="active"),
        lambda: DrEvent(
            event_id=1, start=START, end=START + dt.timedelta(hours=1), feeders="F-1", target_reduction_w=1, status="x"
        ),
    ],
)
def test_wrong_values_are_refused_when_the_payload_is_built(build):
    with pytest.raises((TypeError, ValueError)):
        build()


def test_payloads_are_frozen():
    payload = MarketCleared(interval_start=START, price=None, volume_wh=0, trades=0)
    with pytest.raises(AttributeError):
        payload.volume_wh = 1  # type: ignore[misc]


def test_every_type_has_a_route_and_only_fills_are_private():
    assert set(PAYLOAD_TYPES) == {
        "market.cleared",
        "market.depth",
        "trade.filled",
        "grid.loading",
        "grid.alert",
        "dr.event",
    }
    assert groups.groups_for("market.cleared") == (groups.MARKET, groups.TICKER)
    assert groups.groups_for("market.depth") == (groups.MARKET,)
    assert (
        groups.groups_for("grid.loading")
        == groups.groups_for("grid.alert")
        == groups.groups_for("dr.event")
        == (groups.GRID,)
    )
    assert groups.groups_for("trade.filled", member_id=5) == ("member.5",)


def test_routing_refuses_what_would_leak_or_vanish():
    with pytest.raises(ValueError, match="private"):
        groups.groups_for("trade.filled")
    with pytest.raises(ValueError, match="no member_id"):
        groups.groups_for("market.cleared", member_id=5)
    with pytest.raises(ValueError, match="No route"):
        groups.groups_for("ledger.posted")
    with pytest.raises(TypeError):
        groups.member_group("5")  # type: ignore[arg-type]


def test_credential_groups_are_hashed_and_distinct_per_kind():
    session = groups.credential_group("session", "abc123sessionkey")
    token = groups.credential_group("token", "abc123sessionkey")
    assert session != token and session == groups.credential_group("session", "abc123sessionkey")
    assert "abc123sessionkey" not in session and session.startswith("credential.") and len(session) < 100
    assert groups.credential_group("token", 7) == groups.credential_group("token", "7")
    for kind, key in (("cookie", "x"), ("session", "")):
        with pytest.raises(ValueError):
            groups.credential_group(kind, key)
