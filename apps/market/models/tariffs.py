"""Tariffs: time-of-use schedules and dynamic prices; each interval freezes the one that applies."""

from __future__ import annotations

from django.db import models

from apps.common.fields import PriceField
from apps.common.models import TimeStampedModel


class TariffSchedule(TimeStampedModel):
    """A time-of-use tariff: applies on the given weekdays between two local clock times.

    The most specific (highest ``priority``) schedule valid at an interval's start applies; a
    dynamic price for the interval overrides it.
    """

    name = models.CharField(max_length=100)
    priority = models.IntegerField(default=0, help_text="Higher wins when schedules overlap.")
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Inclusive; empty means open-ended.")
    weekdays = models.CharField(
        max_length=7, default="1234567", help_text="ISO weekdays it applies on: 1 = Monday … 7 = Sunday."
    )
    start_time = models.TimeField(help_text="Local (coop time zone) start, inclusive.")
    end_time = models.TimeField(help_text="Local end, exclusive; 00:00 means midnight at the end of the day.")
    retail_price = PriceField(help_text="Grid import price per kWh.")
    feed_in_price = PriceField(help_text="Grid export credit per kWh.")
    imbalance_price = PriceField(help_text="Seller shortfall price per kWh.")
    network_fee = PriceField(help_text="Per kWh bought peer to peer, paid by the buyer.")
    coop_fee = PriceField(help_text="Per kWh traded, paid by each side.")

    class Meta:
        ordering = ["-priority", "valid_from", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(feed_in_price__lte=models.F("retail_price")), name="tariff_feed_in_le_retail"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.start_time:%H:%M}–{self.end_time:%H:%M})"


class DynamicPrice(TimeStampedModel):
    """A price published for one interval (e.g. day-ahead), overriding the schedules."""

    interval_start = models.DateTimeField(unique=True)
    retail_price = PriceField()
    feed_in_price = PriceField()
    imbalance_price = PriceField(null=True, blank=True, help_text="Empty: the retail price.")
    network_fee = PriceField(null=True, blank=True, help_text="Empty: the schedule's.")
    coop_fee = PriceField(null=True, blank=True, help_text="Empty: the schedule's.")
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["interval_start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(feed_in_price__lte=models.F("retail_price")), name="dynamic_feed_in_le_retail"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.interval_start:%Y-%m-%d %H:%M} {self.retail_price}/{self.feed_in_price}"
