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
from decimal import Decimal

from apps.common.units import money_round, price_round

RULES_V1_TEXT = __doc__ or ""


money = money_round  # the one rounding of amounts (apps.common.units)


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


def inputs_hash(inputs: MemberInputs, tariffs: Tariffs, rule_version: int, community: str = "") -> str:
    """SHA-256 of the canonical inputs: anyone can recompute the settlement and compare."""
    payload = {"rule_version": rule_version, "inputs": asdict(inputs), "tariffs": asdict(tariffs)}
    if community:
        payload["community"] = community
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_json(inputs: MemberInputs, tariffs: Tariffs) -> dict:
    return json.loads(json.dumps({"inputs": asdict(inputs), "tariffs": asdict(tariffs)}, default=str))


# --- Community sharing (no order book) --------------------------------------------------------
#
# The coop may settle each interval's metered community surplus and deficit after delivery
# instead of running a market. Members with net import n = M_i - M_e > 0 are buyers (load L is
# the sum of their n), members with n < 0 sellers (generation G, the sum of |n|). With the grid
# prices lambda_buy (retail) and lambda_sell (feed-in), each mechanism sets a buy and a sell
# price such that buyers' payments minus sellers' receipts equal the community's net grid
# cost, lambda_buy * max(0, L - G) - lambda_sell * max(0, G - L):
# - supply-demand ratio, SDR (Liu et al. 2017): SDR = G / L. If SDR < 1:
#   P_sell = lambda_buy * lambda_sell / ((lambda_buy - lambda_sell) * SDR + lambda_sell),
#   P_buy = P_sell * SDR + lambda_buy * (1 - SDR); otherwise P_sell = P_buy = lambda_sell.
# - mid-market rate, MMR (Long et al. 2017): P_mid = (lambda_buy + lambda_sell) / 2. If G = L
#   both are P_mid; if G > L, P_buy = P_mid and P_sell = (P_mid * L + lambda_sell * (G - L)) / G;
#   if G < L, P_sell = P_mid and P_buy = (P_mid * G + lambda_buy * (L - G)) / L.
# - bill sharing, BS (Zhou et al. 2018): the community's grid bill is shared by demand and its
#   grid revenue by supply: P_buy = lambda_buy * max(0, L - G) / L,
#   P_sell = lambda_sell * max(0, G - L) / G.
# Prices are rounded to 5 decimals, each member's amount once to 4; the coop books the
# community's grid cost and the rounding remainder in one interval transaction. No P2P
# network or coop fee applies (there is no trade), and grid lines are the community's, not
# the member's: the member's bought (sold) energy is their net import (export).

COMMUNITY_TEXT = """The coop may settle each interval's metered community surplus and deficit after delivery
instead of running a market. Members with net import n = M_i - M_e > 0 are buyers (load L is
the sum of their n), members with n < 0 sellers (generation G, the sum of |n|). With the grid
prices lambda_buy (retail) and lambda_sell (feed-in), each mechanism sets a buy and a sell
price such that buyers' payments minus sellers' receipts equal the community's net grid
cost, lambda_buy * max(0, L - G) - lambda_sell * max(0, G - L):
- supply-demand ratio, SDR (Liu et al. 2017): SDR = G / L. If SDR < 1:
  P_sell = lambda_buy * lambda_sell / ((lambda_buy - lambda_sell) * SDR + lambda_sell),
  P_buy = P_sell * SDR + lambda_buy * (1 - SDR); otherwise P_sell = P_buy = lambda_sell.
- mid-market rate, MMR (Long et al. 2017): P_mid = (lambda_buy + lambda_sell) / 2. If G = L
  both are P_mid; if G > L, P_buy = P_mid and P_sell = (P_mid * L + lambda_sell * (G - L)) / G;
  if G < L, P_sell = P_mid and P_buy = (P_mid * G + lambda_buy * (L - G)) / L.
- bill sharing, BS (Zhou et al. 2018): the community's grid bill is shared by demand and its
  grid revenue by supply: P_buy = lambda_buy * max(0, L - G) / L,
  P_sell = lambda_sell * max(0, G - L) / G.
Prices are rounded to 5 decimals, each member's amount once to 4; the coop books the
community's grid cost and the rounding remainder in one interval transaction. No P2P
network or coop fee applies (there is no trade), and grid lines are the community's, not
the member's: the member's bought (sold) energy is their net import (export).
"""
COMMUNITY_MODES = ("community_sdr", "community_mmr", "community_bs")
price = price_round  # the one rounding of prices (apps.common.units)


def community_prices(mode: str, load_wh: int, gen_wh: int, tariffs: Tariffs) -> tuple[Decimal, Decimal]:
    """(buy price, sell price) per kWh for the interval's community load and generation."""
    buy, sell = tariffs.retail, tariffs.feed_in
    if mode == "community_sdr":
        if load_wh == 0 or gen_wh >= load_wh:
            return price(sell), price(sell)
        sdr = Decimal(gen_wh) / Decimal(load_wh)
        p_sell = buy * sell / ((buy - sell) * sdr + sell)
        return price(p_sell * sdr + buy * (1 - sdr)), price(p_sell)
    if mode == "community_mmr":
        mid = (buy + sell) / 2
        if gen_wh == load_wh:
            return price(mid), price(mid)
        if gen_wh > load_wh:
            return price(mid), price((mid * load_wh + sell * (gen_wh - load_wh)) / gen_wh)
        return price((mid * gen_wh + buy * (load_wh - gen_wh)) / load_wh), price(mid)
    if mode == "community_bs":
        p_buy = buy * max(0, load_wh - gen_wh) / load_wh if load_wh else Decimal(0)
        p_sell = sell * max(0, gen_wh - load_wh) / gen_wh if gen_wh else Decimal(0)
        return price(p_buy), price(p_sell)
    raise ValueError(f"unknown community mode {mode!r}")


def community_net_grid_cost(load_wh: int, gen_wh: int, tariffs: Tariffs) -> Decimal:
    """What the community as a whole pays the grid (negative: is paid), rounded once."""
    return money(
        (Decimal(max(0, load_wh - gen_wh)) * tariffs.retail - Decimal(max(0, gen_wh - load_wh)) * tariffs.feed_in)
        / 1000
    )


def settle_member_community(inputs: MemberInputs, buy_price: Decimal, sell_price: Decimal) -> Lines:
    net = inputs.import_wh - inputs.export_wh
    bought, sold = max(0, net), max(0, -net)
    cost = money(bought * buy_price / 1000)
    revenue = money(sold * sell_price / 1000)
    zero = Decimal("0.0000")
    return Lines(
        import_wh=inputs.import_wh,
        export_wh=inputs.export_wh,
        p2p_bought_wh=bought,
        p2p_sold_wh=sold,
        grid_import_wh=0,
        grid_export_wh=0,
        p2p_cost=cost,
        p2p_revenue=revenue,
        grid_cost=zero,
        grid_credit=zero,
        network_fee=zero,
        coop_fee=zero,
        fees=zero,
        total=cost - revenue,
        estimated=inputs.estimated,
    )


RULES_TEXT = {
    "p2p": ("Default P2P settlement", RULES_V1_TEXT),
    "community_sdr": ("Community sharing: supply-demand ratio (Liu et al. 2017)", COMMUNITY_TEXT),
    "community_mmr": ("Community sharing: mid-market rate (Long et al. 2017)", COMMUNITY_TEXT),
    "community_bs": ("Community sharing: bill sharing (Zhou et al. 2018)", COMMUNITY_TEXT),
}
RULE_VERSIONS = {"p2p": 1, "community_sdr": 2, "community_mmr": 3, "community_bs": 4}
