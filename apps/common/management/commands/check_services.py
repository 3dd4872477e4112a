"""``check_services``: fail clearly when the database or Redis does not answer (used by `make test`)."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = "Check that the configured database and Redis answer."

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        try:
            if connection.vendor == "postgresql":
                # The server, not the database: the test run creates its own database.
                with connection._nodb_cursor() as cursor:
                    cursor.execute("SELECT 1")
            else:
                connection.ensure_connection()
        except Exception as exc:
            raise CommandError(
                f"The database ({db['ENGINE']} at {db.get('HOST') or db.get('NAME')}:{db.get('PORT') or ''}) "
                f"does not answer: {exc}. Start PostgreSQL or set DATABASE_URL."
            ) from exc
        if settings.REDIS_URL:
            try:
                redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
            except Exception as exc:
                raise CommandError(f"Redis at {settings.REDIS_URL} does not answer: {exc}. Start Redis.") from exc
        self.stdout.write(f"database ({connection.vendor}) and Redis ({settings.REDIS_URL or 'none'}) answer.")
