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
