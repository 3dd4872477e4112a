"""The embedded default under test: SQLite and in-process transports (the smoke test)."""

from energycoop.settings.dev import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
