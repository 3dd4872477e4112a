"""A real ASGI server (uvicorn, ``energycoop.asgi:application``) on the test database and Redis.

Fixtures (registered for the whole suite in tests/conftest.py):
- ``asgi_server``: one server for the test; ``asgi_server.url`` (http://127.0.0.1:PORT),
  ``asgi_server.ws_url`` (ws://...), ``asgi_server.manage(...)`` / ``asgi_server.shell(code)``
  run a command in a separate Django process with the server's environment (same database,
  Redis and channel-layer prefix), e.g. a broadcast or a clearing "from another process".
- ``asgi_server_factory(**env)``: more servers or other settings, e.g.
  ``asgi_server_factory(REALTIME_PUBLIC_TICKER="true")``, or ``port=`` to restart one in place.

Both need ``transactional_db``: the server reads what the test committed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AsgiServer:
    port: int
    env: dict[str, str]
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def manage(self, *args: str, timeout: float = 120) -> str:
        """``manage.py ARGS`` in a separate process with this server's environment."""
        from tests.conftest import ROOT

        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def shell(self, code: str, *, timeout: float = 120) -> str:
        """Python ``code`` in a separate Django process (``manage.py shell -c``)."""
        return self.manage("shell", "-c", code, timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def asgi_server_start(*, log_dir: Path, port: int | None = None, **extra_env: str) -> AsgiServer:
    from tests.conftest import ROOT, process_env

    port = port or free_port()
    env = process_env(**extra_env)
    log_path = log_dir / f"uvicorn-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "energycoop.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--lifespan", "off", "--log-level", "warning",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = AsgiServer(port=port, env=env, process=process, log_path=log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"uvicorn exited with {process.returncode}:\n{server.log()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"uvicorn did not listen within {STARTUP_TIMEOUT_S} s:\n{server.log()}")
        time.sleep(0.1)


@pytest.fixture
def asgi_server_factory(transactional_db, tmp_path) -> Iterator[Callable[..., AsgiServer]]:
    started: list[AsgiServer] = []

    def start(*, port: int | None = None, **extra_env: str) -> AsgiServer:
        server = asgi_server_start(log_dir=tmp_path, port=port, **extra_env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def asgi_server(asgi_server_factory) -> AsgiServer:
    return asgi_server_factory()
