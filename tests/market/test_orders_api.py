"""Orders through the API, exactly as CONTRACT.md: codes, fields, idempotency, scoping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.market.choices import OrderSource, OrderStatus
from apps.market.models import Order, OrderEvent
from apps.market.services import interval_clear, order_input_parse, order_submit
from apps.members.choices import MemberStatus
from apps.members.services import member_set_status
from tests.conftest import bearer
from tests.factories import member_make, meter_make, token_make
from tests.market.conftest import NEXT, NOW, iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller():
    member = member_make()
    meter_make(member)
    return member


@pytest.fixture
def seller_api(seller):
    return bearer(token_make(seller))


def order_body(**overrides) -> dict:
    body = {"interval_start": iso(NEXT), "side": "buy", "quantity_wh": 1000, "limit_price": "0.12000"}
    body.update(overrides)
    return body


def _error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if code:
        assert error["code"] == code, error
    if field:
        assert field in error["fields"], error
    return error


def test_a_buy_order_is_created_open_and_unfilled(api):
    response = api.post("/api/v1/market/orders/", order_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open" and body["filled_wh"] == 0 and isinstance(body["id"], int)
    assert body["interval_start"] == iso(NEXT)
    assert body["limit_price"] == "0.12000"
    order = Order.objects.get(pk=body["id"])
    assert order.quantity_wh == 1000 and order.limit_price == Decimal("0.12")
    assert OrderEvent.objects.filter(order=order, kind="placed").count() == 1


def test_idempotency_key_replays_the_same_order_and_refuses_another_body(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "abc-123"}
    first = api.post("/api/v1/market/orders/", order_body(), format="json", **headers)
    replay = api.post("/api/v1/market/orders/", order_body(), format="json", **headers)
    assert first.status_code == 201 and replay.status_code == 200
    assert first.json()["id"] == replay.json()["id"]
    assert Order.objects.count() == 1
    other = api.post("/api/v1/market/orders/", order_body(quantity_wh=2000), format="json", **headers)
    _error(other, 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"interval_start": iso(NEXT + dt.timedelta(minutes=5))}, "interval_start"),
        ({"interval_start": iso(NOW + dt.timedelta(hours=25))}, "interval_start"),
        ({"interval_start": "tomorrow"}, "interval_start"),
        ({"interval_start": "2026-11-23T08:15:00"}, "interval_start"),
        ({"side": "hold"}, "side"),
        ({"quantity_wh": 0}, "quantity_wh"),
        ({"quantity_wh": -5}, "quantity_wh"),
        ({"quantity_wh": "1000"}, "quantity_wh"),
        ({"quantity_wh": 10.5}, "quantity_wh"),
        ({"limit_price": 0.12}, "limit_price"),
        ({"limit_price": "0.123456"}, "limit_price"),
        ({"limit_price": "abc"}, "limit_price"),
        ({"limit_price": "0.50000"}, "limit_price"),  # above retail 0.30
        ({"limit_price": "0.01000"}, "limit_price"),  # below feed-in 0.07
        ({"quantity_wh": 10_000_000}, "quantity_wh"),  # above one interval of a 17,250 W connection
    ],
)
def test_invalid_orders_are_400_naming_the_field_and_store_nothing(api, overrides, field):
    response = api.post("/api/v1/market/orders/", order_body(**overrides), format="json")
    _error(response, 400, "invalid", field)
    assert not Order.objects.exists()


def test_capacity_is_one_interval_of_the_connection(api):
    # 17,250 W for 15 minutes = 4,312 Wh (integer Wh, rounded down)
    assert api.post("/api/v1/market/orders/", order_body(quantity_wh=4312), format="json").status_code == 201
    _error(api.post("/api/v1/market/orders/", order_body(quantity_wh=4313), format="json"), 400, field="quantity_wh")


def test_body_that_is_not_json_is_400(api):
    response = api.post("/api/v1/market/orders/", "not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_order_after_gate_closure_is_409(api):
    # The 08:00 interval's gate closed at 07:55; 08:15's is open until 08:10.
    _error(api.post("/api/v1/market/orders/", order_body(interval_start=iso(NOW)), format="json"), 409, "gate_closed")


def test_buy_and_sell_in_one_interval_is_409(seller_api):
    assert seller_api.post("/api/v1/market/orders/", order_body(), format="json").status_code == 201
    response = seller_api.post("/api/v1/market/orders/", order_body(side="sell"), format="json")
    _error(response, 409, "opposite_side_order")


def test_selling_needs_a_main_meter(api):
    _error(api.post("/api/v1/market/orders/", order_body(side="sell"), format="json"), 409, "no_main_meter")


def test_a_suspended_member_cannot_trade(api, member):
    member_set_status(member=member, to_status=MemberStatus.SUSPENDED)
    _error(api.post("/api/v1/market/orders/", order_body(), format="json"), 403, "member_not_active")


def test_cancel_before_gate_then_again_is_409(api):
    order_id = api.post("/api/v1/market/orders/", order_body(), format="json").json()["id"]
    response = api.delete(f"/api/v1/market/orders/{order_id}/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    _error(api.delete(f"/api/v1/market/orders/{order_id}/"), 409, "already_cancelled")
    assert list(Order.objects.get(pk=order_id).events.values_list("kind", flat=True)) == ["placed", "cancelled"]


def test_cancel_after_gate_closure_is_409(api, member, settings):
    order_id = api.post("/api/v1/market/orders/", order_body(), format="json").json()["id"]
    settings.ENERGYCOOP_CLOCK = iso(NEXT - dt.timedelta(minutes=4))  # past the 08:10 gate
    _error(api.delete(f"/api/v1/market/orders/{order_id}/"), 409, "gate_closed")
    assert Order.objects.get(pk=order_id).status == OrderStatus.OPEN


def test_someone_elses_order_is_404(api):
    other = member_make()
    order, _ = order_submit(
        member=other,
        order=order_input_parse(interval_start=iso(NEXT), side="buy", quantity_wh=500, limit_price="0.1", now=NOW),
        now=NOW,
    )
    _error(api.delete(f"/api/v1/market/orders/{order.pk}/"), 404)
    assert api.get(f"/api/v1/market/orders/{order.pk}/").status_code == 404
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN


def test_members_see_only_their_own_orders_and_trades(api, member, seller, seller_api):
    api.post("/api/v1/market/orders/", order_body(limit_price="0.20000"), format="json")
    seller_api.post("/api/v1/market/orders/", order_body(side="sell", limit_price="0.10000"), format="json")
    interval_clear(start=NEXT, now=NEXT)

    mine = api.get(f"/api/v1/market/orders/?interval_start={iso(NEXT)}").json()
    assert [o["side"] for o in mine] == ["buy"] and mine[0]["status"] == "filled" and mine[0]["filled_wh"] == 1000
    theirs = seller_api.get("/api/v1/market/orders/").json()
    assert [o["side"] for o in theirs] == ["sell"]
    trades = api.get(f"/api/v1/market/trades/?interval_start={iso(NEXT)}").json()
    assert trades == [
        {
            "interval_start": iso(NEXT),
            "side": "buy",
            "quantity_wh": 1000,
            "price": "0.15000",
            "amount": "0.1500",
            "order_id": mine[0]["id"],
        }
    ]
    assert [t["side"] for t in seller_api.get("/api/v1/market/trades/").json()] == ["sell"]
    assert member_make() and bearer(token_make(member_make())).get("/api/v1/market/trades/").json() == []


def test_results_before_and_after_clearing(api, seller_api):
    response = api.get(f"/api/v1/market/results/{iso(NEXT)}/")
    _error(response, 404, "not_cleared")
    api.post("/api/v1/market/orders/", order_body(limit_price="0.20000", quantity_wh=3000), format="json")
    seller_api.post("/api/v1/market/orders/", order_body(side="sell", limit_price="0.10000"), format="json")
    interval_clear(start=NEXT, now=NEXT)
    body = api.get(f"/api/v1/market/results/{iso(NEXT)}/").json()
    assert body == {
        "interval_start": iso(NEXT),
        "price": "0.15000",
        "volume_wh": 1000,
        "trades": 1,
        "bids_wh": 3000,
        "offers_wh": 1000,
    }


def test_an_interval_whose_gate_closed_without_orders_reads_as_cleared(api):
    body = api.get(f"/api/v1/market/results/{iso(NOW)}/").json()
    assert body["price"] is None and body["volume_wh"] == 0 and body["trades"] == 0


def test_interval_list_by_state(api, seller_api):
    open_ = api.get("/api/v1/market/intervals/?state=open").json()
    assert open_[0]["start"] == iso(NEXT) and open_[0]["state"] == "open"
    assert open_[0]["gate_closure"] == iso(NEXT - dt.timedelta(minutes=5))
    assert len(open_) == 96  # 24 h of 15-minute intervals
    api.post("/api/v1/market/orders/", order_body(limit_price="0.20000"), format="json")
    seller_api.post("/api/v1/market/orders/", order_body(side="sell", limit_price="0.10000"), format="json")
    interval_clear(start=NEXT, now=NEXT)
    cleared = api.get("/api/v1/market/intervals/?state=cleared").json()
    assert cleared[0]["start"] == iso(NEXT) and cleared[0]["price"] == "0.15000" and cleared[0]["volume_wh"] == 1000
    _error(api.get("/api/v1/market/intervals/?state=bogus"), 400, field="state")


def test_a_device_key_cannot_trade(seller):
    _meter, key = meter_make(seller)
    _error(bearer(key).post("/api/v1/market/orders/", order_body(), format="json"), 403)


def test_a_manual_order_takes_the_interval_out_of_automated_trading(api, member):
    auto, _ = order_submit(
        member=member,
        order=order_input_parse(interval_start=iso(NEXT), side="buy", quantity_wh=800, limit_price="0.1", now=NOW),
        now=NOW,
        source=OrderSource.AUTO,
    )
    assert api.post("/api/v1/market/orders/", order_body(), format="json").status_code == 201
    auto.refresh_from_db()
    assert auto.status == OrderStatus.CANCELLED


def test_operators_publish_dynamic_prices_that_open_intervals_take(api, member):
    from apps.members.choices import Role

    operator = member_make(role=Role.OPERATOR)
    op = bearer(token_make(operator))
    api.post("/api/v1/market/orders/", order_body(), format="json")  # creates the interval
    response = op.post(
        "/api/v1/market/tariffs/dynamic/",
        {"prices": [{"interval_start": iso(NEXT), "retail_price": "0.40000", "feed_in_price": "0.05000"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    tariff = api.get(f"/api/v1/market/tariffs/?interval_start={iso(NEXT)}").json()
    assert tariff["retail_price"] == "0.40000" and tariff["feed_in_price"] == "0.05000"
    # The band follows at once: 0.35 is now allowed.
    assert api.post("/api/v1/market/orders/", order_body(limit_price="0.35000"), format="json").status_code == 201
    # A member token cannot publish prices.
    _error(api.post("/api/v1/market/tariffs/dynamic/", {"prices": []}, format="json"), 403)


@pytest.mark.parametrize("price", ["1e30", "100000", "-1E+99", "99999.999999"])
def test_an_absurd_limit_price_is_a_clear_400(api, price):
    response = api.post(
        "/api/v1/market/orders/",
        {"interval_start": "2030-01-01T00:00:00Z", "side": "buy", "quantity_wh": 100, "limit_price": price},
        format="json",
    )
    assert response.status_code == 400
    assert "limit_price" in response.json()["error"]["fields"]
