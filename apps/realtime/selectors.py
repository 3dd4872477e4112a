"""Reads for the live stream: who may hold a socket, and the last prices it announced."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from apps.members.choices import MemberStatus, Role
from apps.members.selectors import member_for_user

# How many market.cleared messages the cache keeps for pages that render before any socket
# message arrives (the price tile, the public ticker).
CLEARED_RECENT_KEEP = 96
CLEARED_RECENT_KEY = "realtime:cleared:recent"


def live_member_id(*, user: Any) -> int | None:
    """The member id behind a socket's user if they may receive the live stream, else None:
    an active membership; the utility's billing accounts (exports only) are not members."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    member = member_for_user(user=user)
    if member is None or member.status != MemberStatus.ACTIVE or member.role == Role.BILLING:
        return None
    return member.pk


def cleared_recent(*, limit: int = 1) -> list[dict[str, Any]]:
    """The last ``market.cleared`` messages broadcast, newest first, as sockets received them."""
    rows = cache.get(CLEARED_RECENT_KEY) or []
    return rows[:limit]


def members_listening(*, member_ids: list[int]) -> set[int]:
    """Which of these members have a live socket now (their private group has a channel).

    A clearing uses it to build ``trade.filled`` messages only for members who can receive
    them: with thousands of fills and a few hundred sockets, that is most of its publishing
    cost saved. A member who connects a moment later sees the fill on the page they load.
    Layers other than Redis cannot tell: every member counts as listening.
    """
    import collections
    import time

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from apps.realtime import groups

    layer = get_channel_layer()
    if layer is None or not hasattr(layer, "_group_key") or not hasattr(layer, "connection"):
        return set(member_ids)

    async def _check() -> set[int]:
        by_shard: dict[int, list[int]] = collections.defaultdict(list)
        for member_id in member_ids:
            by_shard[layer.consistent_hash(groups.member_group(member_id))].append(member_id)
        listening: set[int] = set()
        fresh_after = int(time.time()) - layer.group_expiry
        for shard, ids in by_shard.items():
            pipe = layer.connection(shard).pipeline(transaction=False)
            for member_id in ids:
                pipe.zcount(layer._group_key(groups.member_group(member_id)), fresh_after, "+inf")
            counts = await pipe.execute()
            listening.update(member_id for member_id, count in zip(ids, counts, strict=True) if count)
        return listening

    return async_to_sync(_check)()
