"""Settlement against an independent reference, exactly once, and corrected by late readings."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.common.clock import format_instant
from apps.ledger.models import Posting, Transaction
from apps.market.choices import IntervalState
from apps.market.models import Interval, Trade
from apps.market.services import interval_clear, order_input_parse, order_submit
from apps.meters.services import readings_ingest, rollups_refresh
from apps.settlement.models import MemberSettlement, SettledInterval
from apps.settlement.services import corrections_run, interval_settle, intervals_settle_due
from tests.conftest import bearer, race, sigkill_mid_transaction
from tests.factories import member_make, meter_make, token_make
from tests.meters.test_energy import _recompute, _stored_rollups
from tests.settlement.reference import interval_energy_from_registers, reference_lines

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
FIRST = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)
INTERVALS = 12
TARIFF = {
    "retail": Decimal("0.30000"),
    "feed_in": Decimal("0.07000"),
    "imbalance": Decimal("0.30000"),
    "network_fee": Decimal("0.03000"),
    "coop_fee": Decimal("0.00500"),
}
LINES = (
    "import_wh", "export_wh", "p2p_bought_wh", "p2p_sold_wh", "grid_import_wh", "grid_export_wh",
    "p2p_cost", "p2p_revenue", "grid_cost", "grid_credit", "fees", "total",
)  # fmt: skip


@pytest.fixture(autouse=True)
def business_clock(settings):
    settings.ENERGYCOOP_CLOCK = format_instant(NOW)
    settings.ENERGYCOOP_CLOCK_ANCHOR = format_instant(timezone.now())


def _community(seed: int, members: int = 8):
    """Members with random load and PV, random orders each interval, cleared, and their
    readings posted; returns what the reference needs."""
    rng = random.Random(seed)
    people = []
    for _ in range(members):
        member = member_make()
        meter, _ = meter_make(member, installed_at=FIRST)
        people.append((member, meter))
    registers: dict[int, dict[dt.datetime, tuple[int, int]]] = {}
    for member, meter in people:
        imp = rng.randint(0, 10**6)
        exp = rng.randint(0, 10**5)
        regs = {FIRST: (imp, exp)}
        for k in range(INTERVALS):
            imp += rng.choice([0, rng.randint(0, 900)])
            exp += rng.choice([0, 0, rng.randint(0, 1200)])
            regs[FIRST + (k + 1) * STEP] = (imp, exp)
        registers[member.pk] = regs
        readings = [{"ts": format_instant(t), "import_wh": v[0], "export_wh": v[1]} for t, v in regs.items()]
        result = readings_ingest(readings=readings, meter=meter, now=NOW)
        assert not result.rejected, result.rejected
    for k in range(INTERVALS):
        start = FIRST + k * STEP
        for member, _meter in people:
            if rng.random() < 0.7:
                side = rng.choice(["buy", "sell"])
                order_submit(
                    member=member,
                    order=order_input_parse(
                        interval_start=format_instant(start),
                        side=side,
                        quantity_wh=rng.randint(50, 1500),
                        limit_price=f"0.{rng.randint(7000, 30000):05d}",
                        now=start - dt.timedelta(minutes=30),
                    ),
                    now=start - dt.timedelta(minutes=30),
                )
        interval_clear(start=start, now=start)
    return people, registers


def _expected(people, registers, start):
    trades = list(
        Trade.objects.filter(interval__start=start).values(
            "buyer_id", "seller_id", "quantity_wh", "buyer_price", "seller_price"
        )
    )
    out = {}
    for member, _meter in people:
        m_i, m_e = interval_energy_from_registers(registers[member.pk], start, STEP)
        out[member.pk] = reference_lines(m_i, m_e, trades, member.pk, TARIFF)
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_settlement_agrees_with_the_reference(seed):
    people, registers = _community(seed)
    reports = intervals_settle_due(now=NOW)
    assert [r.interval_start for r in reports] == [FIRST + k * STEP for k in range(INTERVALS)]
    for k in range(INTERVALS):
        start = FIRST + k * STEP
        expected = _expected(people, registers, start)
        rows = {s.member_id: s for s in MemberSettlement.objects.filter(interval_start=start, current=True)}
        assert set(rows) == set(expected)
        for member_id, lines in expected.items():
            row = rows[member_id]
            got = {name: getattr(row, name) for name in LINES}
            assert got == lines, (start, member_id)
            # Energy balance, exactly, in Wh.
            assert row.import_wh - row.export_wh == (
                row.p2p_bought_wh - row.p2p_sold_wh + row.grid_import_wh - row.grid_export_wh
            )
            assert not row.estimated
        # Pay-as-clear: P2P money is conserved between buyers and sellers.
        assert sum(r.p2p_cost for r in rows.values()) == sum(r.p2p_revenue for r in rows.values())
        assert Interval.objects.get(start=start).state == IntervalState.SETTLED
    # Every settlement transaction sums to zero, and the ledger verifies.
    for tx in Transaction.objects.filter(kind="settlement"):
        assert sum(p.amount for p in Posting.objects.filter(transaction=tx)) == 0
    out = StringIO()
    call_command("ledger_verify", stdout=out)
    assert "ok" in out.getvalue().lower() or "verified" in out.getvalue().lower()


@pytest.mark.django_db
def test_settling_twice_books_once():
    _community(4, members=4)
    start = FIRST
    first = interval_settle(start=start, now=NOW)
    second = interval_settle(start=start, now=NOW)
    assert first.booked == 4 and second.already and second.booked == 0
    assert MemberSettlement.objects.filter(interval_start=start).count() == 4
    keys = list(Transaction.objects.filter(kind="settlement").values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) and all(k.endswith(":r1") for k in keys)
    out = StringIO()
    call_command("settle", "--interval", format_instant(start), stdout=out)
    assert MemberSettlement.objects.filter(interval_start=start).count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_settlements_book_once():
    _community(5, members=4)
    race(lambda: interval_settle(start=FIRST, now=NOW))
    assert MemberSettlement.objects.filter(interval_start=FIRST).count() == 4
    assert SettledInterval.objects.filter(interval_start=FIRST).count() == 1
    # One transaction per member with money to book (an all-zero settlement books none).
    booked = MemberSettlement.objects.filter(ledger_transaction_id__isnull=False).count()
    assert booked >= 3 and Transaction.objects.filter(kind="settlement").count() == booked


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_half_way_leaves_nothing_and_the_rerun_completes(tmp_path):
    _community(6, members=4)
    recorded = sigkill_mid_transaction(
        module="apps.settlement.services",
        step="_book",
        call=f"interval_settle(start=parse_instant({format_instant(FIRST)!r}), "
        f"now=parse_instant({format_instant(NOW)!r}))",
        marker=tmp_path / "booked",
    )
    assert recorded == "4"
    assert not MemberSettlement.objects.exists() and not SettledInterval.objects.exists()
    assert not Transaction.objects.filter(kind="settlement").exists()
    report = interval_settle(start=FIRST, now=NOW)
    booked = MemberSettlement.objects.filter(ledger_transaction_id__isnull=False).count()
    assert report.booked == 4 and Transaction.objects.filter(kind="settlement").count() == booked


@pytest.mark.django_db
def test_a_late_reading_replaces_the_estimate_and_books_a_correction():
    """Post a gap, settle on estimates, post the missing reading: the estimate is replaced,
    a reversal and a correction are booked, /me/settlements/ shows the new figures and the
    ledger verifies."""
    member = member_make()
    meter, _ = meter_make(member, installed_at=FIRST)
    key = token_make(member)
    # Registers at 08:00 and 08:30 only: 08:15 is missing, so 08:00 and 08:15 are estimated
    # by linear interpolation (600 Wh each) of the 1,200 Wh measured over the gap.
    readings_ingest(
        readings=[
            {"ts": format_instant(FIRST), "import_wh": 10_000, "export_wh": 0},
            {"ts": format_instant(FIRST + 2 * STEP), "import_wh": 11_200, "export_wh": 0},
        ],
        meter=meter,
        now=NOW,
    )
    report = interval_settle(start=FIRST, now=NOW)
    assert report.estimated == 1
    api = bearer(key)
    first = api.get(f"/api/v1/me/settlements/?interval_start={format_instant(FIRST)}").json()
    assert first[0]["estimated"] is True and first[0]["import_wh"] == 600
    assert first[0]["grid_cost"] == "0.1800" and first[0]["revision"] == 1

    # The missing reading arrives: 900 Wh in the first interval, 300 Wh in the second.
    result = readings_ingest(
        readings=[{"ts": format_instant(FIRST + STEP), "import_wh": 10_900, "export_wh": 0}], meter=meter, now=NOW
    )
    assert result.accepted == 1
    corrected = corrections_run(now=NOW)
    assert [r.interval_start for r in corrected] == [FIRST]

    rows = list(MemberSettlement.objects.filter(member=member, interval_start=FIRST).order_by("revision"))
    assert [(r.revision, r.current, r.estimated, r.import_wh) for r in rows] == [
        (1, False, True, 600),
        (2, True, False, 900),
    ]
    keys = set(
        Transaction.objects.filter(idempotency_key__contains=member.number).values_list("idempotency_key", flat=True)
    )
    stem = f"settlement:{format_instant(FIRST)}:{member.number}"
    assert keys == {f"{stem}:r1", f"{stem}:r1:reversal", f"{stem}:r2"}
    now_view = api.get(f"/api/v1/me/settlements/?interval_start={format_instant(FIRST)}").json()
    assert now_view[0]["revision"] == 2 and now_view[0]["estimated"] is False
    assert now_view[0]["import_wh"] == 900 and now_view[0]["grid_cost"] == "0.2700"
    balance = api.get("/api/v1/me/balance/").json()
    assert balance == {"balance": "-0.2700", "currency": "EUR"}
    # Running corrections again books nothing more.
    assert corrections_run(now=NOW) == []
    # The hourly and daily rollups, kept incrementally, equal a recompute from interval energy.
    while rollups_refresh():
        pass
    assert _stored_rollups() == _recompute()
    out = StringIO()
    call_command("ledger_verify", stdout=out)


@pytest.mark.django_db
def test_settlement_waits_for_readings_until_the_cutoff_then_estimates():
    member = member_make()
    meter, _ = meter_make(member, installed_at=FIRST)
    readings_ingest(readings=[{"ts": format_instant(FIRST), "import_wh": 0, "export_wh": 0}], meter=meter, now=NOW)
    # 08:00 ended at 08:15; at 08:30 the readings are not in and the cutoff (09:15) is ahead.
    assert intervals_settle_due(now=FIRST + 2 * STEP) == []
    reports = intervals_settle_due(now=FIRST + STEP + dt.timedelta(minutes=61))
    assert reports and reports[0].interval_start == FIRST and reports[0].estimated == 1
    assert MemberSettlement.objects.get(interval_start=FIRST).estimated


def test_settle_command_on_an_unfinished_interval_fails_clearly(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not ended"):
        call_command("settle", "--interval", format_instant(NOW + STEP))
