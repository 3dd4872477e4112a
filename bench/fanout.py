"""Live fan-out: how long one broadcast takes to reach every connected websocket.

    .venv/bin/python bench/fanout.py                        # 100 and 1,000 clients, 100 messages
    .venv/bin/python bench/fanout.py --clients 1000 --messages 50 --no-stock

What it does, in one run (the machine is shared and noisy: compare within a run):
1. Starts real ASGI servers (uvicorn) on a scratch SQLite database with one member, each with
   its own channel-layer prefix in Redis:
   - "ours": ``energycoop.asgi:application`` with the settings' layer
     (``apps.realtime.layers.RedisChannelLayer``), clients on ``/ws/live/?token=``;
   - "stock" (unless --no-stock): bench/fanout_stock.py, stock Channels and channels-redis
     as the Channels tutorial writes them, clients signed in by session cookie.
2. For each N in --clients: N asyncio subscribers of raw Redis pub/sub (one connection each)
   and N websocket clients per server, all connected at once. --messages messages of
   --size bytes are sent one at a time, taking turns between the paths (the order rotates
   every message, so the machine's noise falls on all alike): ``PUBLISH`` for raw Redis,
   ``group_send`` of the broadcast helper's event for the servers. Per message: the time from
   just before the send to the moment the last client has it; p50/p99/max; every message
   must reach every client. Also the server's CPU time per broadcast (user + system).
3. Mass disconnect, per server: --disconnect sockets connect, then all go at once (half close
   cleanly, half drop the TCP connection) while broadcasts keep coming every 5 ms; afterwards
   the server log must show no error, and the group keys in Redis no member.

Target (issue 6): 1,000 clients, p99 under 3x the raw Redis p99 of the same run.
The soft ``ulimit -n`` is raised to the hard limit for this process and the servers.
"""

from __future__ import annotations

import abc
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ERROR_PATTERN = re.compile(r"Traceback|ERROR|Error:|Exception", re.MULTILINE)


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


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else math.nan


@dataclass
class Result:
    label: str
    clients: int
    latencies_ms: list[float]
    delivered: int
    expected: int
    cpu_ms: float | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else math.nan

    @property
    def p99(self) -> float:
        return percentile(sorted(self.latencies_ms), 0.99)

    def row(self, raw: Result) -> str:
        top = max(self.latencies_ms) if self.latencies_ms else math.nan
        cpu = f"{self.cpu_ms:8.1f}" if self.cpu_ms is not None else f"{'':>8}"
        ratio = f"{self.p99 / raw.p99:6.2f}x" if self is not raw else f"{'':>7}"
        return (
            f"{self.clients:>7}  {self.label:<22} {self.p50:>8.1f} {self.p99:>8.1f} {top:>8.1f} {ratio} {cpu}"
            f"   {self.delivered}/{self.expected}"
        )


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
        if int(entry) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Server:
    """A uvicorn process, the layer and group the bench sends to, and how its clients sign in."""

    label: str
    prefix: str
    ws_url: str
    headers: dict[str, str]
    process: subprocess.Popen
    log: Path
    layer: Any = None

    def errors(self) -> int:
        return len(ERROR_PATTERN.findall(self.log.read_text()))


class Fanout(abc.ABC):
    """One way of reaching ``clients`` asyncio receivers; ``send(text)`` starts one message."""

    label = ""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.arrivals = Arrivals(clients)
        self.latencies_ms: list[float] = []
        self.delivered = 0
        self.sent = 0

    @abc.abstractmethod
    async def send(self, text: str) -> None:
        """Start delivering ``text`` to every client."""

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


async def connect_sockets(server: Server, count: int):
    from websockets.asyncio.client import connect

    # 20 at a time: stock channels-redis fails a connect (MaxConnectionsError) once more than
    # about a hundred group_add calls are in flight in one process.
    semaphore = asyncio.Semaphore(20)

    async def one():
        async with semaphore:
            return await connect(
                server.ws_url,
                additional_headers=server.headers,
                compression=None,
                ping_interval=None,
                open_timeout=60,
                max_queue=None,
            )

    return await asyncio.gather(*(one() for _ in range(count)))


class Websockets(Fanout):
    """N websocket clients of one server; ``send`` is a ``group_send`` to the market group."""

    def __init__(self, clients: int, server: Server) -> None:
        super().__init__(clients)
        self.server = server
        self.label = f"channels ({server.label})"
        self.server_cpu_s = 0.0

    async def one(self, seq: int, size: int, *, timeout: float) -> bool:
        before = process_tree_cpu_s(self.server.process.pid)
        complete = await super().one(seq, size, timeout=timeout)
        if seq >= 0:
            self.server_cpu_s += process_tree_cpu_s(self.server.process.pid) - before
        return complete

    async def __aenter__(self) -> Websockets:
        self.sockets = await connect_sockets(self.server, self.clients)
        self.readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]
        return self

    async def _read(self, ws) -> None:
        async for raw in ws:
            self.arrivals.arrive(json.loads(raw)["seq"], time.perf_counter())

    async def send(self, text: str) -> None:
        from apps.realtime.broadcast import live_event

        await self.server.layer.group_send("market", live_event(text))

    def result(self) -> Result:
        result = super().result()
        result.cpu_ms = self.server_cpu_s * 1000 / max(1, self.sent)
        return result

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def compare(clients: int, redis_url: str, servers: list[Server], messages: int, size: int) -> list[Result]:
    """Every path connected at once; messages take turns between them, the order rotating."""
    async with contextlib.AsyncExitStack() as stack:
        paths: list[Fanout] = [await stack.enter_async_context(RawRedis(clients, redis_url))]
        for server in servers:
            server.layer = layer_for(server, redis_url)
            paths.append(await stack.enter_async_context(Websockets(clients, server)))
        for warmup in range(1, 4):
            for path in paths:
                if not await path.one(-warmup, size, timeout=30):
                    raise SystemExit(
                        f"{path.label}: a warm-up message reached {path.arrivals.counts[-warmup]} of {clients}"
                    )
        for seq in range(messages):
            turn = seq % len(paths)
            for path in paths[turn:] + paths[:turn]:
                await path.one(seq, size, timeout=10)
                await asyncio.sleep(0.02)
        return [path.result() for path in paths]


def layer_for(server: Server, redis_url: str) -> Any:
    """A channel layer of the same class and prefix as the server's."""
    if server.label == "ours":
        from channels.layers import get_channel_layer

        return get_channel_layer()
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[redis_url], prefix=server.prefix)


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


async def mass_disconnect(server: Server, redis_url: str, count: int) -> tuple[dict[str, int], float, float]:
    """Connect ``count`` sockets, then drop them all at once while broadcasts keep coming;
    returns the group sizes afterwards, seconds until the groups were empty, seconds to connect."""
    server.layer = layer_for(server, redis_url)
    started = time.perf_counter()
    sockets = await connect_sockets(server, count)
    connected_s = time.perf_counter() - started
    joined = await group_sizes(redis_url, server.prefix)
    if joined.get("market", 0) < count:
        raise SystemExit(f"{server.label}: only {joined.get('market', 0)} of {count} sockets joined the market group")
    drained = asyncio.Event()

    async def keep_broadcasting() -> None:
        seq = 0
        while not drained.is_set():
            await server.layer.group_send("market", {"type": "live.event", "text": padded_text(seq, 200)})
            seq += 1
            await asyncio.sleep(0.005)

    broadcaster = asyncio.create_task(keep_broadcasting())
    started = time.perf_counter()
    # Half close cleanly, half drop the TCP connection (a browser tab killed, a laptop lid).
    await asyncio.gather(
        *(ws.close() for ws in sockets[: count // 2]),
        *(asyncio.to_thread(ws.transport.abort) for ws in sockets[count // 2 :]),
        return_exceptions=True,
    )
    deadline = time.perf_counter() + 60
    try:
        while True:
            sizes = await group_sizes(redis_url, server.prefix)
            if not any(sizes.values()) or time.perf_counter() > deadline:
                return sizes, time.perf_counter() - started, connected_s
            await asyncio.sleep(0.1)
    finally:
        drained.set()
        await broadcaster


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


def start_server(label: str, app: str, env: dict[str, str], scratch: Path, args: argparse.Namespace) -> Server:
    port = free_port()
    log = scratch / f"server-{label}.log"
    app_dir = ["--app-dir", str(ROOT / "bench")] if label == "stock" else []
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", app, *app_dir, "--host", "127.0.0.1", "--port", str(port),
                "--lifespan", "off", "--log-level", "warning", "--no-access-log", "--workers", str(args.workers),
                "--backlog", "4096", *args.uvicorn_arg,
            ],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port(port, process, log)
    return Server(label, env["CHANNELS_PREFIX"], f"ws://127.0.0.1:{port}/ws/live/", {}, process, log)


def session_cookie(email: str) -> str:
    """A signed-in session for the stock server (it authenticates by session, as a browser)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from apps.members.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="100,1000", help="comma-separated client counts")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--size", type=int, default=200, help="message size in bytes")
    parser.add_argument("--disconnect", type=int, default=1000, help="sockets in the mass-disconnect test (0: skip)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock Channels reference server")
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
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX"):
        os.environ[key] = env[key]
    manage(env, "migrate", "--noinput")
    token = json.loads(manage(env, "create_member", "bench@example.org"))["token"]

    import django

    django.setup()
    import channels
    import channels_redis
    import uvicorn
    import websockets

    servers: list[Server] = []
    try:
        ours = start_server("ours", "energycoop.asgi:application", env, scratch, args)
        ours.ws_url += f"?token={token}"
        servers.append(ours)
        if not args.no_stock:
            stock_env = {**env, "DJANGO_SETTINGS_MODULE": "fanout_stock", "CHANNELS_PREFIX": f"{prefix}-stock"}
            stock = start_server("stock", "fanout_stock:application", stock_env, scratch, args)
            stock.headers = {"Cookie": session_cookie("bench@example.org")}
            servers.append(stock)
        print(
            f"Live fan-out: {args.messages} broadcasts of {args.size} bytes, one at a time; "
            f"uvicorn {uvicorn.__version__} x{args.workers} {' '.join(args.uvicorn_arg)}, "
            f"channels {channels.__version__}, channels-redis {channels_redis.__version__}, "
            f"websockets {websockets.__version__}; {os.cpu_count()} CPUs, ulimit -n {nofile}"
        )
        print(
            f"{'clients':>7}  {'path':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/raw':>7} "
            f"{'CPU ms':>8}   delivered"
        )
        for count in counts:
            results = asyncio.run(compare(count, args.redis_url, servers, args.messages, args.size))
            for result in results:
                print(result.row(results[0]), flush=True)
        if args.disconnect:
            for server in servers:
                errors_before = server.errors()
                sizes, drained_s, connected_s = asyncio.run(mass_disconnect(server, args.redis_url, args.disconnect))
                time.sleep(1)
                errors = server.errors() - errors_before
                print(
                    f"mass disconnect ({server.label}): {args.disconnect} sockets (connected in {connected_s:.1f} s) "
                    f"gone at once, half closed, half dropped, broadcasts every 5 ms: "
                    f"groups empty after {drained_s:.2f} s; stale group members {sum(sizes.values())}; "
                    f"error lines in the server log {errors}",
                    flush=True,
                )
        for server in servers:
            if server.label == "ours" and server.errors():
                print(f"server log ({server.label}):\n{server.log.read_text()[-3000:]}")
    except BaseException:
        for server in servers:
            print(f"server log ({server.label}):\n{server.log.read_text()[-3000:]}")
        raise
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
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
