"""Trading intervals, each with the tariffs frozen for it."""

from __future__ import annotations

from django.db import models

from apps.common.fields import PriceField
from apps.market.choices import IntervalState


class Interval(models.Model):
    """One delivery interval of the market. Created on its first order or at clearing.

    The tariffs that apply are copied in when the interval is created and refreshed while it
    is open, so that clearing and settlement read exactly the prices members traded against.
    """

    start = models.DateTimeField(unique=True)
    end = models.DateTimeField()
    gate_closure = models.DateTimeField()
    state = models.CharField(max_length=8, choices=IntervalState.choices, default=IntervalState.OPEN)
    retail_price = PriceField()
    feed_in_price = PriceField()
    imbalance_price = PriceField()
    network_fee = PriceField()
    coop_fee = PriceField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["state", "gate_closure"], name="interval_state_gate_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="interval_end_after_start"),
            models.CheckConstraint(
                condition=models.Q(feed_in_price__lte=models.F("retail_price")), name="interval_feed_in_le_retail"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}Z"
