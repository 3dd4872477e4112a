"""Development and the embedded default (`make run`): SQLite, no external services."""

from energycoop.settings import env
from energycoop.settings.base import *  # noqa: F403

DEBUG = env.get_bool("DJANGO_DEBUG", True)
EMAIL_BACKEND = env.get_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# Serve static files straight from static/ and the apps without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
