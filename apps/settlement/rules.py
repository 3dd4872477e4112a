"""The settlement rules ("smart contracts"): pure functions from metered energy, P2P trades
and tariffs to the energy and money lines of one member in one interval. No Django.

Default rules (version 1, DESIGN.md "Settlement"), per member and interval, from metered
import M_i and export M_e (the member's main meters), P2P bought B and sold S:
- the member pays for B and is paid for S what their trades say (the contract);
- export beyond S is credited at the feed-in tariff; import beyond B is charged at retail;
- a seller that exported less than S pays the shortfall at the imbalance price;
- a buyer that imported less than B is credited the unused part at feed-in;
- the network fee per kWh bought P2P is paid by the buyer; the coop fee per kWh traded is
  paid by each side.
grid_import_wh = max(0, M_i - B) + max(0, S - M_e); grid_export_wh = max(0, M_e - S) +
max(0, B - M_i); never netted. Each money line is rounded once to 4 decimals (half-even);
P2P lines are sums of the member's rounded trade amounts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal

MONEY = Decimal("0.0001")
RULES_V1_TEXT = __doc__ or ""


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Tariffs:
    retail: Decimal
    feed_in: Decimal
    imbalance: Decimal
    network_fee: Decimal
    coop_fee: Decimal


@dataclass(frozen=True)
class MemberInputs:
    """Everything one member-interval settlement is computed from (stored with it)."""

    import_wh: int
    export_wh: int
    bought_wh: int
    sold_wh: int
    p2p_cost: Decimal  # sum of the member's rounded buy-trade amounts
    p2p_revenue: Decimal  # sum of the member's rounded sell-trade amounts
    estimated: bool


@dataclass(frozen=True)
class Lines:
    import_wh: int
    export_wh: int
    p2p_bought_wh: int
    p2p_sold_wh: int
    grid_import_wh: int
    grid_export_wh: int
    p2p_cost: Decimal
    p2p_revenue: Decimal
    grid_cost: Decimal
    grid_credit: Decimal
    network_fee: Decimal
    coop_fee: Decimal
    fees: Decimal
    total: Decimal
    estimated: bool


def settle_member_v1(inputs: MemberInputs, tariffs: Tariffs) -> Lines:
    m_i, m_e, b, s = inputs.import_wh, inputs.export_wh, inputs.bought_wh, inputs.sold_wh
    extra_import = max(0, m_i - b)
    shortfall = max(0, s - m_e)
    excess_export = max(0, m_e - s)
    unused_purchase = max(0, b - m_i)
    grid_cost = money((extra_import * tariffs.retail + shortfall * tariffs.imbalance) / 1000)
    grid_credit = money((excess_export + unused_purchase) * tariffs.feed_in / 1000)
    network_fee = money(b * tariffs.network_fee / 1000)
    fees = money((b * tariffs.network_fee + (b + s) * tariffs.coop_fee) / 1000)
    total = inputs.p2p_cost + grid_cost + fees - inputs.p2p_revenue - grid_credit
    return Lines(
        import_wh=m_i,
        export_wh=m_e,
        p2p_bought_wh=b,
        p2p_sold_wh=s,
        grid_import_wh=extra_import + shortfall,
        grid_export_wh=excess_export + unused_purchase,
        p2p_cost=inputs.p2p_cost,
        p2p_revenue=inputs.p2p_revenue,
        grid_cost=grid_cost,
        grid_credit=grid_credit,
        network_fee=network_fee,
        coop_fee=fees - network_fee,
        fees=fees,
        total=total,
        estimated=inputs.estimated,
    )


def inputs_hash(inputs: MemberInputs, tariffs: Tariffs, rule_version: int) -> str:
    """SHA-256 of the canonical inputs: anyone can recompute the settlement and compare."""
    payload = {"rule_version": rule_version, "inputs": asdict(inputs), "tariffs": asdict(tariffs)}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_json(inputs: MemberInputs, tariffs: Tariffs) -> dict:
    return json.loads(json.dumps({"inputs": asdict(inputs), "tariffs": asdict(tariffs)}, default=str))
