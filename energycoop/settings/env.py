"""The one typed reader of the process environment.

Settings modules call these helpers; app code never reads ``os.environ`` for configuration.
Every variable is listed with its default and meaning in ``.env.example``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import overload

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@overload
def get_str(name: str, default: str) -> str: ...
@overload
def get_str(name: str, default: None = None) -> str | None: ...
def get_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def require_str(name: str) -> str:
    """A variable production cannot run without: fail loudly, never guess."""
    value = get_str(name)
    if value is None:
        raise ImproperlyConfigured(f"The environment variable {name} is required.")
    return value


def get_bool(name: str, default: bool = False) -> bool:
    value = get_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}.")


def get_int(name: str, default: int) -> int:
    value = get_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from exc


def get_list(name: str, default: list[str]) -> list[str]:
    value = get_str(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def get_admins(name: str) -> list[tuple[str, str]]:
    """``ADMINS`` from a comma-separated list such as ``Ops <ops@coop.example>, it@coop.example``:
    who gets an email when a request fails with a server error (production)."""
    from email.utils import parseaddr

    admins = []
    for entry in get_list(name, []):
        display, address = parseaddr(entry)
        if "@" not in address:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an email address.")
        admins.append((display or address, address))
    return admins


# Set by energycoop.asgi before the settings load: only web processes pool their database
# connections (a pool's connections and threads would not survive Celery's prefork fork).
web_process = False


def database_config(default_url: str) -> dict:
    """``DATABASE_URL`` (PostgreSQL in production and tests) or the given default."""
    import dj_database_url

    url = get_str("DATABASE_URL", default_url)
    assert url is not None
    config = dj_database_url.parse(url, conn_max_age=get_int("DATABASE_CONN_MAX_AGE", 0))
    pool_size = get_int("DATABASE_POOL_MAX_SIZE", 0)
    if pool_size > 0 and web_process and config["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI a request's queries run on a worker thread and persistent connections
        # (CONN_MAX_AGE) are not reused: each request would connect afresh. A psycopg pool per
        # process keeps connections across requests; the two cannot be combined.
        if config["CONN_MAX_AGE"]:
            raise ImproperlyConfigured("Set DATABASE_POOL_MAX_SIZE or DATABASE_CONN_MAX_AGE, not both.")
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": get_int("DATABASE_POOL_TIMEOUT", 10),
        }
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded default: several processes share one SQLite file; wait for locks
        # instead of failing at once, and write-ahead logging lets readers run alongside.
        config.setdefault("OPTIONS", {}).update(
            {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
        )
    return config
