"""``run_portal``: the whole portal in one command (what ``make run`` calls).

Starts the ASGI server (uvicorn), one Celery worker, Celery beat and the demo meter simulator
(``simulate_meters``, posting readings through the HTTP API) as separate processes, the same
layout as production (plus the simulator). Without ``REDIS_URL`` it first starts an embedded
Redis-protocol server (fakeredis's TCP server, with Lua for channels-redis) inside this
process and points every child at it, so the worker and the web process share the Celery
broker and the channel layer with no external service. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.common.clock import format_instant

STOP_GRACE_SECONDS = 10


def embedded_redis_start(host: str, port: int) -> Any:
    """An in-process Redis-protocol server on ``host:port``; returns it (``shutdown()`` stops it)."""
    import redis
    from fakeredis import TcpFakeServer

    server = TcpFakeServer((host, port), server_type="redis")
    server.daemon_threads = True

    class ErrorRepliesKeepTheConnection(server.RequestHandlerClass):  # type: ignore[misc,name-defined]
        """fakeredis closes a connection after any error reply; Redis answers ``-NOSCRIPT`` to an
        unknown EVALSHA (Celery's and channels-redis's first call of each script) and carries on,
        and so does this: the client then loads the script instead of reconnecting."""

        def setup(self) -> None:
            super().setup()
            client = self.current_client
            read = client.read_response

            def read_response(*args: Any, **kwargs: Any) -> Any:
                try:
                    return read(*args, **kwargs)
                except redis.exceptions.ResponseError as error:
                    return error  # written as the error reply it is

            client.read_response = read_response

    server.RequestHandlerClass = ErrorRepliesKeepTheConnection
    threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()
    return server


class Command(BaseCommand):
    help = "Serve the portal: ASGI server, Celery worker and beat (and an embedded Redis without REDIS_URL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--redis-port", type=int, default=6390, help="Port of the embedded Redis server.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")
        parser.add_argument("--no-beat", action="store_true", help="Do not start Celery beat.")
        parser.add_argument("--no-simulator", action="store_true", help="Do not start the demo meter simulator.")

    def handle(self, *args: Any, **options: Any) -> None:
        env = os.environ.copy()
        env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
        env.setdefault("PYTHONUNBUFFERED", "1")
        if settings.ENERGYCOOP_CLOCK and not settings.ENERGYCOOP_CLOCK_ANCHOR:
            # One anchor for every process, so they all read the same business time.
            env["ENERGYCOOP_CLOCK_ANCHOR"] = format_instant(timezone.now())
        embedded = None
        if not settings.REDIS_URL:
            embedded = embedded_redis_start("127.0.0.1", options["redis_port"])
            env["REDIS_URL"] = f"redis://127.0.0.1:{options['redis_port']}/0"
            self.stdout.write(f"Embedded Redis-protocol server (fakeredis) on {env['REDIS_URL']}")
        is_sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
        python = sys.executable
        commands: dict[str, list[str]] = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "energycoop.asgi:application",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--lifespan",
                "off",
                # Per-message compression costs a third more server CPU per broadcast for
                # messages of a few hundred bytes (docs/performance.md, "Live fan-out").
                "--ws-per-message-deflate",
                "false",
            ],
        }
        if not options["no_worker"]:
            # SQLite takes one writer at a time: one worker process there; PostgreSQL scales out.
            concurrency = "1" if is_sqlite else str(max(2, os.cpu_count() or 2))
            commands["worker"] = [
                python,
                "-m",
                "celery",
                "-A",
                "energycoop.celery:app",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                concurrency,
                "--hostname",
                f"worker-{os.getpid()}@%h",
                # The portal's one worker has no peers to synchronise with or gossip to.
                "--without-mingle",
                "--without-gossip",
            ]
        if not options["no_beat"]:
            schedule = settings.CELERY_BEAT_SCHEDULE_FILENAME
            os.makedirs(os.path.dirname(schedule), exist_ok=True)
            commands["beat"] = [
                python,
                "-m",
                "celery",
                "-A",
                "energycoop.celery:app",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                schedule,
            ]
        if not options["no_simulator"]:
            # The demo meters, posting their readings through the API of the web process.
            commands["simulator"] = [
                python,
                str(settings.BASE_DIR / "manage.py"),
                "simulate_meters",
                "--base-url",
                f"http://{options['host']}:{options['port']}",
            ]
        children = self._start(commands, env)
        self.stdout.write(self.style.SUCCESS(f"Portal on http://{options['host']}:{options['port']}/ (Ctrl-C stops)"))
        stopping = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        exit_code = 0
        try:
            while not stopping.is_set():
                for name, proc in children.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the portal.")
                        exit_code = proc.returncode or 1
                        stopping.set()
                        break
                stopping.wait(0.5)
        finally:
            self._stop_all(children)
            if embedded is not None:
                embedded.shutdown()
                embedded.server_close()
        if exit_code:
            raise CommandError(f"A portal process failed (exit {exit_code}).")
        self.stdout.write("Portal stopped.")

    def _start(self, commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, subprocess.Popen]:
        children: dict[str, subprocess.Popen] = {}
        for name, command in commands.items():
            # Own process group: Ctrl-C reaches the supervisor, which then stops each child in order.
            children[name] = subprocess.Popen(command, env=env, start_new_session=True)
            self.stdout.write(f"started {name} (pid {children[name].pid})")
        return children

    def _stop_all(self, children: dict[str, subprocess.Popen]) -> None:
        for proc in children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_GRACE_SECONDS} s; killing it.")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
