"""The demo community: believable households, written only through the apps' services."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from apps.assets.choices import AssetKind
from apps.assets.services import asset_register
from apps.common import clock
from apps.grid.models import Feeder
from apps.grid.services import connection_point_create, feeder_get_or_create
from apps.market.services import trading_preference_set
from apps.members.choices import MemberStatus, Role
from apps.members.models import Member, User
from apps.members.services import member_create
from apps.meters.choices import MeterRole
from apps.meters.services import meter_register

DEMO_DOMAIN = "demo.energycoop.example"
DEMO_PASSWORD = "energycoop-demo"
FEEDER_NAMES = ("North", "Centre", "South")
# Shares seen in Dutch and German energy communities: most roofs carry PV, a third drive an EV.
PV_SHARE, BATTERY_SHARE_OF_PV, EV_SHARE, HEAT_PUMP_SHARE = 0.65, 0.35, 0.30, 0.25
FIRST_NAMES = ("Anna", "Bram", "Chloé", "Daan", "Eva", "Finn", "Greta", "Hugo", "Iris", "Jonas", "Katrin", "Lars")
LAST_NAMES = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters")


@dataclass(frozen=True)
class DemoResult:
    created: int
    existing: int
    operator_email: str
    admin_email: str


def demo_email(index: int) -> str:
    return f"household{index:03d}@{DEMO_DOMAIN}"


def demo_community_seed(*, members: int = 40, history_start: dt.datetime | None = None, seed: int = 7) -> DemoResult:
    """Create (idempotently) ``members`` households on three feeders, plus an operator and an admin.

    Households that already exist are left as they are, so running it twice adds nothing.
    """
    rng = random.Random(seed)
    installed_at = history_start or (clock.today_start_utc() - dt.timedelta(days=60))
    feeders = [feeder_get_or_create(name=name) for name in FEEDER_NAMES]
    created = existing = 0
    for index in range(1, members + 1):
        # Draw every household's attributes whether or not it exists, so that the same
        # index always gets the same household.
        spec = _household_spec(rng, index, feeders)
        if User.objects.filter(email=spec["email"]).exists():
            existing += 1
            continue
        _household_create(spec, installed_at)
        created += 1
    operator_email = f"operator@{DEMO_DOMAIN}"
    admin_email = f"admin@{DEMO_DOMAIN}"
    for email, role in ((operator_email, Role.OPERATOR), (admin_email, Role.ADMIN)):
        if not User.objects.filter(email=email).exists():
            member_create(
                email=email, password=DEMO_PASSWORD, role=role, status=MemberStatus.ACTIVE, email_verified=True
            )
    return DemoResult(created=created, existing=existing, operator_email=operator_email, admin_email=admin_email)


def _household_spec(rng: random.Random, index: int, feeders: list[Feeder]) -> dict:
    has_pv = rng.random() < PV_SHARE
    return {
        "index": index,
        "email": demo_email(index),
        "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "feeder": feeders[(index - 1) % len(feeders)],
        "capacity_w": rng.choice((13_800, 17_250, 17_250, 17_250, 27_600)),
        "pv_w": rng.choice((2_400, 3_200, 4_000, 4_800, 6_000, 7_200)) if has_pv else 0,
        "battery": (rng.choice((5_000, 10_000, 13_500)), rng.choice((2_500, 3_300, 5_000)))
        if has_pv and rng.random() < BATTERY_SHARE_OF_PV
        else None,
        "ev": (rng.choice((40_000, 58_000, 77_000)), rng.choice((3_700, 7_400, 11_000)))
        if rng.random() < EV_SHARE
        else None,
        "heat_pump_w": rng.choice((1_800, 2_500, 3_500)) if rng.random() < HEAT_PUMP_SHARE else 0,
    }


def _household_create(spec: dict, installed_at: dt.datetime) -> Member:
    with transaction.atomic():
        member = member_create(
            email=spec["email"],
            password=DEMO_PASSWORD,
            name=spec["name"],
            status=MemberStatus.ACTIVE,
            email_verified=True,
            shares=1 + spec["index"] % 3,
        )
        serial = f"DEMO-{spec['index']:04d}"
        point = connection_point_create(
            feeder=spec["feeder"],
            code=f"CP-{serial}",
            capacity_w=spec["capacity_w"],
            address=f"Demo street {spec['index']}",
        )
        main, _key = meter_register(member=member, serial=serial, connection_point=point, installed_at=installed_at)
        if spec["pv_w"]:
            pv_meter, _ = meter_register(
                member=member,
                serial=f"{serial}-PV",
                connection_point=point,
                installed_at=installed_at,
                role=MeterRole.SUB,
                parent=main,
                bidirectional=False,
            )
            asset_register(meter=pv_meter, kind=AssetKind.PV, rated_power_w=spec["pv_w"], name="Rooftop PV")
        if spec["battery"]:
            capacity_wh, power_w = spec["battery"]
            asset_register(
                meter=main,
                kind=AssetKind.BATTERY,
                rated_power_w=power_w,
                capacity_wh=capacity_wh,
                flexible=True,
                flex_power_w=power_w,
                name="Home battery",
            )
        if spec["ev"]:
            capacity_wh, power_w = spec["ev"]
            ev_meter, _ = meter_register(
                member=member,
                serial=f"{serial}-EV",
                connection_point=point,
                installed_at=installed_at,
                role=MeterRole.SUB,
                parent=main,
                bidirectional=False,
            )
            asset_register(
                meter=ev_meter,
                kind=AssetKind.EV_CHARGER,
                rated_power_w=power_w,
                capacity_wh=capacity_wh,
                flexible=True,
                flex_power_w=power_w,
                name="EV charger",
            )
        if spec["heat_pump_w"]:
            asset_register(
                meter=main,
                kind=AssetKind.HEAT_PUMP,
                rated_power_w=spec["heat_pump_w"],
                flexible=True,
                flex_power_w=spec["heat_pump_w"] // 2,
                name="Heat pump",
            )
        # Households differ in what they ask and bid, so the clearing price moves with the
        # balance of surplus and deficit (a separate generator keeps the draws above stable).
        prefs = random.Random(f"trading-{spec['index']}")
        trading_preference_set(
            member=member,
            sell_min_price=Decimal(prefs.randrange(9_000, 20_000)).scaleb(-5),
            buy_max_price=Decimal(prefs.randrange(16_000, 28_000)).scaleb(-5),
        )
    return member


def demo_history_backfill(*, days: int) -> int:
    """``days`` of simulated meter history for the demo meters that have none yet, written
    through the meters' bulk ingest service, then their rollups. Returns the readings stored."""
    from apps.meters.services import rollups_drain
    from apps.portal.simulator import history_backfill

    readings = history_backfill(days=days, serial_prefix="DEMO-")
    rollups_drain()
    return readings
