"""The one way other apps put something on a live socket.

    from apps.realtime.broadcast import broadcast, broadcast_many, market_depth_publish
    from apps.realtime.payloads import MarketCleared, TradeFilled

    broadcast(MarketCleared(interval_start=start, price=price, volume_wh=volume_wh, trades=n))
    broadcast_many([(TradeFilled(order_id=o.pk, quantity_wh=q, price=price), o.member_id) for ...])
    market_depth_publish(interval_start=start, bids=[(price, wh), ...], offers=[(price, wh), ...])

Every call only schedules: the message leaves after the current transaction commits, and a
rolled-back transaction (or savepoint) sends nothing. Outside a transaction it leaves at once.
The payload is validated and encoded at the call, so a bad value fails the caller's use case.
A failure to reach Redis after commit is logged, never raised into a use case that already
committed. Routing (which groups see which type) is :func:`apps.realtime.groups.groups_for`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction

from apps.realtime import groups
from apps.realtime.payloads import LivePayload, MarketDepth
from apps.realtime.selectors import CLEARED_RECENT_KEEP, CLEARED_RECENT_KEY
from apps.realtime.throttle import Coalescer

logger = logging.getLogger(__name__)

# market.depth leaves at most once per this many seconds per interval (plus the final state).
DEPTH_WINDOW_S = 0.25
CLEARED_RECENT_TTL_S = 7 * 24 * 3600

# A delivery: the groups and the channel-layer event for them.
_Delivery = tuple[tuple[str, ...], dict[str, Any]]


def live_event(text: str) -> dict[str, Any]:
    """The channel-layer event the consumers turn into a socket message."""
    return {"type": "live.event", "text": text}


def broadcast(payload: LivePayload, *, member_id: int | None = None) -> None:
    """Send ``payload`` to its audience after commit; ``member_id`` is required for a private
    payload (``TradeFilled``) and refused for the others. ``MarketDepth`` is throttled."""
    broadcast_many([(payload, member_id)])


def broadcast_many(items: Iterable[tuple[LivePayload, int | None]]) -> None:
    """Like :func:`broadcast` for many ``(payload, member_id)`` pairs, sent in order, in one go
    after commit: what a clearing with thousands of fills should call."""
    deliveries: list[_Delivery] = []
    depths: list[tuple[str, str]] = []
    cleared: list[dict[str, Any]] = []
    for payload, member_id in items:
        targets = groups.groups_for(payload.type, member_id=member_id)
        message = payload.as_message()
        # Encoded once here; every socket sends the same text.
        text = json.dumps(message, separators=(",", ":"))
        if isinstance(payload, MarketDepth):
            depths.append((message["interval_start"], text))
            continue
        if payload.type in groups.PUBLIC_TYPES:
            cleared.append(message)
        deliveries.append((targets, live_event(text)))
    if deliveries or cleared:
        _on_commit(_deliver, deliveries, cleared)
    for interval_start, text in depths:
        _on_commit(_depth.offer, interval_start, text)


def market_depth_publish(
    *, interval_start: Any, bids: Sequence[tuple[Decimal, int]], offers: Sequence[tuple[Decimal, int]]
) -> None:
    """Publish an interval's aggregated book after commit, at most a few times a second per
    interval across all processes; the last state published always reaches the sockets."""
    broadcast(MarketDepth(interval_start=interval_start, bids=bids, offers=offers))


def member_sockets_close(*, member_id: int) -> None:
    """Close every live socket of the member after commit (their membership stopped being
    active); the sockets see close code 4403 and live.js does not reconnect."""
    from apps.realtime.consumers import CLOSE_MEMBERSHIP_ENDED

    event = {"type": "live.close", "code": CLOSE_MEMBERSHIP_ENDED}
    delivery: _Delivery = ((groups.member_group(member_id),), event)
    _on_commit(_deliver, [delivery], [])


def credential_sockets_close(*, kind: str, key: str | int) -> None:
    """Close the live sockets opened with one browser session or one API token after commit (it
    was signed out or revoked); they see close code 4401 and live.js does not reconnect."""
    from apps.realtime.consumers import CLOSE_UNAUTHENTICATED

    event = {"type": "live.close", "code": CLOSE_UNAUTHENTICATED}
    delivery: _Delivery = ((groups.credential_group(kind, key),), event)
    _on_commit(_deliver, [delivery], [])


def member_session_sockets_reauthenticate(*, member_id: int) -> None:
    """After commit, close the member's sockets that browser sessions opened with code 4000:
    live.js reconnects, and only a session still valid (the one that changed the password,
    under its new key) gets back in. Sockets of API tokens are left alone."""
    from apps.realtime.consumers import CLOSE_REAUTHENTICATE

    event = {"type": "live.close", "code": CLOSE_REAUTHENTICATE}
    delivery: _Delivery = ((groups.member_sessions_group(member_id),), event)
    _on_commit(_deliver, [delivery], [])


def _on_commit(func: Callable[..., None], *args: Any) -> None:
    """Run ``func(*args)`` after commit; a failure then is logged, never raised into the use
    case that already committed (Django's robust on_commit)."""

    def after_commit() -> None:
        func(*args)

    after_commit.__qualname__ = f"live broadcast: {getattr(func, '__qualname__', func)}"
    transaction.on_commit(after_commit, robust=True)


def _deliver(deliveries: list[_Delivery], cleared: list[dict[str, Any]]) -> None:
    if cleared:
        _cleared_remember(cleared)
    if deliveries:
        _send(deliveries)


def _cleared_remember(messages: list[dict[str, Any]]) -> None:
    """Keep the last cleared prices for pages rendered before any socket message arrives."""
    rows = [row for row in cache.get(CLEARED_RECENT_KEY) or [] if isinstance(row, dict)]
    fresh = {message["interval_start"] for message in messages}
    rows = [row for row in rows if row.get("interval_start") not in fresh] + messages
    rows.sort(key=lambda row: row["interval_start"], reverse=True)
    cache.set(CLEARED_RECENT_KEY, rows[:CLEARED_RECENT_KEEP], CLEARED_RECENT_TTL_S)


def _send(deliveries: list[_Delivery]) -> None:
    # Runs where the transaction committed: sync code (services, tasks, the throttle's timer),
    # never inside an event loop (Django refuses on_commit there), so async_to_sync is safe.
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(_send_async)(layer, deliveries)


async def _send_async(layer: Any, deliveries: list[_Delivery]) -> None:
    pairs = [(group, event) for targets, event in deliveries for group in targets]
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None and len(pairs) > 1:
        await send_many(pairs)
        return
    for group, event in pairs:
        await layer.group_send(group, event)


def _depth_send(interval_start: str, text: str) -> None:
    _send([(groups.groups_for(MarketDepth.type), live_event(text))])


_depth = Coalescer(name="realtime:depth", window_s=DEPTH_WINDOW_S, send=_depth_send)
