"""In Chromium: the market page shows a new cleared price, the price history and the member's
own fill without a reload, when the real clearing runs in another process."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.common.clock import format_instant
from apps.market.services import order_input_parse, order_submit
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT, NOW

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.websockets]


def test_the_market_page_shows_the_clearing_live(asgi_server_factory, page, sign_in, settings, monkeypatch):
    from playwright.sync_api import expect

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain
    # synchronous test setup, not code running inside that loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    anchor = format_instant(timezone.now())
    settings.ENERGYCOOP_CLOCK = format_instant(NOW)
    settings.ENERGYCOOP_CLOCK_ANCHOR = anchor
    server = asgi_server_factory(ENERGYCOOP_CLOCK=format_instant(NOW), ENERGYCOOP_CLOCK_ANCHOR=anchor)
    buyer, seller = member_make(), member_make()
    meter_make(seller)
    orders = {}
    for member, side, price in ((buyer, "buy", "0.20"), (seller, "sell", "0.10")):
        orders[side], _ = order_submit(
            member=member,
            order=order_input_parse(
                interval_start=format_instant(NEXT), side=side, quantity_wh=1000, limit_price=price, now=NOW
            ),
            now=NOW,
        )

    sign_in(page, server, buyer)
    page.goto(f"{server.url}/market/")
    tile = page.locator('[data-live-tile="price"]')
    expect(tile.locator("[data-live-state]")).to_have_attribute("data-state", "live")
    expect(page.locator(f"#order-{orders['buy'].pk} .order-status")).to_have_text("Open")
    page.evaluate("window.notReloaded = true")

    # The real clearing, in another process: commits, then publishes to the channel layer.
    server.shell(
        "from apps.common.clock import parse_instant; from apps.market.services import interval_clear\n"
        f"interval_clear(start=parse_instant({format_instant(NEXT)!r}), now=parse_instant({format_instant(NEXT)!r}))\n"
    )

    expect(tile.locator('[data-field="price"]')).to_have_text("0.15000", timeout=10_000)
    expect(page.locator("#recent-results-rows tr").first).to_contain_text("0.15000")
    expect(page.locator("#fills li").first).to_have_text(f"Order #{orders['buy'].pk} filled: 1000 Wh at 0.15000")
    expect(page.locator(f"#order-{orders['buy'].pk} .order-status")).to_have_text("Filled")
    # The seller's fill is the seller's alone.
    expect(page.locator("#fills li")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
