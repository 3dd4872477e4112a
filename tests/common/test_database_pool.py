"""DATABASE_POOL_MAX_SIZE: web processes reuse PostgreSQL connections across requests."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from energycoop.settings import env
from tests.conftest import ROOT, process_env
from tests.factories import member_make, token_make

PG_URL = "postgres://postgres@127.0.0.1:5432/energycoop"


def test_pool_is_configured_for_postgresql_web_processes_only(monkeypatch):
    monkeypatch.setattr(env, "web_process", True)
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "7")
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    config = env.database_config("sqlite:///unused.sqlite3")
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 3, "timeout": 7}
    assert config["CONN_MAX_AGE"] == 0

    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/x.sqlite3")
    assert "pool" not in env.database_config("sqlite:///unused.sqlite3").get("OPTIONS", {})

    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "0")
    assert "pool" not in env.database_config("sqlite:///unused.sqlite3").get("OPTIONS", {})

    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    monkeypatch.setattr(env, "web_process", False)
    assert "pool" not in env.database_config("sqlite:///unused.sqlite3").get("OPTIONS", {})


def test_pool_and_persistent_connections_are_refused_together(monkeypatch):
    monkeypatch.setattr(env, "web_process", True)
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "60")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env.database_config("sqlite:///unused.sqlite3")


@pytest.mark.parametrize(
    ("module", "pooled"), [("energycoop.asgi", True), ("energycoop.celery", False)], ids=["asgi", "celery"]
)
def test_only_the_asgi_application_pools(module, pooled):
    code = (
        f"import {module}, django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default'].get('OPTIONS', {}).get('pool'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=process_env(DATABASE_POOL_MAX_SIZE="4", DATABASE_CONN_MAX_AGE="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = "{'min_size': 1, 'max_size': 4, 'timeout': 10}" if pooled else "None"
    assert result.stdout.strip() == expected


def _sessions(application_name: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return sorted(row[0] for row in cursor.fetchall())


def _get_me(port: int, key: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/me/", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        assert response.status == 200, response.read()[:300]
    finally:
        conn.close()


@pytest.mark.parametrize("pooled", [True, False], ids=["pool", "no-pool"])
def test_uvicorn_requests_reuse_pooled_connections(asgi_server_factory, pooled):
    """Twelve authenticated requests to a real uvicorn: with the pool they share at most its two
    connections, which stay open between requests; without it each request's connection is gone
    when the response is."""
    key = token_make(member_make())
    name = f"pool-test-{time.monotonic_ns()}"
    url = process_env()["DATABASE_URL"] + f"?application_name={name}"
    extra = {"DATABASE_URL": url, "DATABASE_CONN_MAX_AGE": "0"}
    if pooled:
        extra["DATABASE_POOL_MAX_SIZE"] = "2"
    server = asgi_server_factory(**extra)
    seen: set[int] = set()
    for _ in range(12):
        _get_me(server.port, key)
        seen.update(_sessions(name))
    if pooled:
        assert 1 <= len(seen) <= 2, seen
        assert _sessions(name), "the pool keeps its connections between requests"
    else:
        deadline = time.monotonic() + 5
        while _sessions(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sessions(name) == []
