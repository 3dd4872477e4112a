"""Automated trading preferences: most members never place an order by hand."""

from __future__ import annotations

from django.db import models

from apps.common.fields import PriceField
from apps.common.models import TimeStampedModel
from apps.members.models import Member


class TradingPreference(TimeStampedModel):
    """Sell surplus at no less than ``sell_min_price``, buy deficit up to ``buy_max_price``, or pause.

    Empty prices mean "at the tariff band's edge": sell at feed-in, buy at retail.
    """

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="trading_preference")
    enabled = models.BooleanField(default=True, help_text="Off pauses automated trading.")
    sell_surplus = models.BooleanField(default=True)
    buy_deficit = models.BooleanField(default=True)
    sell_min_price = PriceField(null=True, blank=True)
    buy_max_price = PriceField(null=True, blank=True)

    class Meta:
        ordering = ["member"]

    def __str__(self) -> str:
        return f"{self.member.number}: {'on' if self.enabled else 'paused'}"
