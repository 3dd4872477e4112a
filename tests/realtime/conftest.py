"""Sockets against the real ASGI application (origin check, auth, routing, consumers) and the
Redis channel layer of the test settings, in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from tests.factories import member_make, token_make

OpenSocket = Callable[..., Awaitable[tuple[WebsocketCommunicator, bool, int | None]]]


@pytest.fixture
async def open_socket() -> AsyncIterator[OpenSocket]:
    """``await open_socket(path, token=..., session=..., origin=..., public=...)`` connects a
    communicator and returns ``(communicator, accepted, close_code)``; every socket opened is
    disconnected at the end of the test."""
    from energycoop.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def open_(
        path: str = "/ws/live/", *, token: str | None = None, session: str | None = None, origin: str | None = None
    ) -> tuple[WebsocketCommunicator, bool, int | None]:
        query = f"?{urlencode({'token': token})}" if token is not None else ""
        headers = []
        if session is not None:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        communicator = WebsocketCommunicator(application, path + query, headers=headers)
        opened.append(communicator)
        accepted, code = await communicator.connect(timeout=5)
        return communicator, accepted, code

    yield open_
    for communicator in opened:
        # A test that timed out waiting has had its application cancelled already.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect(timeout=2)


@pytest.fixture
def live_member(transactional_db):
    """An active member whose rows are committed (the consumers read them from other threads)."""
    return member_make()


@pytest.fixture
def live_token(live_member) -> str:
    return token_make(live_member)


def session_for(member) -> str:
    """The session key of a browser signed in as ``member``."""
    client = Client()
    client.force_login(member.user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value
