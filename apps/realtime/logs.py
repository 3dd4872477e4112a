"""Keep personal access tokens out of the server's logs.

CONTRACT.md has scripts authenticate a socket with ``/ws/live/?token=...``, and uvicorn logs
every websocket handshake with its query string ("WebSocket /ws/live/?token=... [accepted]").
This filter, attached to the server's loggers when the app loads, rewrites the token's value
before any handler formats the record.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']*")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "daphne.server", "django.channels.server")


def redact(text: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class TokenRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) and "token=" in arg else arg for arg in record.args)
        return True


def server_logs_redact() -> None:
    """Attach the filter to the ASGI servers' loggers (idempotent)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, TokenRedactingFilter) for existing in logger.filters):
            logger.addFilter(TokenRedactingFilter())
