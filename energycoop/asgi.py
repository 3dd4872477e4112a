"""The ASGI application: HTTP to Django; websockets through origin check, auth and routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energycoop.settings.dev")

from energycoop.settings import env

env.web_process = True  # DATABASE_POOL_MAX_SIZE applies here (settings are not loaded yet)

# Django must be set up before anything imports models (the consumers and auth below).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.realtime.auth import LiveSocketStack  # noqa: E402
from apps.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": LiveSocketStack(URLRouter(websocket_urlpatterns)),
    }
)
