"""The Redis channel layer: channels-redis' layer with one receiver per process, a bounded,
waiting connection pool and a batched send for many small groups.

Stock channels-redis already queues one message per process for a group (its local channels
listed inside), but every consumer then takes turns at a shared lock, two fresh tasks and an
``asyncio.wait`` for each message it receives: with a thousand sockets in a process that
overhead, paid a thousand times per broadcast, is most of the fan-out time. Here one task per
process and event loop pops the process's queue in Redis and hands each message to the
local channels it names; a consumer's ``receive`` is a plain ``Queue.get``. What is kept in
Redis, the wire format, group keys and expiries are channels-redis' own, so processes
running either layer interoperate.

Stock channels-redis opens one Redis connection per concurrent command from a pool capped at
redis-py's default of 100 and fails the 101st with ``MaxConnectionsError``: a thousand sockets
closing at once each ``group_discard`` at the same moment, thousands of those fail, and the
channels stay in their groups (stale members that every later ``group_send`` still serves)
until the group expiry, a day later. Here the pool is a ``BlockingConnectionPool``: a command
waits for one of ``pool_max_connections`` connections (up to ``pool_timeout`` seconds)
instead of failing, so a mass disconnect drains in order, with no error and no stale member.

The socket timeout is also set here: redis-py 8 defaults it to 5 s, exactly channels-redis'
5 s ``BZPOPMIN``, so an idle receive on a busy loop times out now and then and kills its
consumer (the socket closes with 1011). The read timeout must outlast the blocking pop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from channels_redis import core
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

# Keys a single EVAL of the group-send script touches at most: keeps one script from holding
# Redis for long when a clearing sends thousands of private fills.
SEND_MANY_CHUNK = 500

# channels-redis' group-send script, with a score per message: several messages for one
# channel key in one call keep their order (one shared score would let Redis order them by
# their random serialisation prefix).
_SEND_MANY_LUA = """
local n = #KEYS
local expiry = ARGV[#ARGV]
local over_capacity = 0
for i=1,n do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[2 * n + i], ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


@dataclass
class _LocalReceiver:
    """This process's channels on one event loop and the task that feeds them."""

    queues: dict[str, asyncio.Queue] = field(default_factory=dict)
    pump: asyncio.Task | None = None
    stopped: bool = False


class RedisChannelLayer(core.RedisChannelLayer):
    """``channels_redis.core.RedisChannelLayer`` plus one receiver per process,
    ``pool_max_connections``/``pool_timeout`` (per host and event loop), a ``socket_timeout``
    longer than the blocking receive, and :meth:`group_send_many`."""

    def __init__(
        self,
        *args: Any,
        pool_max_connections: int = 50,
        pool_timeout: float = 30.0,
        socket_timeout: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.pool_max_connections = pool_max_connections
        self.pool_timeout = pool_timeout
        self.socket_timeout = socket_timeout if socket_timeout is not None else self.brpop_timeout + 10
        self._receivers: dict[asyncio.AbstractEventLoop, _LocalReceiver] = {}

    # --- Receiving: one pump per process and loop --------------------------------------------

    def _receiver(self) -> _LocalReceiver:
        loop = asyncio.get_running_loop()
        receiver = self._receivers.get(loop)
        if receiver is None:
            # Loops that closed with channels still registered (async_to_sync's short-lived
            # loops) are forgotten here rather than kept for the life of the process.
            for closed in [other for other in self._receivers if other.is_closed()]:
                del self._receivers[closed]
            receiver = self._receivers[loop] = _LocalReceiver()
        return receiver

    async def new_channel(self, prefix: str = "specific") -> str:
        channel = await super().new_channel(prefix)
        self._receiver().queues[channel] = core.BoundedQueue(self.capacity)
        return channel

    async def receive(self, channel: str) -> dict[str, Any]:
        if "!" not in channel:
            return await super().receive(channel)
        assert self.non_local_name(channel).endswith(self.client_prefix + "!"), "Wrong client prefix"
        receiver = self._receiver()
        queue = receiver.queues.get(channel)
        if queue is None:
            queue = receiver.queues[channel] = core.BoundedQueue(self.capacity)
        if receiver.pump is None or receiver.pump.done():
            self._refuse_second_loop()
            receiver.pump = asyncio.get_running_loop().create_task(self._pump(receiver, self.non_local_name(channel)))
        try:
            return await queue.get()
        except asyncio.CancelledError:
            # A consumer's receive is cancelled when the consumer ends: forget its channel.
            self.channel_forget(channel)
            raise

    def channel_forget(self, channel: str) -> None:
        """Drop a local channel's queue (its consumer ended); the pump stops with the last one.
        Consumers that may end before their first ``receive`` call this themselves."""
        loop = asyncio.get_running_loop()
        receiver = self._receivers.get(loop)
        if receiver is None:
            return
        receiver.queues.pop(channel, None)
        if not receiver.queues:
            receiver.stopped = True
            if receiver.pump is not None:
                receiver.pump.cancel()
            del self._receivers[loop]

    def _refuse_second_loop(self) -> None:
        """One pump per process: as channels-redis, refuse receiving on two loops at once
        (each pump would take the other's messages and drop them)."""
        loop = asyncio.get_running_loop()
        for other_loop, other in self._receivers.items():
            busy = other.pump is not None and not other.pump.done()
            if busy and other_loop is not loop and not other_loop.is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")

    async def _pump(self, receiver: _LocalReceiver, process_channel: str) -> None:
        """Pop this process's messages and put each on the queues of the channels it names.

        channels-redis' own pop (``_brpop_with_clean``) keeps a popped message in a backup
        queue until it is handled, so stopping the pump loses nothing. The pump does not use
        ``receive_single``: redis-py 8 sometimes answers a cancelled ``BZPOPMIN`` with None
        instead of raising, and ``receive_single`` then pops again, for ever; here a
        cancellation that was swallowed is noticed after each pop.
        """
        task = asyncio.current_task()
        key = self.prefix + process_channel
        index = self.consistent_hash(process_channel)
        while not receiver.stopped:
            try:
                content = await self._brpop_with_clean(index, key, timeout=self.brpop_timeout)
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                if content is None:
                    continue
                await self._clean_receive_backup(index, key)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:
                logger.exception("The channel layer's receive failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            message = self.deserialize(content)
            names = message.pop("__asgi_channel__", None) or ()
            for name in names if isinstance(names, list) else (names,):
                queue = receiver.queues.get(name)
                if queue is not None:
                    queue.put_nowait(message)

    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "master_name" in host:  # Sentinel: channels-redis' own pool.
            return super().create_pool(index)
        options = {
            "max_connections": self.pool_max_connections,
            "timeout": self.pool_timeout,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": 5,
        }
        if "address" in host:
            return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host, **options)
        return aioredis.BlockingConnectionPool(**host, **options)

    async def group_send_many(self, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        """``group_send`` for each ``(group, message)`` in order, in a few round trips: one
        pipeline reads every group's members, one script per chunk queues every message.
        Meant for many small groups (a clearing's private fills to each member's group)."""
        if not pairs:
            return
        group_keys = [self._group_key(group) for group, _ in pairs]
        by_shard: dict[int, list[int]] = collections.defaultdict(list)
        for position, (group, _) in enumerate(pairs):
            by_shard[self.consistent_hash(group)].append(position)
        members: dict[int, list[str]] = {}
        now = int(time.time())
        for shard, positions in by_shard.items():
            pipe = self.connection(shard).pipeline(transaction=False)
            for position in positions:
                pipe.zremrangebyscore(group_keys[position], min=0, max=now - self.group_expiry)
                pipe.zrange(group_keys[position], 0, -1)
            replies = await pipe.execute()
            for offset, position in enumerate(positions):
                members[position] = [name.decode("utf8") for name in replies[2 * offset + 1]]

        # Queue per channel key in the order of ``pairs``, as group_send would.
        queued: dict[int, list[tuple[bytes, bytes, int]]] = collections.defaultdict(list)
        for position, (_, message) in enumerate(pairs):
            if not members[position]:
                continue
            shard_keys, key_messages, key_capacity = self._map_channel_keys_to_connection(members[position], message)
            for shard, keys in shard_keys.items():
                queued[shard].extend((key, key_messages[key], key_capacity[key]) for key in keys)
        for shard, entries in queued.items():
            connection = self.connection(shard)
            base = time.time()
            for start in range(0, len(entries), SEND_MANY_CHUNK):
                chunk = entries[start : start + SEND_MANY_CHUNK]
                keys = [key for key, _, _ in chunk]
                bodies = [body for _, body, _ in chunk]
                capacities = [capacity for _, _, capacity in chunk]
                # Microsecond steps: the order survives, the expiry (whole seconds) does not notice.
                scores = [repr(base + (start + i) * 1e-6) for i in range(len(chunk))]
                over = await connection.eval(
                    _SEND_MANY_LUA, len(keys), *keys, *bodies, *capacities, *scores, self.expiry
                )
                if over:
                    logger.info("%s of %s channel keys over capacity in group_send_many", over, len(keys))
