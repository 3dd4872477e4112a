"""In Chromium: pages with the live price tile update without a reload, and reconnect."""

from __future__ import annotations

import pytest

from tests.factories import member_make

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.websockets]


def clearing(price: str, minute: int) -> str:
    """Code for a separate process: what the market's clearing broadcasts after its commit."""
    return (
        "import datetime as dt; from decimal import Decimal; from django.db import transaction; "
        "from apps.realtime.broadcast import broadcast; from apps.realtime.payloads import MarketCleared\n"
        "with transaction.atomic():\n"
        f"    broadcast(MarketCleared(interval_start=dt.datetime(2026, 11, 26, 10, {minute}, tzinfo=dt.UTC), "
        f"price=Decimal('{price}'), volume_wh=31415, trades=9))\n"
    )


def test_a_members_page_shows_a_new_cleared_price_without_reload(asgi_server, page, sign_in):
    from playwright.sync_api import expect

    sign_in(page, asgi_server, member_make())
    page.goto(f"{asgi_server.url}/")
    tile = page.locator('[data-live-tile="price"]')
    expect(tile.locator("[data-live-state]")).to_have_attribute("data-state", "live")
    page.evaluate("window.notReloaded = true")

    asgi_server.shell(clearing("0.24680", 45))

    expect(tile.locator('[data-field="price"]')).to_have_text("0.24680", timeout=10_000)
    expect(tile.locator('[data-field="volume"]')).to_have_text("31,415 Wh")
    expect(tile.locator('[data-field="trades"]')).to_have_text("9")
    # 10:45 UTC is 11:45 in the coop's time zone (Europe/Amsterdam), as the server renders it.
    expect(tile.locator('[data-field="interval"]')).to_have_text("Thu 26 Nov, 11:45")
    assert page.evaluate("window.notReloaded") is True


def test_the_public_ticker_adds_each_cleared_interval_live(asgi_server_factory, page):
    from playwright.sync_api import expect

    server = asgi_server_factory(REALTIME_PUBLIC_TICKER="true")
    page.goto(f"{server.url}/ticker/")
    expect(page.locator("[data-live-state]").first).to_have_attribute("data-state", "live")
    expect(page.locator("[data-live-empty]")).to_be_visible()

    server.shell(clearing("0.11111", 0) + clearing("0.22222", 15).split("\n", 1)[1])

    rows = page.locator("[data-live-ticker] tr[data-interval-start]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator('[data-field="price"]')).to_have_text("0.22222")
    expect(rows.nth(1).locator('[data-field="price"]')).to_have_text("0.11111")
    expect(page.locator('[data-live-tile="price"] [data-field="price"]')).to_have_text("0.22222")


def test_the_page_shows_a_lost_connection_and_reconnects_by_itself(asgi_server_factory, page, sign_in):
    from playwright.sync_api import expect

    server = asgi_server_factory()
    sign_in(page, server, member_make())
    page.goto(f"{server.url}/")
    state = page.locator('[data-live-tile="price"] [data-live-state]')
    expect(state).to_have_attribute("data-state", "live")

    server.stop()
    expect(state).to_have_attribute("data-state", "reconnecting")
    restarted = asgi_server_factory(port=server.port)
    expect(state).to_have_attribute("data-state", "live", timeout=15_000)

    restarted.shell(clearing("0.33333", 30))
    expect(page.locator('[data-live-tile="price"] [data-field="price"]')).to_have_text("0.33333")
