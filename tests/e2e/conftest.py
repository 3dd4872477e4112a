"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download works here).

- ``browser``: a headless Chromium for the test.
- ``page``: a fresh context and page per test (10 s default timeout).
- ``sign_in(page, server, member)``: the page's browser is signed in as ``member`` on
  ``server`` (a session cookie, as after the login form).

Use with ``asgi_server`` (tests/e2e/servers.py): ``page.goto(asgi_server.url + "/market/")``,
then ``asgi_server.shell("...")`` to act from another process and Playwright's ``expect`` to
wait for the page to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch) -> Iterator[Any]:
    """Per test, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is started, and Django refuses ORM calls under a running loop. Within a
    browser test the ORM is allowed (the loop is Playwright's, not the test's); once the
    browser stops, the rest of the suite runs as before."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def sign_in() -> Callable[[Any, Any, Any], None]:
    def sign_in_(page: Any, server: Any, member: Any) -> None:
        from django.test import Client

        client = Client()
        client.force_login(member.user)
        session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": server.url}])

    return sign_in_
