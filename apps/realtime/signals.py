"""Receivers that end live sockets when the credential they were opened with ends."""

from __future__ import annotations

from typing import Any

from apps.realtime.broadcast import (
    credential_sockets_close,
    member_session_sockets_reauthenticate,
    member_sockets_close,
)


def session_sockets_close(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out``: close the sockets this browser session opened (Django sends the
    signal before it flushes the session, so the key is still the old one)."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        credential_sockets_close(kind="session", key=key)


def password_sockets_reauthenticate(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """allauth's ``password_changed``, ``password_set`` and ``password_reset``: every other
    browser session of the member stops being valid, so their sockets must not stay open."""
    member_id = getattr(getattr(user, "member", None), "pk", None)
    if member_id is not None:
        member_session_sockets_reauthenticate(member_id=member_id)


def membership_sockets_close(sender: Any, member_id: int, **kwargs: Any) -> None:
    """``members.signals.membership_deactivated``: live sockets belong to active members only."""
    member_sockets_close(member_id=member_id)


def token_sockets_close(sender: Any, token_id: int, **kwargs: Any) -> None:
    """``members.signals.api_token_revoked``: the sockets opened with that token close."""
    credential_sockets_close(kind="token", key=token_id)
