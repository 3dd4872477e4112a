"""Kinds of ledger accounts and the coop's own account codes, declared once."""

from django.db import models


class AccountKind(models.TextChoices):
    MEMBER = "member", "Member"
    COOP = "coop", "Coop"


class CoopAccount(models.TextChoices):
    """The coop's side of every booking (DESIGN.md, Ledger)."""

    P2P_CLEARING = "p2p_clearing", "P2P clearing"
    GRID_PURCHASES = "grid_purchases", "Grid purchases"
    GRID_SALES = "grid_sales", "Grid sales"
    NETWORK_FEES = "network_fees", "Network fees"
    COOP_FEES = "coop_fees", "Coop fees"
    MARKET_SPREAD = "market_spread", "Market spread"
    DR_REWARDS = "dr_rewards", "Demand-response rewards"
    ROUNDING = "rounding", "Rounding"
