"""The test suite: PostgreSQL and Redis, as in production (`make test` checks they answer)."""

import os

from energycoop.settings import env
from energycoop.settings.base import *  # noqa: F403

DEBUG = False
DATABASES = {"default": env.database_config("postgres://postgres@127.0.0.1:5432/energycoop")}
REDIS_URL = env.get_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "apps.realtime.layers.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.get_str("CHANNELS_PREFIX", "energycoop-test")},
    }
}
# Each test process has its own key prefix; tests/conftest.py empties it between tests, so
# allauth's rate limits and other cached state never leak from one test (or run) to the next.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"test-{os.getpid()}",
    }
}
CELERY_BROKER_URL = REDIS_URL
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
