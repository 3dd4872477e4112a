"""Community sharing without a market, checked against worked examples computed by hand from
the papers' formulas: in each, buyers' payments minus sellers' receipts equal the community's
net grid cost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.common.clock import format_instant
from apps.ledger.models import Transaction
from apps.ledger.services import ledger_verify
from apps.meters.services import readings_ingest
from apps.settlement import rules
from apps.settlement.models import MemberSettlement
from apps.settlement.services import corrections_run, interval_settle
from tests.factories import member_make, meter_make

# lambda_buy 0.30 and lambda_sell 0.10 keep every hand computation exact.
T = rules.Tariffs(
    retail=Decimal("0.30"),
    feed_in=Decimal("0.10"),
    imbalance=Decimal("0.30"),
    network_fee=Decimal("0.03"),
    coop_fee=Decimal("0.005"),
)


def _net_payments(load_wh: int, gen_wh: int, buy: Decimal, sell: Decimal) -> Decimal:
    return (Decimal(load_wh) * buy - Decimal(gen_wh) * sell) / 1000


@pytest.mark.parametrize(
    ("mode", "load", "gen", "buy", "sell"),
    [
        # SDR = 5/10 = 0.5: P_sell = 0.30*0.10 / (0.20*0.5 + 0.10) = 0.15; P_buy = 0.15*0.5 + 0.30*0.5 = 0.225
        ("community_sdr", 10_000, 5_000, "0.22500", "0.15000"),
        # SDR >= 1: both at lambda_sell
        ("community_sdr", 5_000, 10_000, "0.10000", "0.10000"),
        # MMR deficit: P_sell = P_mid = 0.20; P_buy = (0.20*5 + 0.30*5) / 10 = 0.25
        ("community_mmr", 10_000, 5_000, "0.25000", "0.20000"),
        # MMR surplus: P_buy = 0.20; P_sell = (0.20*5 + 0.10*5) / 10 = 0.15
        ("community_mmr", 5_000, 10_000, "0.20000", "0.15000"),
        # MMR balanced: both at the mid-market rate
        ("community_mmr", 8_000, 8_000, "0.20000", "0.20000"),
        # BS deficit: P_buy = 0.30 * 5 / 10 = 0.15; no export, P_sell = 0
        ("community_bs", 10_000, 5_000, "0.15000", "0.00000"),
        # BS surplus: P_buy = 0; P_sell = 0.10 * 5 / 10 = 0.05
        ("community_bs", 5_000, 10_000, "0.00000", "0.05000"),
    ],
)
def test_worked_examples(mode, load, gen, buy, sell):
    p_buy, p_sell = rules.community_prices(mode, load, gen, T)
    assert (p_buy, p_sell) == (Decimal(buy), Decimal(sell))
    # Buyers' payments minus sellers' receipts = the community's net grid cost.
    assert _net_payments(load, gen, p_buy, p_sell) == rules.community_net_grid_cost(load, gen, T)


def test_member_lines_in_community_mode():
    inputs = rules.MemberInputs(
        import_wh=3_000, export_wh=500, bought_wh=0, sold_wh=0,
        p2p_cost=Decimal(0), p2p_revenue=Decimal(0), estimated=False,
    )  # fmt: skip
    lines = rules.settle_member_community(inputs, Decimal("0.25"), Decimal("0.20"))
    assert (lines.p2p_bought_wh, lines.p2p_sold_wh, lines.p2p_cost, lines.total) == (
        2_500, 0, Decimal("0.6250"), Decimal("0.6250"),
    )  # fmt: skip
    # The energy balance holds in community mode too.
    assert lines.import_wh - lines.export_wh == lines.p2p_bought_wh - lines.p2p_sold_wh + 0


NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
FIRST = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("mode", rules.COMMUNITY_MODES)
def test_a_community_interval_is_settled_and_corrected_through_the_ledger(settings, mode):
    settings.SETTLEMENT_MODE = mode
    settings.TARIFF_DEFAULT_FEED_IN = "0.10000"
    settings.ENERGYCOOP_CLOCK = format_instant(NOW)
    settings.ENERGYCOOP_CLOCK_ANCHOR = format_instant(timezone.now())
    # Two buyers (net 1,000 and 3,000 Wh) and a seller (net export 2,000 Wh): L = 4,000, G = 2,000.
    # The second buyer's reading is late: at settlement their energy is estimated (no history: 0).
    flows = [(1_000, 0), (3_000, 0), (0, 2_000)]
    meters = []
    for index, (imp, exp) in enumerate(flows):
        member = member_make()
        meter, _ = meter_make(member, installed_at=FIRST)
        meters.append(meter)
        readings = [{"ts": format_instant(FIRST), "import_wh": 0, "export_wh": 0}]
        if index != 1:
            readings.append({"ts": format_instant(FIRST + STEP), "import_wh": imp, "export_wh": exp})
        readings_ingest(readings=readings, meter=meter, now=NOW)
    report = interval_settle(start=FIRST, now=NOW)
    assert report.estimated == 1
    rows = list(MemberSettlement.objects.filter(interval_start=FIRST, current=True))
    assert len(rows) == 3 and all(r.rule_version == rules.RULE_VERSIONS[mode] for r in rows)
    # L = 1,000 < G = 2,000: the community exports 1 kWh at 0.10.
    assert abs(sum((r.total for r in rows), Decimal(0)) - Decimal("-0.1000")) <= Decimal("0.0001")
    assert Transaction.objects.filter(kind="settlement.interval").count() == 1
    assert ledger_verify().ok

    # The late reading arrives: the community now imports 2 kWh, every member is re-priced.
    readings_ingest(
        readings=[{"ts": format_instant(FIRST + STEP), "import_wh": 3_000, "export_wh": 0}],
        meter=meters[1],
        now=NOW,
    )
    corrected = corrections_run(now=NOW)
    assert [r.interval_start for r in corrected] == [FIRST]
    rows = list(MemberSettlement.objects.filter(interval_start=FIRST, current=True))
    assert len(rows) == 3 and all(r.revision == 2 for r in rows) and not any(r.estimated for r in rows)
    # Net grid cost of the community: 2 kWh imported at 0.30 = 0.6000, up to price rounding.
    assert abs(sum((r.total for r in rows), Decimal(0)) - Decimal("0.6000")) <= Decimal("0.0001")
    # The interval booking was reversed and booked again; the ledger holds.
    assert Transaction.objects.filter(kind="settlement.interval").count() == 2
    assert ledger_verify().ok
