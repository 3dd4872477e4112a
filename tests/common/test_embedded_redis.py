"""The embedded Redis-protocol server of `make run` answers error replies as Redis does."""

from __future__ import annotations

import socket

from apps.common.management.commands.run_portal import embedded_redis_start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(sock: socket.socket, *parts: str) -> bytes:
    sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts))
    return sock.recv(4096)


def test_an_unknown_script_is_a_noscript_reply_and_the_connection_stays_open():
    port = _free_port()
    server = embedded_redis_start("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert _command(sock, "EVALSHA", "0" * 40, "0").startswith(b"-NOSCRIPT")
            assert _command(sock, "PING") == b"+PONG\r\n"
            assert _command(sock, "NOSUCHCOMMAND").startswith(b"-")
            assert _command(sock, "SET", "k", "v") == b"+OK\r\n"
            assert _command(sock, "GET", "k") in {b"$1\r\nv\r\n", b"+v\r\n"}  # fakeredis may send a simple string
    finally:
        server.shutdown()
