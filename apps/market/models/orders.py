"""Orders and their history."""

from __future__ import annotations

from django.db import models

from apps.common.fields import PriceField
from apps.market.choices import OrderEventKind, OrderSource, OrderStatus, Side
from apps.market.models.intervals import Interval
from apps.members.models import Member


class Order(models.Model):
    """A member's buy or sell order for one delivery interval."""

    # (member, interval) below serves every lookup by member: no separate FK index.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="orders", db_index=False)
    interval = models.ForeignKey(Interval, on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity_wh = models.PositiveBigIntegerField()
    limit_price = PriceField()
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    filled_wh = models.PositiveBigIntegerField(default=0)
    source = models.CharField(max_length=8, choices=OrderSource.choices, default=OrderSource.MANUAL)
    submitted_at = models.DateTimeField(help_text="Business time of submission: the time in price-time priority.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["interval__start", "submitted_at", "pk"]
        # Clearing rewrites every order's status and fill; keeping those columns out of all
        # indexes (and room on each page, migration 0002) lets PostgreSQL update in place (HOT)
        # instead of touching every index for every order.
        indexes = [models.Index(fields=["member", "interval"], name="order_member_interval_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="order_member_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(quantity_wh__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(filled_wh__lte=models.F("quantity_wh")), name="order_not_overfilled"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity_wh} Wh @ {self.limit_price}"


class OrderEvent(models.Model):
    """Append-only history of an order: placed, amended, cancelled, filled, not matched."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=OrderEventKind.choices)
    at = models.DateTimeField(help_text="Business time.")
    quantity_wh = models.PositiveBigIntegerField(null=True, blank=True)
    limit_price = PriceField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"order {self.order_id} {self.kind}"
