"""Shared fixtures: API clients with tokens, and real processes (Celery) against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import member_make, token_make

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Forget this process's cached keys (rate limits, throttles) after each test."""
    yield
    import redis

    prefix = settings.CACHES["default"].get("KEY_PREFIX")
    if prefix:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def member(db):
    return member_make()


@pytest.fixture
def api(member) -> APIClient:
    """An API client authenticated with the member's personal access token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_make(member)}")
    return client


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by a test."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "energycoop.settings.test",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def celery_queue_name() -> str:
    """A queue of this test's own, so leftovers of other runs never reach its worker."""
    return f"test-{os.getpid()}-{time.monotonic_ns()}"


@pytest.fixture
def celery_worker_process(transactional_db, celery_queue_name) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on Redis and the test database (PostgreSQL)."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "energycoop.celery:app", "worker",
            "--loglevel", "INFO", "--concurrency", "1", "--pool", "prefork",
            "--queues", celery_queue_name, "--without-mingle", "--without-gossip",
            "--hostname", f"{celery_queue_name}@%h",
        ],
        cwd=ROOT,
        env=process_env(CELERY_TASK_DEFAULT_QUEUE=celery_queue_name),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def sigkill_mid_transaction(*, module: str, step: str, call: str, marker: Path) -> str:
    """Run ``call`` in a separate ``manage.py shell`` process whose ``module.step`` is wrapped to
    record its result in ``marker`` and then hang, still inside the transaction; SIGKILL the
    process once the marker appears. Returns what the step recorded."""
    script = (
        f"import time, pathlib\nfrom {module.rsplit('.', 1)[0]} import {module.rsplit('.', 1)[1]} as target\n"
        "from apps.common.clock import parse_instant\n"
        f"original = target.{step}\n"
        "def hang(*a, **k):\n"
        f"    n = original(*a, **k); pathlib.Path({str(marker)!r}).write_text(str(n)); time.sleep(60); return n\n"
        f"target.{step} = hang\n"
        f"target.{call}\n"
    )
    import os
    import signal

    proc = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=process_env(), start_new_session=True
    )
    try:
        wait_for(marker.exists, timeout=60, message=f"{step} to run (uncommitted)")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    return marker.read_text()


# A real ASGI server on the test database and Redis (websocket and browser tests, any app).
from tests.e2e.servers import asgi_server, asgi_server_factory  # noqa: E402, F401


def race(call, *, runners: int = 2, timeout: float = 60) -> list:
    """Run ``call`` in ``runners`` threads released at the same instant, each on its own
    database connection; return their results, or raise the first error any of them hit."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(runners)
    results: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert len(results) == runners, "a runner did not finish in time"
    return results
