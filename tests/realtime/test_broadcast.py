"""The broadcast helper: throttled depth, batched private fills, remembered prices, failures."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.realtime import broadcast as broadcast_module
from apps.realtime.broadcast import broadcast, broadcast_many, market_depth_publish
from apps.realtime.payloads import MarketCleared, TradeFilled
from apps.realtime.selectors import cleared_recent
from apps.realtime.throttle import Coalescer, _LocalStore
from tests.factories import member_make, token_make

START = dt.datetime(2026, 11, 26, 10, 15, tzinfo=dt.UTC)


async def collect(socket, *, seconds: float) -> list[dict]:
    """Every JSON message the socket receives within ``seconds``."""
    received = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            received.append(await socket.receive_json_from(timeout=left))
        except TimeoutError:
            break
    return received


# --- market.depth: a few per second per interval, and the last state always ----------------------


@pytest.mark.websockets
@pytest.mark.django_db(transaction=True)
async def test_market_depth_is_throttled_and_its_last_state_arrives(open_socket, live_token, monkeypatch):
    monkeypatch.setattr(broadcast_module._depth, "window_s", 0.2)
    socket, accepted, _ = await open_socket(token=live_token)
    assert accepted
    interval = START + dt.timedelta(minutes=15 * (uuid.uuid4().int % 1000))

    def order_flow() -> None:
        for quantity_wh in range(1, 61):
            market_depth_publish(interval_start=interval, bids=[(Decimal("0.2"), quantity_wh)], offers=[])
            time.sleep(0.01)

    started = time.monotonic()
    await sync_to_async(order_flow)()
    flow_s = time.monotonic() - started
    received = await collect(socket, seconds=1.0)

    quantities = [message["bids"][0][1] for message in received]
    assert quantities[0] == 1  # the leading edge: the first change shows at once
    assert quantities[-1] == 60  # the trailing edge: the last state is never lost
    assert quantities == sorted(quantities)
    assert len(received) <= flow_s / 0.2 + 2
    assert {message["type"] for message in received} == {"market.depth"}


def test_the_throttle_is_shared_between_processes():
    """Two coalescers with one name stand for two processes: their sends together keep the pace."""
    sent: list[tuple[float, str]] = []
    lock = threading.Lock()

    def record(key: str, state: str) -> None:
        with lock:
            sent.append((time.monotonic(), state))

    name = f"test-throttle-{uuid.uuid4().hex}"
    one = Coalescer(name=name, window_s=0.1, send=record)
    two = Coalescer(name=name, window_s=0.1, send=record)
    started = time.monotonic()
    for step in range(40):
        (one if step % 2 else two).offer("interval", f"state-{step}")
        time.sleep(0.01)
    flow_s = time.monotonic() - started
    time.sleep(0.5)

    assert sent[-1][1] == "state-39"
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    assert min(gaps) >= 0.09
    assert len(sent) <= flow_s / 0.1 + 2


def test_keys_are_throttled_each_on_their_own():
    sent: list[tuple[str, str]] = []
    coalescer = Coalescer(name=f"test-throttle-{uuid.uuid4().hex}", window_s=0.2, send=lambda k, s: sent.append((k, s)))
    coalescer.offer("a", "a1")
    coalescer.offer("b", "b1")
    coalescer.offer("a", "a2")
    time.sleep(0.5)
    assert sent == [("a", "a1"), ("b", "b1"), ("a", "a2")]


def test_a_quiet_key_sends_once():
    sent: list[str] = []
    coalescer = Coalescer(name=f"test-throttle-{uuid.uuid4().hex}", window_s=0.05, send=lambda k, s: sent.append(s))
    coalescer.offer("a", "only")
    time.sleep(0.3)
    coalescer.offer("a", "later")
    time.sleep(0.2)
    assert sent == ["only", "later"]


def test_without_redis_the_throttle_works_within_the_process():
    sent: list[str] = []
    coalescer = Coalescer(name="local", window_s=0.1, send=lambda k, s: sent.append(s))
    coalescer._backend = _LocalStore()
    started = time.monotonic()
    for step in range(20):
        coalescer.offer("a", str(step))
        time.sleep(0.01)
    flow_s = time.monotonic() - started
    time.sleep(0.4)
    assert sent[0] == "0" and sent[-1] == "19" and len(sent) <= flow_s / 0.1 + 2


# --- Private fills in bulk ------------------------------------------------------------------------


@pytest.mark.websockets
@pytest.mark.django_db(transaction=True)
async def test_broadcast_many_keeps_each_members_fills_in_order_and_to_themselves(open_socket):
    members = await sync_to_async(lambda: [member_make() for _ in range(3)])()
    sockets = []
    for member in members:
        socket, accepted, _ = await open_socket(token=await sync_to_async(token_make)(member))
        assert accepted
        sockets.append(socket)

    def clearing() -> None:
        with transaction.atomic():
            broadcast_many(
                [
                    (TradeFilled(order_id=f"{member.pk}-{n}", quantity_wh=n + 1, price=Decimal("0.1")), member.pk)
                    for n in range(20)
                    for member in members
                ]
                + [(MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=60, trades=60), None)]
            )

    await sync_to_async(clearing)()
    for member, socket in zip(members, sockets, strict=True):
        received = await collect(socket, seconds=1.5)
        fills = [message["order_id"] for message in received if message["type"] == "trade.filled"]
        assert fills == [f"{member.pk}-{n}" for n in range(20)]
        assert [message["type"] for message in received].count("market.cleared") == 1


# --- Remembered prices for pages ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cleared_prices_are_remembered_newest_first_one_per_interval():
    later = START + dt.timedelta(minutes=15)
    broadcast(MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=1, trades=1))
    broadcast(MarketCleared(interval_start=later, price=None, volume_wh=0, trades=0))
    broadcast(MarketCleared(interval_start=START, price=Decimal("0.2"), volume_wh=2, trades=1))
    rows = cleared_recent(limit=10)
    assert [(row["interval_start"], row["price"]) for row in rows] == [
        ("2026-11-26T10:30:00Z", None),
        ("2026-11-26T10:15:00Z", "0.20000"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_clearing_is_not_remembered():
    with pytest.raises(RuntimeError), transaction.atomic():
        broadcast(MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=1, trades=1))
        raise RuntimeError
    assert cleared_recent(limit=10) == []


# --- Failures after commit --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redis_failing_after_commit_is_logged_never_raised(monkeypatch, caplog):
    class Broken:
        async def group_send(self, group, message):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(broadcast_module, "get_channel_layer", lambda: Broken())
    with caplog.at_level(logging.ERROR), transaction.atomic():
        broadcast(MarketCleared(interval_start=START, price=Decimal("0.1"), volume_wh=1, trades=1))
    assert "redis is down" in caplog.text


def test_a_private_payload_needs_its_member_and_a_public_one_refuses_one():
    fill = TradeFilled(order_id=1, quantity_wh=1, price=Decimal("0.1"))
    with pytest.raises(ValueError, match="member_id"):
        broadcast(fill)
    with pytest.raises(ValueError, match="no member_id"):
        broadcast(MarketCleared(interval_start=START, price=None, volume_wh=0, trades=0), member_id=1)
