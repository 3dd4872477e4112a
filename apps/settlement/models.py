"""Settlement: versioned rules, one row per member, interval and revision."""

from __future__ import annotations

from django.db import models

from apps.common.fields import MoneyField


class RuleSet(models.Model):
    """A version of the settlement rules, with the readable text members can open."""

    version = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=100)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"


class SettledInterval(models.Model):
    """One row per settled interval: the lock and the record that it was settled."""

    interval_start = models.DateTimeField(unique=True)
    first_settled_at = models.DateTimeField(help_text="Business time of the first settlement.")
    revision = models.PositiveIntegerField(default=1, help_text="Highest revision booked.")
    estimated = models.BooleanField(default=False, help_text="Some member was settled on estimates.")
    rule_version = models.PositiveIntegerField()

    class Meta:
        ordering = ["-interval_start"]

    def __str__(self) -> str:
        return f"{self.interval_start:%Y-%m-%d %H:%M}Z r{self.revision}"


class MemberSettlement(models.Model):
    """A member's settlement of one interval. Corrections add revisions; ``current`` marks the
    one that stands (its ledger transaction is the one not reversed)."""

    interval_start = models.DateTimeField()
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="settlements")
    revision = models.PositiveIntegerField()
    current = models.BooleanField(default=True)
    rule_version = models.PositiveIntegerField()
    input_hash = models.CharField(max_length=64)
    inputs = models.JSONField()
    estimated = models.BooleanField(default=False)
    import_wh = models.BigIntegerField()
    export_wh = models.BigIntegerField()
    p2p_bought_wh = models.BigIntegerField()
    p2p_sold_wh = models.BigIntegerField()
    grid_import_wh = models.BigIntegerField()
    grid_export_wh = models.BigIntegerField()
    p2p_cost = MoneyField()
    p2p_revenue = MoneyField()
    grid_cost = MoneyField()
    grid_credit = MoneyField()
    fees = MoneyField()
    total = MoneyField(help_text="What the member owes for the interval (negative: is owed).")
    ledger_transaction_id = models.BigIntegerField(null=True, blank=True)
    settled_at = models.DateTimeField(help_text="Business time.")

    class Meta:
        ordering = ["-interval_start", "member_id", "-revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["interval_start", "member", "revision"], name="settlement_member_interval_revision"
            ),
            models.UniqueConstraint(
                fields=["interval_start", "member"],
                condition=models.Q(current=True),
                name="settlement_one_current_per_member_interval",
            ),
        ]
        indexes = [models.Index(fields=["member", "interval_start"], name="settlement_member_interval_idx")]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.interval_start:%Y-%m-%d %H:%M} r{self.revision}: {self.total}"


class CorrectionCursor(models.Model):
    """How far settlement has read another app's append-only change log (by id)."""

    name = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_id}"
