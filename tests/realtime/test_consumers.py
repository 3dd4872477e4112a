"""The live endpoints through the real ASGI stack: who may connect, who receives what."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.test import Client

from apps.members.choices import MemberStatus, Role
from apps.members.services import api_token_revoke, member_set_status
from apps.realtime import groups
from apps.realtime.broadcast import broadcast as broadcast_sync
from apps.realtime.consumers import CLOSE_MEMBERSHIP_ENDED, CLOSE_REAUTHENTICATE, CLOSE_UNAUTHENTICATED
from apps.realtime.payloads import (
    DrEvent,
    GridAlert,
    GridLoading,
    MarketCleared,
    MarketDepth,
    TradeFilled,
)
from tests.factories import PASSWORD, member_make, token_make
from tests.realtime.conftest import session_for

pytestmark = [pytest.mark.websockets, pytest.mark.django_db(transaction=True)]

# Callers of the helper are sync code (services, tasks): from the test's loop, through a thread.
broadcast = sync_to_async(broadcast_sync)

START = dt.datetime(2026, 11, 26, 10, 15, tzinfo=dt.UTC)


def cleared(price: str | None = "0.12345", start: dt.datetime = START) -> MarketCleared:
    return MarketCleared(
        interval_start=start, price=None if price is None else Decimal(price), volume_wh=12_345, trades=3
    )


def every_payload() -> list[tuple[object, bool]]:
    """One payload of each type, and whether it is private."""
    return [
        (cleared(), False),
        (
            MarketDepth(
                interval_start=START,
                bids=[(Decimal("0.2"), 1000), (Decimal("0.15"), 2500)],
                offers=[(Decimal("0.1"), 700)],
            ),
            False,
        ),
        (TradeFilled(order_id=42, quantity_wh=700, price=Decimal("0.125")), True),
        (GridLoading(node="F-1", loading_pct=87.25, ts=START), False),
        (
            GridAlert(node="T-1", level="critical", loading_pct=104, ts=START, message="Transformer T-1 overloaded"),
            False,
        ),
        (
            DrEvent(
                event_id=7,
                start=START,
                end=START + dt.timedelta(hours=1),
                feeders=["F-1", "F-2"],
                target_reduction_w=25_000,
                status="scheduled",
            ),
            False,
        ),
    ]


# --- Who may connect -----------------------------------------------------------------------


async def test_a_member_connects_with_a_token(open_socket, live_token):
    _socket, accepted, _code = await open_socket(token=live_token)
    assert accepted


async def test_a_member_connects_with_the_browser_session(open_socket, live_member):
    session = await sync_to_async(session_for)(live_member)
    _socket, accepted, _code = await open_socket(session=session, origin="http://127.0.0.1:8000")
    assert accepted


@pytest.mark.parametrize("token", ["", "ecp_not-a-real-token"])
async def test_a_bad_token_is_refused_even_with_a_valid_session(open_socket, live_member, token):
    session = await sync_to_async(session_for)(live_member)
    _socket, accepted, _code = await open_socket(token=token, session=session)
    assert not accepted


async def test_a_revoked_token_is_refused(open_socket, live_member):
    def revoked() -> str:
        key = token_make(live_member)
        token = live_member.user.api_tokens.get()
        api_token_revoke(user=live_member.user, token_id=token.pk)
        return key

    _socket, accepted, _code = await open_socket(token=await sync_to_async(revoked)())
    assert not accepted


async def test_anonymous_is_refused(open_socket, settings):
    settings.REALTIME_PUBLIC_TICKER = True  # the public ticker is another endpoint
    _socket, accepted, _code = await open_socket()
    assert not accepted


@pytest.mark.parametrize(
    ("status", "role"),
    [(MemberStatus.APPLICANT, Role.MEMBER), (MemberStatus.SUSPENDED, Role.MEMBER), (MemberStatus.ACTIVE, Role.BILLING)],
)
async def test_only_active_members_get_the_stream(open_socket, transactional_db, status, role):
    def make() -> str:
        return token_make(member_make(status=status, role=role))

    _socket, accepted, _code = await open_socket(token=await sync_to_async(make)())
    assert not accepted


async def test_an_operator_with_an_active_membership_gets_the_stream(open_socket, transactional_db):
    token = await sync_to_async(lambda: token_make(member_make(role=Role.OPERATOR)))()
    _socket, accepted, _code = await open_socket(token=token)
    assert accepted


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example:8000"])
async def test_a_page_of_another_site_is_refused(open_socket, live_member, origin):
    session = await sync_to_async(session_for)(live_member)
    _socket, accepted, _code = await open_socket(session=session, origin=origin)
    assert not accepted


async def test_origin_follows_allowed_hosts(open_socket, live_token, settings):
    settings.ALLOWED_HOSTS = ["coop.example"]
    _socket, accepted, _code = await open_socket(token=live_token, origin="https://coop.example")
    assert accepted
    _socket, accepted, _code = await open_socket(token=live_token, origin="http://localhost:8000")
    assert not accepted


async def test_an_unknown_path_is_refused(open_socket, live_token):
    _socket, accepted, _code = await open_socket("/ws/elsewhere/", token=live_token)
    assert not accepted


# --- The public ticker -----------------------------------------------------------------------


async def test_the_public_ticker_is_refused_while_off(open_socket, settings, transactional_db):
    settings.REALTIME_PUBLIC_TICKER = False
    _socket, accepted, _code = await open_socket("/ws/ticker/")
    assert not accepted


async def test_the_public_ticker_gets_market_cleared_alone(open_socket, settings, live_member):
    settings.REALTIME_PUBLIC_TICKER = True
    ticker, accepted, _code = await open_socket("/ws/ticker/")
    assert accepted
    for payload, private in every_payload():
        await broadcast(payload, member_id=live_member.pk if private else None)
    assert await ticker.receive_json_from(timeout=5) == cleared().as_message()
    assert await ticker.receive_nothing(timeout=0.5)


# --- What each socket receives ---------------------------------------------------------------


@pytest.mark.parametrize(("payload", "private"), every_payload(), ids=lambda value: getattr(value, "type", ""))
async def test_every_payload_type_arrives_as_the_contract_spells_it(
    open_socket, live_member, live_token, payload, private
):
    socket, accepted, _code = await open_socket(token=live_token)
    assert accepted
    await broadcast(payload, member_id=live_member.pk if private else None)
    received = await socket.receive_json_from(timeout=5)
    assert received == payload.as_message()
    assert received["type"] == payload.type and received["version"] == 1


async def test_a_member_never_receives_another_members_private_events(open_socket, transactional_db):
    alice, bob = await sync_to_async(lambda: (member_make(), member_make()))()
    alice_socket, _, _ = await open_socket(token=await sync_to_async(token_make)(alice))
    bob_socket, _, _ = await open_socket(token=await sync_to_async(token_make)(bob))
    fill = TradeFilled(order_id=1, quantity_wh=500, price=Decimal("0.11"))
    await broadcast(fill, member_id=alice.pk)
    assert await alice_socket.receive_json_from(timeout=5) == fill.as_message()
    assert await bob_socket.receive_nothing(timeout=0.5)
    # And both see what is for everyone.
    await broadcast(cleared())
    assert (await alice_socket.receive_json_from(timeout=5))["type"] == "market.cleared"
    assert (await bob_socket.receive_json_from(timeout=5))["type"] == "market.cleared"


async def test_a_members_sockets_all_get_their_private_events(open_socket, live_member, live_token):
    session = await sync_to_async(session_for)(live_member)
    by_token, _, _ = await open_socket(token=live_token)
    by_session, _, _ = await open_socket(session=session)
    fill = TradeFilled(order_id="8d1c", quantity_wh=1, price=Decimal("0.3"))
    await broadcast(fill, member_id=live_member.pk)
    assert await by_token.receive_json_from(timeout=5) == fill.as_message()
    assert await by_session.receive_json_from(timeout=5) == fill.as_message()


async def test_a_dict_payload_sent_to_the_market_group_arrives_as_json(open_socket, live_token):
    """The form code outside the broadcast helper may send (and the portal smoke test does)."""
    socket, _, _ = await open_socket(token=live_token)
    await get_channel_layer().group_send(
        groups.MARKET, {"type": "live.event", "payload": {"type": "smoke", "version": 1}}
    )
    assert await socket.receive_json_from(timeout=5) == {"type": "smoke", "version": 1}


async def test_what_a_client_sends_is_ignored(open_socket, live_token):
    socket, _, _ = await open_socket(token=live_token)
    await socket.send_to(text_data=json.dumps({"type": "market.cleared", "price": "0"}))
    await socket.send_to(text_data="not json")
    assert await socket.receive_nothing(timeout=0.3)
    await broadcast(cleared())
    assert (await socket.receive_json_from(timeout=5))["type"] == "market.cleared"


# --- After commit only ------------------------------------------------------------------------


async def test_a_broadcast_leaves_only_when_its_transaction_commits(open_socket, live_token):
    socket, _, _ = await open_socket(token=live_token)
    in_transaction = asyncio.Event()
    may_commit = asyncio.Event()
    loop = asyncio.get_running_loop()

    def use_case() -> None:
        with transaction.atomic():
            broadcast_sync(cleared("0.2"))
            loop.call_soon_threadsafe(in_transaction.set)
            asyncio.run_coroutine_threadsafe(may_commit.wait(), loop).result(timeout=10)

    running = asyncio.ensure_future(sync_to_async(use_case, thread_sensitive=False)())
    await in_transaction.wait()
    assert await socket.receive_nothing(timeout=0.5)
    may_commit.set()
    await running
    assert (await socket.receive_json_from(timeout=5))["price"] == "0.20000"


async def test_a_rolled_back_transaction_sends_nothing(open_socket, live_member, live_token):
    socket, _, _ = await open_socket(token=live_token)

    def failing_use_case() -> None:
        with transaction.atomic():
            broadcast_sync(cleared("0.3"))
            broadcast_sync(TradeFilled(order_id=1, quantity_wh=10, price=Decimal("0.3")), member_id=live_member.pk)
            raise RuntimeError("clearing failed half-way")

    with pytest.raises(RuntimeError):
        await sync_to_async(failing_use_case)()
    assert await socket.receive_nothing(timeout=1)


async def test_a_rolled_back_savepoint_sends_nothing_of_its_own(open_socket, live_token):
    socket, _, _ = await open_socket(token=live_token)

    def use_case() -> None:
        with transaction.atomic():
            broadcast_sync(cleared("0.1", START))
            try:
                with transaction.atomic():
                    broadcast_sync(cleared("0.9", START + dt.timedelta(minutes=15)))
                    raise ValueError
            except ValueError:
                pass

    await sync_to_async(use_case)()
    assert (await socket.receive_json_from(timeout=5))["price"] == "0.10000"
    assert await socket.receive_nothing(timeout=0.5)


# --- A membership that ends closes its sockets --------------------------------------------------


@pytest.mark.parametrize("to_status", [MemberStatus.SUSPENDED, MemberStatus.LEFT])
async def test_a_suspended_members_sockets_are_closed(open_socket, live_member, live_token, to_status):
    session = await sync_to_async(session_for)(live_member)
    by_token, _, _ = await open_socket(token=live_token)
    by_session, _, _ = await open_socket(session=session)
    other, _, _ = await open_socket(token=await sync_to_async(lambda: token_make(member_make()))())

    await sync_to_async(member_set_status)(member=live_member, to_status=to_status, reason="test")

    for socket in (by_token, by_session):
        closing = await socket.receive_output(timeout=5)
        assert closing == {"type": "websocket.close", "code": CLOSE_MEMBERSHIP_ENDED}
    assert await other.receive_nothing(timeout=0.3)
    # Refused from then on.
    _socket, accepted, _code = await open_socket(session=session)
    assert not accepted


async def test_a_status_change_that_rolls_back_closes_nothing(open_socket, live_member, live_token):
    socket, _, _ = await open_socket(token=live_token)

    def rolled_back() -> None:
        with transaction.atomic():
            member_set_status(member=live_member, to_status=MemberStatus.SUSPENDED, reason="test")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await sync_to_async(rolled_back)()
    assert await socket.receive_nothing(timeout=0.5)


# --- A session signed out or a token revoked closes the sockets it opened ----------------------


def _browser(session_key: str) -> Client:
    """A test client holding ``session_key``, as the browser that signed in with it."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


def _sign_out(session_key: str) -> None:
    """The browser holding ``session_key`` signs out through allauth's own view."""
    response = _browser(session_key).post("/accounts/logout/")
    assert response.status_code == 302, response.status_code


async def test_signing_out_closes_that_browsers_sockets_only(open_socket, live_member, live_token):
    signed_out = await sync_to_async(session_for)(live_member)
    other_browser = await sync_to_async(session_for)(live_member)
    closing_socket, accepted, _ = await open_socket(session=signed_out)
    assert accepted
    same_browser_second_tab, _, _ = await open_socket(session=signed_out)
    other_tab, _, _ = await open_socket(session=other_browser)
    by_token, _, _ = await open_socket(token=live_token)

    await sync_to_async(_sign_out)(signed_out)

    for socket in (closing_socket, same_browser_second_tab):
        assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    for socket in (other_tab, by_token):
        assert await socket.receive_nothing(timeout=0.3)
    await broadcast(cleared())
    for socket in (other_tab, by_token):
        assert (await socket.receive_json_from(timeout=5))["type"] == "market.cleared"
    _socket, accepted, _code = await open_socket(session=signed_out)
    assert not accepted


async def test_revoking_a_token_closes_its_sockets_only(open_socket, live_member, live_token):
    other_token = await sync_to_async(token_make)(live_member)
    session = await sync_to_async(session_for)(live_member)
    revoked, _, _ = await open_socket(token=live_token)
    kept, _, _ = await open_socket(token=other_token)
    by_session, _, _ = await open_socket(session=session)
    token_id = await sync_to_async(lambda: live_member.user.api_tokens.order_by("pk").first().pk)()

    await sync_to_async(api_token_revoke)(user=live_member.user, token_id=token_id)

    assert await revoked.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    for socket in (kept, by_session):
        assert await socket.receive_nothing(timeout=0.3)
    _socket, accepted, _code = await open_socket(token=live_token)
    assert not accepted


async def test_a_revocation_that_rolls_back_closes_nothing(open_socket, live_member, live_token):
    socket, _, _ = await open_socket(token=live_token)

    def rolled_back() -> None:
        with transaction.atomic():
            token = live_member.user.api_tokens.get()
            api_token_revoke(user=live_member.user, token_id=token.pk)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await sync_to_async(rolled_back)()
    assert await socket.receive_nothing(timeout=0.5)


def _change_password(session_key: str) -> str:
    """The browser holding ``session_key`` changes the password through allauth's own form;
    returns that browser's session key afterwards (Django gives the session a new one)."""
    client = _browser(session_key)
    new = "a-new-and-long-passphrase"
    response = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert response.status_code == 302, response.content[:500]
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def test_a_password_change_makes_every_browser_reauthenticate(open_socket, live_member, live_token):
    changing = await sync_to_async(session_for)(live_member)
    elsewhere = await sync_to_async(session_for)(live_member)
    here, _, _ = await open_socket(session=changing)
    there, _, _ = await open_socket(session=elsewhere)
    by_token, _, _ = await open_socket(token=live_token)

    new_key = await sync_to_async(_change_password)(changing)

    for socket in (here, there):
        assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_REAUTHENTICATE}
    assert await by_token.receive_nothing(timeout=0.3)
    # live.js reconnects: the browser that changed the password gets back in, the other does not.
    _socket, accepted, _code = await open_socket(session=new_key)
    assert accepted
    _socket, accepted, _code = await open_socket(session=elsewhere)
    assert not accepted
