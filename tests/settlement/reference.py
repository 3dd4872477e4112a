"""An independent reference settlement, written from DESIGN.md alone: raw cumulative
registers, trades and tariffs in; per member and interval energy and money lines out."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

Q = Decimal("0.0001")


def r4(x: Decimal) -> Decimal:
    return x.quantize(Q, rounding=ROUND_HALF_EVEN)


def interval_energy_from_registers(registers: dict[dt.datetime, tuple[int, int]], start: dt.datetime, step):
    """(import, export) in [start, start+step) from the cumulative registers at both ends."""
    a, b = registers[start], registers[start + step]
    return b[0] - a[0], b[1] - a[1]


def reference_lines(m_i: int, m_e: int, trades: list[dict], member_id: int, tariff: dict) -> dict:
    bought = [t for t in trades if t["buyer_id"] == member_id]
    sold = [t for t in trades if t["seller_id"] == member_id]
    b = sum(t["quantity_wh"] for t in bought)
    s = sum(t["quantity_wh"] for t in sold)
    p2p_cost = sum((r4(Decimal(t["quantity_wh"]) * t["buyer_price"] / 1000) for t in bought), Decimal("0"))
    p2p_revenue = sum((r4(Decimal(t["quantity_wh"]) * t["seller_price"] / 1000) for t in sold), Decimal("0"))
    import_beyond = m_i - b if m_i > b else 0
    shortfall = s - m_e if s > m_e else 0
    export_beyond = m_e - s if m_e > s else 0
    unused = b - m_i if b > m_i else 0
    grid_cost = r4((Decimal(import_beyond) * tariff["retail"] + Decimal(shortfall) * tariff["imbalance"]) / 1000)
    grid_credit = r4(Decimal(export_beyond + unused) * tariff["feed_in"] / 1000)
    fees = r4((Decimal(b) * tariff["network_fee"] + Decimal(b + s) * tariff["coop_fee"]) / 1000)
    return {
        "import_wh": m_i,
        "export_wh": m_e,
        "p2p_bought_wh": b,
        "p2p_sold_wh": s,
        "grid_import_wh": import_beyond + shortfall,
        "grid_export_wh": export_beyond + unused,
        "p2p_cost": p2p_cost,
        "p2p_revenue": p2p_revenue,
        "grid_cost": grid_cost,
        "grid_credit": grid_credit,
        "fees": fees,
        "total": p2p_cost + grid_cost + fees - p2p_revenue - grid_credit,
    }
