"""Clearing results and trades: written once per interval, in one transaction."""

from __future__ import annotations

from django.db import models

from apps.common.fields import MoneyField, PriceField
from apps.market.choices import Mechanism
from apps.market.models.intervals import Interval
from apps.market.models.orders import Order
from apps.members.models import Member


class ClearingResult(models.Model):
    """The one result of an interval's clearing (unique per interval: clearing runs once)."""

    interval = models.OneToOneField(Interval, on_delete=models.PROTECT, related_name="result")
    mechanism = models.CharField(max_length=16, choices=Mechanism.choices)
    price = PriceField(null=True, blank=True, help_text="Null when nothing matched.")
    volume_wh = models.PositiveBigIntegerField(default=0)
    bids_wh = models.PositiveBigIntegerField(default=0)
    offers_wh = models.PositiveBigIntegerField(default=0)
    trades_count = models.PositiveIntegerField(default=0)
    orders_count = models.PositiveIntegerField(default=0)
    cleared_at = models.DateTimeField(help_text="Business time of the clearing.")

    class Meta:
        ordering = ["-interval__start"]

    def __str__(self) -> str:
        return f"{self.interval}: {self.price} × {self.volume_wh} Wh"


class Trade(models.Model):
    """One buyer, one seller, a quantity and the prices each side pays or gets."""

    # A clearing writes tens of thousands of trades in one COPY: only the order references are
    # checked by the database; interval, buyer and seller are copies of the orders' own,
    # written by the clearing service alone, and each FK check or index costs every row.
    interval = models.ForeignKey(Interval, on_delete=models.PROTECT, related_name="trades", db_constraint=False)
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="buy_trades", db_index=False)
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sell_trades", db_index=False)
    buyer = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="buy_trades", db_constraint=False, db_index=False
    )
    seller = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="sell_trades", db_constraint=False, db_index=False
    )
    quantity_wh = models.PositiveBigIntegerField()
    buyer_price = PriceField(help_text="What the buyer pays per kWh.")
    seller_price = PriceField(help_text="What the seller gets per kWh (pay-as-bid: its ask).")
    buyer_amount = MoneyField(help_text="quantity × buyer price / 1000, rounded once.")
    seller_amount = MoneyField(help_text="quantity × seller price / 1000, rounded once.")

    class Meta:
        ordering = ["interval__start", "pk"]
        indexes = [
            models.Index(fields=["buyer", "interval"], name="trade_buyer_interval_idx"),
            models.Index(fields=["seller", "interval"], name="trade_seller_interval_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity_wh__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(buyer_price__gte=models.F("seller_price")), name="trade_buyer_pays_at_least_seller"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity_wh} Wh @ {self.buyer_price}"
