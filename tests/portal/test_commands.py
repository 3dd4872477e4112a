"""create_member and seed_demo as CONTRACT.md describes them."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.assets.models import DerAsset
from apps.common.keys import key_hash
from apps.grid.models import Feeder
from apps.members.choices import MemberStatus, Role
from apps.members.models import Member, User
from apps.meters.choices import MeterRole
from apps.meters.models import Meter
from tests.conftest import bearer

pytestmark = pytest.mark.django_db


def _create(*args: str) -> dict:
    out = StringIO()
    call_command("create_member", *args, stdout=out)
    return json.loads(out.getvalue())


def test_create_member_prints_number_token_and_meter_keys(settings):
    settings.ENERGYCOOP_CLOCK = "2026-11-20T09:17:00Z"
    data = _create("ann@example.org", "--meter", "SN-1", "--feeder", "North", "--meter", "SN-2")

    assert set(data) == {"member_number", "token", "meter_keys"}
    assert isinstance(data["member_number"], str)
    assert set(data["meter_keys"]) == {"SN-1", "SN-2"}
    member = Member.objects.get(number=data["member_number"])
    assert member.status == MemberStatus.ACTIVE and member.role == Role.MEMBER
    assert member.user.emailaddress_set.get().verified
    one, two = Meter.objects.get(serial="SN-1"), Meter.objects.get(serial="SN-2")
    assert one.connection_point.feeder.name == "North"
    assert two.connection_point.feeder.name == "Feeder 1"
    assert one.role == two.role == MeterRole.MAIN
    # Installed from the start of the current UTC day by the business clock.
    assert one.installed_at == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert one.key_hash == key_hash(data["meter_keys"]["SN-1"])
    me = bearer(data["token"]).get("/api/v1/me/").json()
    assert me["member_number"] == data["member_number"]
    assert sorted(m["serial"] for m in me["meters"]) == ["SN-1", "SN-2"]


def test_create_member_roles():
    operator = _create("op@example.org", "--role", "operator")
    billing = _create("bill@example.org", "--role", "billing")
    op_user = User.objects.get(email="op@example.org")
    bill_user = User.objects.get(email="bill@example.org")
    assert op_user.is_staff and not op_user.is_superuser and op_user.groups.filter(name="operator").exists()
    assert not bill_user.is_staff and bill_user.member.role == Role.BILLING
    assert operator["meter_keys"] == {} and billing["token"].startswith("ecp_")


def test_create_member_refuses_an_existing_email_and_writes_nothing():
    _create("dup@example.org")
    with pytest.raises(CommandError, match="already exists"):
        _create("DUP@example.org", "--meter", "NEW-1")
    assert not Meter.objects.filter(serial="NEW-1").exists()
    assert User.objects.filter(email__iexact="dup@example.org").count() == 1


def test_create_member_with_a_taken_meter_serial_leaves_nothing_half_written():
    _create("first@example.org", "--meter", "TAKEN")
    with pytest.raises(CommandError, match="TAKEN"):
        _create("second@example.org", "--meter", "OK-1", "--meter", "TAKEN")
    assert not User.objects.filter(email="second@example.org").exists()
    assert not Meter.objects.filter(serial="OK-1").exists()


def test_feeder_without_a_meter_is_a_usage_error():
    with pytest.raises(CommandError):
        _create("x@example.org", "--feeder", "North")


def test_seed_demo_builds_a_believable_community_and_is_idempotent():
    call_command("seed_demo", "--days", "0", stdout=StringIO())
    households = Member.objects.filter(role=Role.MEMBER)
    assert households.count() == 40
    assert Feeder.objects.count() == 3
    assert Meter.objects.filter(role=MeterRole.MAIN).count() == 40
    pv = DerAsset.objects.filter(kind="pv").count()
    assert 16 <= pv <= 36, pv  # most, not all, roofs carry PV
    assert DerAsset.objects.filter(kind="battery").exists()
    assert DerAsset.objects.filter(kind="ev_charger").exists()
    # Every PV array is behind a PV sub-meter, which is never a settlement meter.
    assert not DerAsset.objects.filter(kind="pv", meter__role=MeterRole.MAIN).exists()
    call_command("seed_demo", "--days", "0", stdout=StringIO())
    assert Member.objects.filter(role=Role.MEMBER).count() == 40
    assert User.objects.filter(is_superuser=True).count() == 1


def test_seed_demo_replays_the_market_over_its_history_so_past_prices_show(settings):
    from django.utils import timezone

    from apps.market.models import ClearingResult, Order

    # A sunny June afternoon: PV surplus meets evening demand.
    settings.ENERGYCOOP_CLOCK = "2026-06-15T14:00:00Z"
    settings.ENERGYCOOP_CLOCK_ANCHOR = timezone.now().isoformat()
    call_command("seed_demo", "--members", "12", "--days", "3", "--market-hours", "2", stdout=StringIO())
    results = ClearingResult.objects.all()
    count = results.count()
    assert count in (8, 9)  # 2 h of 15-minute intervals, and the one just closed
    # Automated orders from the members' own history: the market trades real volume.
    assert Order.objects.filter(source="auto").exists()
    assert any(r.volume_wh > 0 and r.price is not None for r in results)
    call_command("seed_demo", "--members", "12", "--days", "3", "--market-hours", "2", stdout=StringIO())
    assert ClearingResult.objects.count() == count
