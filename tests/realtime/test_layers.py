"""The Redis channel layer under many sockets: mass connects and disconnects, group upkeep,
and the process's one receiver."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from apps.realtime import groups
from apps.realtime.layers import RedisChannelLayer

pytestmark = pytest.mark.websockets

MASS = 400  # well past the hundred connections redis-py's default pool allows


async def group_members(group: str) -> set[str]:
    layer = get_channel_layer()
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        return {name.decode() for name in await client.zrange(layer._group_key(group), 0, -1)}
    finally:
        await client.aclose()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_hundreds_of_sockets_connect_and_leave_at_once_without_error_or_stale_member(
    open_socket, settings, caplog
):
    """channels-redis' stock pool fails the hundred-and-first concurrent command with
    MaxConnectionsError: group_discard failed by the thousand, channels stayed in their group."""
    settings.REALTIME_PUBLIC_TICKER = True
    before = await group_members(groups.TICKER)
    with caplog.at_level(logging.WARNING):
        opened = await asyncio.gather(*(open_socket("/ws/ticker/") for _ in range(MASS)))
        assert all(accepted for _, accepted, _ in opened)
        joined = await group_members(groups.TICKER) - before
        assert len(joined) == MASS

        outcomes = await asyncio.gather(
            *(socket.disconnect(timeout=30) for socket, _, _ in opened), return_exceptions=True
        )
    assert [outcome for outcome in outcomes if outcome is not None] == []
    assert await group_members(groups.TICKER) & joined == set()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.django_db(transaction=True)
async def test_a_long_lived_socket_renews_its_groups_before_expiry(open_socket, live_member, live_token, monkeypatch):
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "group_expiry", 2)
    _socket, accepted, _ = await open_socket(token=live_token)
    assert accepted
    group_key = layer._group_key(groups.member_group(live_member.pk))
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        [(channel, joined_at)] = await client.zrange(group_key, 0, -1, withscores=True)
        await asyncio.sleep(1.5)
        assert await client.zscore(group_key, channel) > joined_at
    finally:
        await client.aclose()


async def test_the_receiver_stops_with_the_last_local_channel():
    layer = get_channel_layer()
    first, second = await layer.new_channel(), await layer.new_channel()
    receiving = [asyncio.ensure_future(layer.receive(name)) for name in (first, second)]
    await asyncio.sleep(0.2)
    receiver = layer._receivers[asyncio.get_running_loop()]
    pump = receiver.pump
    assert pump is not None and not pump.done()

    await layer.send(first, {"type": "hello"})
    assert await asyncio.wait_for(receiving[0], 5) == {"type": "hello"}
    receiving[1].cancel()
    await asyncio.gather(receiving[1], return_exceptions=True)
    layer.channel_forget(first)
    await asyncio.wait_for(asyncio.gather(pump, return_exceptions=True), 10)
    assert pump.done()
    assert asyncio.get_running_loop() not in layer._receivers


async def test_a_message_for_a_channel_that_ended_is_dropped_not_kept():
    layer = get_channel_layer()
    gone, alive = await layer.new_channel(), await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(alive))
    layer.channel_forget(gone)
    await layer.group_add("test-dropped", gone)
    await layer.group_add("test-dropped", alive)
    try:
        await layer.group_send("test-dropped", {"type": "hello"})
        assert await asyncio.wait_for(receiving, 5) == {"type": "hello"}
        assert gone not in layer._receivers[asyncio.get_running_loop()].queues
    finally:
        await layer.group_discard("test-dropped", gone)
        await layer.group_discard("test-dropped", alive)
        layer.channel_forget(alive)


def test_the_layer_waits_for_a_connection_and_outlasts_its_blocking_pop():
    layer = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-config")
    pool = layer.create_pool(0)
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == layer.pool_max_connections
    assert pool.connection_kwargs["socket_timeout"] > layer.brpop_timeout
