"""Live fan-out: how long one broadcast takes to reach every connected websocket.

    .venv/bin/python bench/fanout.py                        # 100 and 1,000 clients, 100 messages
    .venv/bin/python bench/fanout.py --clients 1000 --messages 50 --workers 1

What it does, in one run (the machine is shared and noisy: compare within a run):
1. Starts a real ASGI server (uvicorn, ``energycoop.asgi:application``) with the Redis
   channel layer of the settings (``apps.realtime.layers.RedisChannelLayer``) on a scratch
   SQLite database with one member, and its own channel-layer prefix in Redis.
2. For each N in --clients: N asyncio subscribers of raw Redis pub/sub (one connection each)
   receive --messages messages of --size bytes sent one at a time, then N websocket clients
   of ``/ws/live/?token=`` (all in the ``market`` group) receive as many broadcasts
   (``group_send`` of the event the broadcast helper builds). For each message: the time from
   just before ``PUBLISH``/``group_send`` to the moment the last client has it. p50/p99/max.
   Every message must reach every client.
3. Mass disconnect: --disconnect sockets connect, then all close at once; the server log must
   show no error and the channel layer's Redis group keys must hold no member afterwards.

Target (issue 6): 1,000 clients, channels p99 under 3x the raw Redis p99 of the same run.
The soft ``ulimit -n`` is raised to the hard limit for this process and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ERROR_PATTERN = re.compile(r"Traceback|Error|Exception|error", re.MULTILINE)


@dataclass
class Arrivals:
    """When each message reached each client: the count and the last arrival per sequence number."""

    clients: int
    counts: dict[int, int] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    done: dict[int, asyncio.Event] = field(default_factory=dict)

    def expect(self, seq: int) -> asyncio.Event:
        self.counts[seq] = 0
        self.done[seq] = asyncio.Event()
        return self.done[seq]

    def arrive(self, seq: int, at: float) -> None:
        count = self.counts.get(seq)
        if count is None:
            return
        self.counts[seq] = count + 1
        self.last[seq] = at
        if count + 1 == self.clients:
            self.done[seq].set()


@dataclass
class Result:
    label: str
    clients: int
    latencies_ms: list[float]
    delivered: int
    expected: int

    def row(self) -> str:
        ordered = sorted(self.latencies_ms)
        p50 = statistics.median(ordered) if ordered else math.nan
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.nan
        top = ordered[-1] if ordered else math.nan
        return (
            f"{self.clients:>7}  {self.label:<28} {p50:>8.1f} {p99:>8.1f} {top:>8.1f}"
            f"   {self.delivered}/{self.expected}"
        )

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.nan


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def padded_text(seq: int, size: int) -> str:
    """A market.cleared-like message of about ``size`` bytes carrying its sequence number."""
    message = {
        "type": "market.cleared",
        "version": 1,
        "seq": seq,
        "interval_start": "2026-11-26T10:15:00Z",
        "price": "0.12345",
        "volume_wh": 123456,
        "trades": 42,
        "pad": "",
    }
    base = len(json.dumps(message, separators=(",", ":")))
    message["pad"] = "x" * max(0, size - base)
    return json.dumps(message, separators=(",", ":"))


def process_tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of ``root`` and its children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Fanout:
    """One way of reaching ``clients`` asyncio receivers; ``send(text)`` starts one message."""

    label = ""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.arrivals = Arrivals(clients)
        self.latencies_ms: list[float] = []
        self.delivered = 0
        self.sent = 0

    async def send(self, text: str) -> None:
        raise NotImplementedError

    async def one(self, seq: int, size: int, *, timeout: float) -> bool:
        """Send message ``seq`` and wait until every client has it (or ``timeout``)."""
        event = self.arrivals.expect(seq)
        text = padded_text(seq, size)
        started = time.perf_counter()
        await self.send(text)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)
        if seq >= 0:
            self.sent += 1
            self.delivered += self.arrivals.counts[seq]
            if self.arrivals.counts[seq] == self.clients:
                self.latencies_ms.append((self.arrivals.last[seq] - started) * 1000)
        return self.arrivals.counts[seq] == self.clients

    def result(self) -> Result:
        return Result(self.label, self.clients, self.latencies_ms, self.delivered, self.clients * self.sent)


class RawRedis(Fanout):
    label = "raw Redis pub/sub"

    def __init__(self, clients: int, redis_url: str) -> None:
        super().__init__(clients)
        self.redis_url = redis_url
        self.channel = f"bench-fanout-raw-{os.getpid()}"

    async def __aenter__(self) -> RawRedis:
        from redis import asyncio as aioredis

        self.subscribers = [aioredis.Redis.from_url(self.redis_url) for _ in range(self.clients)]
        self.pubsubs = [client.pubsub() for client in self.subscribers]
        for start in range(0, self.clients, 100):
            await asyncio.gather(*(pubsub.subscribe(self.channel) for pubsub in self.pubsubs[start : start + 100]))
        self.readers = [asyncio.create_task(self._read(pubsub)) for pubsub in self.pubsubs]
        self.publisher = aioredis.Redis.from_url(self.redis_url)
        return self

    async def _read(self, pubsub) -> None:
        async for item in pubsub.listen():
            if item["type"] == "message":
                self.arrivals.arrive(json.loads(item["data"])["seq"], time.perf_counter())

    async def send(self, text: str) -> None:
        await self.publisher.publish(self.channel, text)

    async def __aexit__(self, *exc) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        for pubsub in self.pubsubs:
            await pubsub.aclose()
        for client in [*self.subscribers, self.publisher]:
            await client.aclose()


async def connect_sockets(url: str, count: int):
    from websockets.asyncio.client import connect

    semaphore = asyncio.Semaphore(100)

    async def one():
        async with semaphore:
            return await connect(url, compression=None, ping_interval=None, open_timeout=60, max_queue=None)

    return await asyncio.gather(*(one() for _ in range(count)))


class ChannelsLive(Fanout):
    label = "channels /ws/live/"

    def __init__(self, clients: int, ws_url: str, server_pid: int) -> None:
        super().__init__(clients)
        self.ws_url = ws_url
        self.server_pid = server_pid
        self.server_cpu_s = 0.0

    async def one(self, seq: int, size: int, *, timeout: float) -> bool:
        before = process_tree_cpu_s(self.server_pid)
        complete = await super().one(seq, size, timeout=timeout)
        if seq >= 0:
            self.server_cpu_s += process_tree_cpu_s(self.server_pid) - before
        return complete

    async def __aenter__(self) -> ChannelsLive:
        from channels.layers import get_channel_layer

        from apps.realtime import groups
        from apps.realtime.broadcast import live_event

        self.layer = get_channel_layer()
        self.group = groups.MARKET
        self.event = live_event
        self.sockets = await connect_sockets(self.ws_url, self.clients)
        self.readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]
        return self

    async def _read(self, ws) -> None:
        async for raw in ws:
            self.arrivals.arrive(json.loads(raw)["seq"], time.perf_counter())

    async def send(self, text: str) -> None:
        await self.layer.group_send(self.group, self.event(text))

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def compare(
    clients: int, redis_url: str, ws_url: str, server_pid: int, messages: int, size: int
) -> tuple[Result, Result, float]:
    """Both paths connected at once; messages alternate between them (raw first on even
    numbers, channels first on odd), so the machine's noise falls on both alike. Also returns
    the server's CPU milliseconds per broadcast (user + system, all its processes)."""
    async with RawRedis(clients, redis_url) as raw, ChannelsLive(clients, ws_url, server_pid) as live:
        paths = [raw, live]
        for warmup in range(1, 4):
            for path in paths:
                if not await path.one(-warmup, size, timeout=30):
                    raise SystemExit(
                        f"{path.label}: a warm-up message reached {path.arrivals.counts[-warmup]} of {clients}"
                    )
        for seq in range(messages):
            for path in paths if seq % 2 == 0 else paths[::-1]:
                await path.one(seq, size, timeout=10)
                await asyncio.sleep(0.02)
        return raw.result(), live.result(), live.server_cpu_s * 1000 / max(1, live.sent)


async def group_sizes(redis_url: str, prefix: str) -> dict[str, int]:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        sizes = {}
        async for key in client.scan_iter(match=f"{prefix}:group:*", count=1000):
            sizes[key.decode().split(":group:", 1)[1]] = await client.zcard(key)
        return sizes
    finally:
        await client.aclose()


async def mass_disconnect(ws_url: str, redis_url: str, prefix: str, count: int) -> tuple[dict[str, int], float, float]:
    """Connect ``count`` sockets, close them all at once; returns the group sizes afterwards,
    the seconds until the groups were empty, and the seconds the connects took."""
    started = time.perf_counter()
    sockets = await connect_sockets(ws_url, count)
    connected_s = time.perf_counter() - started
    joined = await group_sizes(redis_url, prefix)
    if joined.get("market", 0) < count:
        raise SystemExit(f"only {joined.get('market', 0)} of {count} sockets joined the market group")
    started = time.perf_counter()
    # Half close cleanly, half drop the TCP connection (a browser tab killed, a laptop lid).
    await asyncio.gather(
        *(ws.close() for ws in sockets[: count // 2]),
        *(asyncio.to_thread(ws.transport.abort) for ws in sockets[count // 2 :]),
        return_exceptions=True,
    )
    deadline = time.perf_counter() + 60
    while True:
        sizes = await group_sizes(redis_url, prefix)
        if not any(sizes.values()) or time.perf_counter() > deadline:
            return sizes, time.perf_counter() - started, connected_s
        await asyncio.sleep(0.1)


def wait_for_port(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("the server did not listen within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="100,1000", help="comma-separated client counts")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--size", type=int, default=200, help="message size in bytes")
    parser.add_argument("--disconnect", type=int, default=1000, help="sockets in the mass-disconnect test (0: skip)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("--uvicorn-arg", action="append", default=[], help="extra uvicorn argument (repeatable)")
    args = parser.parse_args()
    counts = [int(part) for part in args.clients.split(",") if part]

    nofile = raise_nofile()
    scratch = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    prefix = f"bench-fanout-{os.getpid()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "energycoop.settings.dev",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "REDIS_URL": args.redis_url,
        "CHANNELS_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(
        {key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX")}
    )
    manage(env, "migrate", "--noinput")
    token = json.loads(manage(env, "create_member", "bench@example.org"))["token"]

    import django

    django.setup()
    import channels
    import channels_redis
    import uvicorn
    import websockets

    port = free_port()
    log = scratch / "server.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "energycoop.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log",
                "--workers", str(args.workers), "--backlog", "4096", *args.uvicorn_arg,
            ],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, server, log)
        ws_url = f"ws://127.0.0.1:{port}/ws/live/?token={token}"
        print(
            f"Live fan-out: {args.messages} broadcasts of {args.size} bytes, one at a time; "
            f"uvicorn {uvicorn.__version__} x{args.workers} {' '.join(args.uvicorn_arg)}, "
            f"channels {channels.__version__}, "
            f"channels-redis {channels_redis.__version__}, websockets {websockets.__version__}; "
            f"{os.cpu_count()} CPUs, ulimit -n {nofile}"
        )
        print(f"{'clients':>7}  {'path':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   delivered")
        results: dict[tuple[int, str], Result] = {}
        for count in counts:
            raw, live, cpu_ms = asyncio.run(
                compare(count, args.redis_url, ws_url, server.pid, args.messages, args.size)
            )
            results[(count, "raw")], results[(count, "channels")] = raw, live
            print(raw.row(), flush=True)
            print(live.row(), flush=True)
            ratio = live.p99 / raw.p99
            print(
                f"{count:>7}  p99 channels / raw Redis = {ratio:.2f}x (target < 3x at 1,000); "
                f"server CPU {cpu_ms:.1f} ms per broadcast",
                flush=True,
            )
        errors_before = len(ERROR_PATTERN.findall(log.read_text()))
        if args.disconnect:
            sizes, drained_s, connected_s = asyncio.run(
                mass_disconnect(ws_url, args.redis_url, prefix, args.disconnect)
            )
            time.sleep(1)
            errors = len(ERROR_PATTERN.findall(log.read_text())) - errors_before
            stale = sum(sizes.values())
            print(
                f"mass disconnect: {args.disconnect} sockets (connected in {connected_s:.1f} s) closed at once "
                f"(half clean, half dropped): groups empty after {drained_s:.2f} s; "
                f"stale group members {stale} {sizes or '{}'}; errors in the server log {errors}"
            )
        total_errors = len(ERROR_PATTERN.findall(log.read_text()))
        if total_errors:
            print(f"server log ({log}) shows {total_errors} error lines:\n{log.read_text()[-3000:]}")
    except BaseException:
        print(f"server log tail:\n{log.read_text()[-4000:]}")
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        cleanup_prefix(args.redis_url, prefix)


def cleanup_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    main()
