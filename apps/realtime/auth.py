"""Websocket authentication: the browser's session, or ``?token=`` for scripts."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    from apps.members.services import api_token_authenticate

    token = api_token_authenticate(key=key)
    return token.user if token is not None else None


class QueryTokenAuthMiddleware(BaseMiddleware):
    """A personal access token in the query string wins over the session."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        keys = query.get("token")
        if keys:
            user = await _user_for_token(keys[0])
            if user is not None:
                scope["user"] = user
            else:
                from django.contrib.auth.models import AnonymousUser

                scope["user"] = AnonymousUser()
        return await super().__call__(scope, receive, send)


def TokenOrSessionAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' stacks
    return AuthMiddlewareStack(QueryTokenAuthMiddleware(inner))
