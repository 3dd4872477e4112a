"""The public ticker page and the price tile on members' home page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from apps.members.choices import MemberStatus
from apps.realtime.broadcast import broadcast
from apps.realtime.payloads import MarketCleared
from tests.factories import member_make

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 26, 10, 15, tzinfo=dt.UTC)


@pytest.fixture
def two_cleared(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        broadcast(MarketCleared(interval_start=START, price=Decimal("0.11"), volume_wh=4200, trades=3))
        broadcast(
            MarketCleared(
                interval_start=START + dt.timedelta(minutes=15), price=Decimal("0.125"), volume_wh=12345, trades=7
            )
        )


def test_the_ticker_is_not_found_while_off(client, settings):
    settings.REALTIME_PUBLIC_TICKER = False
    assert client.get("/ticker/").status_code == 404


def test_the_ticker_shows_the_last_prices_and_listens_to_its_own_socket(client, settings, two_cleared):
    settings.REALTIME_PUBLIC_TICKER = True
    response = client.get("/ticker/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-live-url="/ws/ticker/"' in html
    assert "js/live.js" in html
    # Newest first, in the coop's time zone (Europe/Amsterdam: UTC+1 in November).
    assert html.index("0.12500") < html.index("0.11000")
    assert "Thu 26 Nov, 11:30" in html and "12,345 Wh" in html
    assert 'data-interval-start="2026-11-26T10:30:00Z"' in html


def test_the_ticker_without_any_clearing_says_so(client, settings):
    settings.REALTIME_PUBLIC_TICKER = True
    html = client.get("/ticker/").content.decode()
    assert "No interval has cleared yet." in html


def test_an_active_members_home_has_the_live_price_tile(two_cleared):
    member = member_make()
    client = Client()
    client.force_login(member.user)
    html = client.get("/").content.decode()
    assert 'data-live-tile="price"' in html and 'data-live-url="/ws/live/"' in html
    assert "data-live-state" in html and "js/live.js" in html
    assert '<span data-field="price">0.12500</span>' in html


@pytest.mark.parametrize("status", [MemberStatus.APPLICANT, MemberStatus.SUSPENDED])
def test_no_tile_for_a_membership_that_is_not_active(status):
    member = member_make(status=status)
    client = Client()
    client.force_login(member.user)
    assert 'data-live-tile="price"' not in client.get("/").content.decode()


def test_no_tile_for_visitors(client):
    assert 'data-live-tile="price"' not in client.get("/").content.decode()
