"""The live endpoints (see CONTRACT.md "Live" and docs/live.md)."""

from django.urls import path, re_path

from apps.realtime.consumers import LiveConsumer, TickerConsumer, refuse

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/ticker/", TickerConsumer.as_asgi()),
    # Any other path is refused at the handshake rather than raising "No route found".
    re_path(r"", refuse),
]
