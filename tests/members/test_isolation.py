"""A member never sees another member's meters (API and pages)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.assets.choices import AssetKind
from apps.assets.services import asset_register
from tests.conftest import bearer
from tests.factories import member_make, meter_make, token_make

pytestmark = pytest.mark.django_db


def test_me_lists_only_the_callers_meters():
    alice, bob = member_make(), member_make()
    meter_make(alice, serial="ALICE-1")
    meter_make(bob, serial="BOB-1")
    body = bearer(token_make(alice)).get("/api/v1/me/").json()
    assert body["member_number"] == alice.number
    assert body["status"] == "active"
    assert [m["serial"] for m in body["meters"]] == ["ALICE-1"]


def test_home_page_lists_only_the_members_meters_and_assets(client, django_assert_max_num_queries):
    alice, bob = member_make(), member_make()
    alice_meter, _ = meter_make(alice, serial="ALICE-1")
    bob_meter, _ = meter_make(bob, serial="BOB-1")
    asset_register(meter=alice_meter, kind=AssetKind.PV, rated_power_w=4000)
    asset_register(meter=bob_meter, kind=AssetKind.HEAT_PUMP, rated_power_w=2500)
    client.force_login(alice.user)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("home")).content.decode()
    assert "ALICE-1" in page and "Rooftop PV" in page
    assert "BOB-1" not in page and "Heat pump" not in page


def test_home_page_query_count_does_not_grow_with_meters(client, django_assert_num_queries):
    alice = member_make()
    for i in range(5):
        meter, _ = meter_make(alice, serial=f"A-{i}")
        asset_register(meter=meter, kind=AssetKind.PV, rated_power_w=3000)
    client.force_login(alice.user)
    client.get(reverse("home"))  # warm the session
    # session, user, member, meters (with connection and feeder), assets (with meter)
    with django_assert_num_queries(5):
        client.get(reverse("home"))


def test_anonymous_home_page_invites_to_sign_in(client):
    page = client.get(reverse("home")).content.decode()
    assert reverse("account_login") in page and reverse("account_signup") in page
