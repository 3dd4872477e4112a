"""Tokens in a socket's query string never reach the server's logs."""

from __future__ import annotations

import logging

from apps.realtime.logs import redact


def test_the_token_in_a_query_string_is_redacted():
    assert redact("/ws/live/?token=ecp_abc-123") == "/ws/live/?token=[redacted]"
    assert redact("/ws/live/?a=1&token=ecp_x&b=2") == "/ws/live/?a=1&token=[redacted]&b=2"
    assert redact("/ws/live/") == "/ws/live/"


def test_uvicorn_handshake_lines_are_logged_without_the_token(caplog):
    logger = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        # What uvicorn's websocket protocols log for every handshake.
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/live/?token=ecp_secret")
    assert "ecp_secret" not in caplog.text
    assert "/ws/live/?token=[redacted]" in caplog.text
