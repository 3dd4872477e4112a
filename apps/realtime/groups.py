"""Every channel-layer group name is built here, nowhere else, and so is who gets which event.

Groups and their sockets:
- ``MARKET``: every signed-in member's ``/ws/live/`` socket: ``market.*`` events.
- ``GRID``: the same sockets: ``grid.*`` and ``dr.*`` events.
- ``member_group(id)``: that member's sockets alone: private events (``trade.filled``) and
  the close order sent when the membership stops being active.
- ``credential_group(kind, key)``: the sockets opened with one browser session or one API
  token: the close order sent when it ends (sign-out, revocation).
- ``member_sessions_group(id)``: that member's sockets opened with a browser session: the
  order to re-authenticate when the password changes (other sessions then stop being valid).
- ``TICKER``: the public ticker's sockets (``/ws/ticker/``): ``market.cleared`` alone.
"""

from __future__ import annotations

import hashlib

MARKET = "market"
GRID = "grid"
TICKER = "ticker"

# Events that belong to one member; sending one needs that member's id.
PRIVATE_TYPES = frozenset({"trade.filled"})
# The one event the public ticker shows besides the members' market group.
PUBLIC_TYPES = frozenset({"market.cleared"})


def member_group(member_id: int) -> str:
    """Private events of one member (fills) and the order to close their sockets."""
    if isinstance(member_id, bool) or not isinstance(member_id, int):
        raise TypeError(f"member_id must be an int, got {member_id!r}")
    return f"member.{member_id}"


def credential_group(kind: str, key: str | int) -> str:
    """The sockets opened with one credential: ``("session", session_key)`` or ``("token", id)``.
    Hashed, so no session key ever becomes a Redis key name."""
    if kind not in {"session", "token"} or not str(key):
        raise ValueError(f"No credential group for {kind!r}")
    return "credential." + hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:40]


def member_sessions_group(member_id: int) -> str:
    """The member's sockets that a browser session opened (not those of API tokens)."""
    return member_group(member_id) + ".sessions"


def member_socket_groups(member_id: int) -> tuple[str, ...]:
    """What a signed-in member's socket joins."""
    return (MARKET, GRID, member_group(member_id))


def groups_for(event_type: str, *, member_id: int | None = None) -> tuple[str, ...]:
    """The groups an event of ``event_type`` goes to; refuses a private event without its member
    and a member id on a public event (a sign the caller meant something private)."""
    if event_type in PRIVATE_TYPES:
        if member_id is None:
            raise ValueError(f"{event_type} is private: pass the member_id it belongs to")
        return (member_group(member_id),)
    if member_id is not None:
        raise ValueError(f"{event_type} goes to every member; it takes no member_id")
    if event_type.startswith("market."):
        return (MARKET, TICKER) if event_type in PUBLIC_TYPES else (MARKET,)
    if event_type.startswith(("grid.", "dr.")):
        return (GRID,)
    raise ValueError(f"No route for live event type {event_type!r}")
