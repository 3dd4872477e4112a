"""Through a real ASGI server and Redis: what one process broadcasts reaches the sockets another
process serves."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.factories import member_make, token_make

pytestmark = [pytest.mark.websockets, pytest.mark.slow]

CLEARED = (
    "import datetime as dt; from decimal import Decimal; "
    "from apps.realtime.broadcast import broadcast; from apps.realtime.payloads import MarketCleared, TradeFilled; "
    "broadcast(MarketCleared(interval_start=dt.datetime(2026, 11, 26, 10, 15, tzinfo=dt.UTC), "
    "price=Decimal('0.13579'), volume_wh=24680, trades=5)); "
)


async def receive_json(socket, timeout: float) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))


def test_a_broadcast_from_another_process_reaches_a_connected_client(asgi_server):
    alice, bob = member_make(), member_make()
    alice_token, bob_token = token_make(alice), token_make(bob)
    fill = f"broadcast(TradeFilled(order_id=77, quantity_wh=500, price=Decimal('0.13579')), member_id={alice.pk})"

    async def scenario() -> tuple[list[dict], list[dict]]:
        async with (
            websockets.connect(f"{asgi_server.ws_url}/ws/live/?token={alice_token}") as alice_socket,
            websockets.connect(f"{asgi_server.ws_url}/ws/live/?token={bob_token}") as bob_socket,
        ):
            # The clearing process: a separate Django process, its own connection to Redis.
            await asyncio.to_thread(asgi_server.shell, CLEARED + fill)
            alice_got = [await receive_json(alice_socket, 10), await receive_json(alice_socket, 10)]
            bob_got = [await receive_json(bob_socket, 10)]
            with pytest.raises(TimeoutError):
                await receive_json(bob_socket, 0.5)
            return alice_got, bob_got

    alice_got, bob_got = asyncio.run(scenario())
    assert alice_got == [
        {
            "type": "market.cleared",
            "version": 1,
            "interval_start": "2026-11-26T10:15:00Z",
            "price": "0.13579",
            "volume_wh": 24680,
            "trades": 5,
        },
        {"type": "trade.filled", "version": 1, "order_id": 77, "quantity_wh": 500, "price": "0.13579"},
    ]
    assert [message["type"] for message in bob_got] == ["market.cleared"]
    assert "Traceback" not in asgi_server.log()


def test_the_server_refuses_anonymous_and_foreign_pages(asgi_server):
    member = member_make()
    token = token_make(member)

    async def scenario() -> None:
        with pytest.raises(websockets.exceptions.InvalidStatus) as anonymous:
            await websockets.connect(f"{asgi_server.ws_url}/ws/live/")
        assert anonymous.value.response.status_code == 403
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await websockets.connect(f"{asgi_server.ws_url}/ws/live/?token={token}", origin="http://evil.example")
        async with websockets.connect(
            f"{asgi_server.ws_url}/ws/live/?token={token}", origin=asgi_server.url
        ) as from_our_page:
            assert from_our_page.state.name == "OPEN"

    asyncio.run(scenario())
