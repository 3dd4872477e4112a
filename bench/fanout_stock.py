"""The reference for bench/fanout.py: stock Channels and channels-redis, as the issue measured.

Both the settings module and the ASGI application of the reference server:

    DJANGO_SETTINGS_MODULE=fanout_stock python -m uvicorn --app-dir bench fanout_stock:application

It is the project's settings with channels-redis' own ``RedisChannelLayer`` (default pool,
redis-py's default socket timeout) and a consumer written the way the Channels tutorial
writes one: ``AuthMiddlewareStack`` (session), ``AsyncWebsocketConsumer``, one group, a
handler that sends the pre-encoded text. Nothing here is used by the portal.
"""

from __future__ import annotations

import os
from typing import Any

from energycoop.settings.dev import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": os.environ["CHANNELS_PREFIX"]},
    }
}

_application = None


async def application(scope: dict, receive: Any, send: Any) -> None:
    """Built on first use: this module is the settings too, so Django is not set up at import."""
    global _application
    if _application is None:
        _application = _build()
    await _application(scope, receive, send)


def _build() -> Any:
    from channels.auth import AuthMiddlewareStack
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.asgi import get_asgi_application
    from django.urls import path

    http = get_asgi_application()

    class StockLiveConsumer(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            if not self.scope["user"].is_authenticated:
                await self.close()
                return
            await self.channel_layer.group_add("market", self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard("market", self.channel_name)

        async def live_event(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    return ProtocolTypeRouter(
        {"http": http, "websocket": AuthMiddlewareStack(URLRouter([path("ws/live/", StockLiveConsumer.as_asgi())]))}
    )
