"""Production: PostgreSQL, Redis, HTTPS. Missing secrets fail loudly at start."""

from energycoop.settings import env
from energycoop.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = env.require_str("DJANGO_SECRET_KEY")
DATABASES = {"default": env.database_config(env.require_str("DATABASE_URL"))}
REDIS_URL = env.require_str("REDIS_URL")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "apps.realtime.layers.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.get_str("CHANNELS_PREFIX", "energycoop")},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = REDIS_URL

# HTTPS everywhere; behind a proxy that terminates TLS, trust its X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.get_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.get_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
