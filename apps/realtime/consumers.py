"""The live endpoints: ``/ws/live/`` for signed-in members, ``/ws/ticker/`` for the public ticker.

A consumer holds no rule of its own: who may connect is :func:`apps.realtime.selectors.live_member_id`,
what it joins is :mod:`apps.realtime.groups`, and what it sends was encoded once by the broadcast
helper. Messages from the client are ignored: the stream is one-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from apps.realtime import groups
from apps.realtime.selectors import live_member_id

# Close codes (RFC 6455 leaves 4000-4999 to applications; 44xx read like their HTTP cousins).
# A refusal at connect rejects the handshake (HTTP 403); these codes reach the client when
# a socket that was accepted is closed later, and live.js stops reconnecting on them.
# Not final: the browser reconnects with its current session (after a password change, the
# session that made it was given a new key; the others are refused).
CLOSE_REAUTHENTICATE = 4000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_MEMBERSHIP_ENDED = 4403

# Layer events this consumer handles; none of their handlers touches the database.
LAYER_EVENTS = frozenset({"live.event", "live.close"})


class LiveConsumer(AsyncWebsocketConsumer):
    """A signed-in, active member's socket: the market, the grid and their own private events."""

    joined: tuple[str, ...] = ()
    _refresher: asyncio.Task | None = None
    # Held while a handler runs: one at a time, as Channels guarantees.
    _turn: asyncio.Lock

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__`` with a leaner loop, same guarantees.

        Channels waits on the socket and the layer with ``asyncio.wait`` and a fresh task per
        message; a live socket gets a layer message per broadcast, so with a thousand sockets
        that bookkeeping is a large share of a broadcast. Here each source has one long-lived
        loop and a lock keeps handlers one at a time, as Channels does (a broadcast never
        overtakes ``connect``). Whichever loop ends first (the disconnect's ``StopConsumer``,
        or an error) ends the other, and an error propagates as it would in Channels.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        self._turn = asyncio.Lock()
        loops = [asyncio.ensure_future(self._loop(source)) for source in (receive, self.channel_receive)]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            forget = getattr(self.channel_layer, "channel_forget", None)
            if forget is not None:
                forget(self.channel_name)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, StopConsumer):
                raise error

    async def _loop(self, source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        while True:
            message = await source()
            async with self._turn:
                await self.dispatch(message)

    async def connect(self) -> None:
        member_id = await database_sync_to_async(live_member_id)(user=self.scope.get("user"))
        if member_id is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # The group of the credential it was opened with (LiveAuthMiddleware): signing out or
        # revoking the token closes it.
        credential = self.scope.get("live_credential")
        extra = (credential,) if credential else ()
        if self.scope.get("live_via_session"):
            extra += (groups.member_sessions_group(member_id),)
        await self._join(groups.member_socket_groups(member_id) + extra)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        joined, self.joined = self.joined, ()
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The stream is one-way; whatever a client sends is ignored."""

    async def live_event(self, event: dict[str, Any]) -> None:
        """A broadcast: ``{"type": "live.event", "text": "<JSON>"}`` from the broadcast helper, or
        ``{"type": "live.event", "payload": {...}}`` from code that sends a dict itself."""
        text = event.get("text")
        if text is None:
            text = json.dumps(event["payload"], separators=(",", ":"))
        # The client may have gone with its disconnect queued behind this broadcast: the server
        # raises ClientDisconnected (an OSError). Nothing to deliver, and not an error.
        with contextlib.suppress(OSError):
            await self.base_send({"type": "websocket.send", "text": text})

    async def live_close(self, event: dict[str, Any]) -> None:
        """The membership stopped being active, or the socket's session or token ended: end this
        socket (see ``member_sockets_close`` and ``credential_sockets_close``)."""
        await self.close(code=event.get("code", CLOSE_MEMBERSHIP_ENDED))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels runs close_old_connections() in the sync thread before every handler: with
        # a thousand sockets in a process that is a thousand thread hops per broadcast, most of
        # the fan-out time. Layer events never touch the database (connect does, through
        # database_sync_to_async, which closes stale connections itself), so they skip it.
        if message["type"] in LAYER_EVENTS:
            handler = getattr(self, message["type"].replace(".", "_"))
            await handler(message)
            return
        await super().dispatch(message)

    async def _join(self, names: tuple[str, ...]) -> None:
        for group in names:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = names
        expiry = getattr(self.channel_layer, "group_expiry", None)
        if expiry:
            self._refresher = asyncio.create_task(self._refresh_groups(expiry / 2))

    async def _refresh_groups(self, every_s: float) -> None:
        """Re-join before the layer's group expiry (a day with channels-redis) drops a long-lived
        socket from its groups without a word."""
        while True:
            await asyncio.sleep(every_s)
            # Under the handlers' lock: a disconnect cannot discard in between and leave the
            # channel re-added behind it.
            async with self._turn:
                with contextlib.suppress(Exception):
                    for group in self.joined:
                        await self.channel_layer.group_add(group, self.channel_name)


async def refuse(scope: dict, receive: Any, send: Any) -> None:
    """Reject a websocket handshake (the server answers HTTP 403), with no consumer or channel."""
    await receive()
    await send({"type": "websocket.close"})


class TickerConsumer(LiveConsumer):
    """The public price ticker: anyone, signed in or not, when the coop enables it; it gets
    ``market.cleared`` alone. Refused while ``REALTIME_PUBLIC_TICKER`` is off."""

    async def connect(self) -> None:
        if not settings.REALTIME_PUBLIC_TICKER:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self._join((groups.TICKER,))
        await self.accept()
