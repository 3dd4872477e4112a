"""Who may open a live socket: the origin check, then the browser's session or ``?token=``.

The consumers decide what an authenticated user may receive (``selectors.live_member_id``);
these layers only establish ``scope["user"]`` and turn away foreign browser pages.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from apps.realtime import groups
from apps.realtime.consumers import refuse


class BrowserOriginValidator(OriginValidator):
    """Refuses a socket opened by a page of another site (cross-site websocket hijacking).

    Browsers always send ``Origin`` on a websocket handshake; it must name one of
    ``ALLOWED_HOSTS``. Scripts send none and authenticate with ``?token=``, so a missing
    ``Origin`` passes (Channels' own ``AllowedHostsOriginValidator`` refuses it). The hosts
    are read per connection, so a settings change applies without rebuilding the app.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        origins = [value for name, value in scope.get("headers", []) if name == b"origin"]
        if not origins:
            return await self.application(scope, receive, send)
        self.allowed_origins = list(settings.ALLOWED_HOSTS)
        try:
            parsed = urlparse(origins[0].decode("latin1"))
        except ValueError:
            parsed = None
        if parsed is not None and self.validate_origin(parsed):
            return await self.application(scope, receive, send)
        return await refuse(scope, receive, send)


@database_sync_to_async
def _user_for_token(key: str) -> tuple[Any, str | None]:
    from apps.members.services import api_token_authenticate

    token = api_token_authenticate(key=key)
    if token is None:
        return AnonymousUser(), None
    return token.user, groups.credential_group("token", token.pk)


async def _user_for_session(scope: dict) -> tuple[Any, str | None]:
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            cookies.update(parse_cookie(value.decode("latin1")))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return AnonymousUser(), None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # Channels' own check: the session's user, its backend, and the password hash.
    return await get_user({"session": store}), groups.credential_group("session", session_key)


class LiveAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` once, at connect: the user of ``?token=`` when one is given (a bad
    token is anonymous, never a fallback to the session), else the browser session's user.

    Channels' ``AuthMiddlewareStack`` would do the session half too, but it wraps ``send`` to
    save the session, a check paid on every message of every socket; a live socket never
    changes its session, so it is read once and nothing is wrapped.
    """

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        keys = query.get("token")
        user, credential = await _user_for_token(keys[0]) if keys else await _user_for_session(scope)
        scope = dict(scope, user=user, live_credential=credential, live_via_session=not keys)
        return await super().__call__(scope, receive, send)


def LiveSocketStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' stacks
    """Everything in front of the live consumers: origin check, then token or session."""
    return BrowserOriginValidator(LiveAuthMiddleware(inner))
