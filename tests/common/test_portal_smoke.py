"""`make run`'s embedded default, for real: SQLite, the embedded Redis-protocol server, uvicorn,
a Celery worker and beat as separate processes, and Ctrl-C stopping them all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_TASK_DEFAULT_QUEUE"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "energycoop.settings.dev",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
            "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
            "HEARTBEAT_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local server
            return response.status
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _receive_one(url: str, origin: str, trigger) -> dict:
    import websockets

    async with websockets.connect(url, origin=origin) as ws:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(trigger)
        return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


def test_make_run_serves_the_portal_on_sqlite_with_an_embedded_redis(tmp_path):
    env = _embedded_env(tmp_path)
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed_demo", "--members", "3")
    member = json.loads(_manage(env, "create_member", "smoke@example.org", "--meter", "SMOKE-1"))

    port, redis_port = _free_port(), _free_port()
    log = open(tmp_path / "portal.log", "w+")  # noqa: SIM115 - read back after the run
    portal = subprocess.Popen(
        [sys.executable, "manage.py", "run_portal", "--port", str(port), "--redis-port", str(redis_port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while _get(f"{base}/") != 200:
            assert portal.poll() is None, (tmp_path / "portal.log").read_text()
            assert time.monotonic() < deadline, "portal did not answer within 60 s"
            time.sleep(0.5)
        assert _get(f"{base}/accounts/login/") == 200
        assert _get(f"{base}/static/css/site.css") == 200

        # Beat sends the heartbeat, the worker runs it and writes SQLite: both are alive and
        # share the embedded broker.
        db = sqlite3.connect(tmp_path / "portal.sqlite3")
        deadline = time.monotonic() + 60
        while not db.execute("select count from common_heartbeat where name='worker'").fetchone():
            assert time.monotonic() < deadline, (tmp_path / "portal.log").read_text()
            time.sleep(0.5)

        # A live event sent from another process reaches a websocket client of the web process.
        def send_from_another_process() -> None:
            _manage(
                {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"},
                "shell",
                "-c",
                "from asgiref.sync import async_to_sync; from channels.layers import get_channel_layer; "
                "async_to_sync(get_channel_layer().group_send)('market', "
                "{'type': 'live.event', 'payload': {'type': 'smoke', 'version': 1}})",
            )

        url = f"ws://127.0.0.1:{port}/ws/live/?token={member['token']}"
        message = asyncio.run(_receive_one(url, base, send_from_another_process))
        assert message["type"] == "smoke"
    finally:
        portal.send_signal(signal.SIGINT)
        try:
            portal.wait(timeout=30)
        except subprocess.TimeoutExpired:
            portal.kill()
            raise
    output = (tmp_path / "portal.log").read_text()
    pids = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", output)]
    assert len(pids) == 4, output  # web, worker, beat, meter simulator
    assert portal.returncode == 0, output
    assert "Portal stopped." in output
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "Ctrl-C left processes running"
