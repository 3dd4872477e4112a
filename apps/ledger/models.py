"""The double-entry, hash-chained, append-only ledger (DESIGN.md, Ledger).

Every row here is written once and never changed or removed: the ORM refuses it below,
and on PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE and any statement that
inserts an unbalanced transaction (migration 0002). Sealing never updates a transaction:
a block's membership lives in :class:`BlockEntry`, itself append-only.

Signs: a posting's amount is what the account is credited. For a member account a
positive balance is what the coop owes the member, negative what the member owes.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from apps.common.fields import MoneyField
from apps.ledger.choices import AccountKind
from apps.ledger.exceptions import LedgerAppendOnly
from apps.members.models import Member


def _refuse(what: str) -> NoReturn:
    raise LedgerAppendOnly(f"The ledger is append-only: {what} is refused. Book a reversal instead.")


class AppendOnlyQuerySet(models.QuerySet):
    """A queryset that reads and inserts, and refuses every bulk change or removal."""

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse(f"updating {self.model._meta.label} rows")

    def delete(self) -> NoReturn:
        _refuse(f"deleting {self.model._meta.label} rows")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse(f"updating {self.model._meta.label} rows")

    def update_or_create(self, defaults: Any = None, create_defaults: Any = None, **kwargs: Any) -> NoReturn:
        _refuse(f"update_or_create on {self.model._meta.label}")

    def _raw_delete(self, using: Any) -> NoReturn:
        _refuse(f"deleting {self.model._meta.label} rows")


class AppendOnlyModel(models.Model):
    """Saved once (an insert), never saved again nor deleted."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse(f"changing {self._meta.label} {self.pk}")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"deleting {self._meta.label} {self.pk}")


class Account(AppendOnlyModel):
    """A member's account (one per member) or one of the coop's accounts (CoopAccount codes)."""

    code = models.CharField(max_length=64, unique=True, help_text="member:<number> or coop:<code>; hashed.")
    kind = models.CharField(max_length=8, choices=AccountKind.choices)
    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_account"
    )
    name = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind=AccountKind.MEMBER, member__isnull=False)
                | models.Q(kind=AccountKind.COOP, member__isnull=True),
                name="ledger_account_member_iff_member_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Transaction(AppendOnlyModel):
    """One balanced booking: postings that sum to zero, its content hash written with it."""

    idempotency_key = models.CharField(
        max_length=200, unique=True, help_text='The caller\'s key, e.g. "settlement:<interval>:<member>:r<revision>".'
    )
    kind = models.CharField(max_length=32, help_text="settlement, fee, reward, payment, reversal, ...")
    description = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(help_text="The business time the booking is about (UTC).")
    created_at = models.DateTimeField(help_text="When it was written (real time).")
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_index=False,  # the unique constraint below indexes it
    )
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical content (hashing.py).")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reverses"], condition=models.Q(reverses__isnull=False), name="ledger_tx_reversed_once"
            ),
            models.CheckConstraint(condition=~models.Q(kind=""), name="ledger_tx_kind_not_blank"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.idempotency_key}"


class Posting(AppendOnlyModel):
    """One line of a transaction: an amount credited to an account (negative: debited)."""

    # No database foreign keys on the two hot columns: row-level foreign-key checks doubled
    # the cost of booking a batch. The statement-level trigger of migration 0002 checks both
    # references once per INSERT instead, which suffices because nothing here is ever updated
    # or deleted.
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.PROTECT,
        related_name="postings",
        db_index=False,  # the (transaction, line) unique constraint indexes it
        db_constraint=False,
    )
    line = models.PositiveSmallIntegerField(help_text="0, 1, 2 ... within the transaction; the hashed order.")
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="postings",
        db_index=False,  # the covering index below serves balances
        db_constraint=False,
    )
    amount = MoneyField()
    memo = models.CharField(max_length=64, blank=True, help_text="What the line is, e.g. p2p_cost, grid_credit.")

    class Meta:
        ordering = ["transaction_id", "line"]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "line"], name="ledger_posting_tx_line_uniq"),
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_posting_amount_not_zero"),
        ]
        indexes = [
            # Balances are sums of postings: with the amount in the key (not INCLUDE, which
            # SQLite lacks), an index-only scan per account on PostgreSQL.
            models.Index(fields=["account", "amount"], name="ledger_posting_account_amt_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount}"


class Block(AppendOnlyModel):
    """A sealed batch of transactions: their Merkle root chained to the previous block's hash."""

    height = models.PositiveBigIntegerField(unique=True, help_text="1, 2, 3 ... without gaps.")
    previous_hash = models.CharField(max_length=64)
    merkle_root = models.CharField(max_length=64)
    tx_count = models.PositiveIntegerField()
    sealed_at = models.DateTimeField()
    block_hash = models.CharField(max_length=64, unique=True)
    merkle_nodes = models.BinaryField(
        editable=False, help_text="The tree's upper levels, packed (hashing.py), so proofs never read a whole block."
    )
    # Bookkeeping for the next seal on PostgreSQL, not hashed: every transaction written by a
    # database transaction older than this id was committed (or rolled back) before this
    # block was sealed, so the next seal looks only at newer writers (PostgresLedgerStore.pending_for_seal).
    pending_from_xid = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["height"]

    def __str__(self) -> str:
        return f"block {self.height} ({self.tx_count} tx)"


class BlockEntry(AppendOnlyModel):
    """A transaction's place in its block: written once, when the block is sealed."""

    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, primary_key=True, related_name="block_entry"
    )
    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="entries", db_index=False)
    position = models.PositiveIntegerField(help_text="Leaf index in the block's Merkle tree (transaction id order).")
    content_hash = models.CharField(
        max_length=64, help_text="The transaction's hash as sealed: the leaf, and a second copy to compare."
    )

    class Meta:
        ordering = ["block_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["block", "position"], name="ledger_blockentry_block_position_uniq"),
        ]

    def __str__(self) -> str:
        return f"tx {self.transaction_id} @ block {self.block_id}[{self.position}]"


class Verification(AppendOnlyModel):
    """A checkpoint of ``ledger_verify``: what was checked, up to which block, and the outcome."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    full = models.BooleanField(help_text="From the first block, or from the last verified one.")
    from_height = models.PositiveBigIntegerField(null=True, blank=True)
    to_height = models.PositiveBigIntegerField(null=True, blank=True, help_text="The last block checked.")
    head_hash = models.CharField(max_length=64, blank=True, help_text="Hash of the block at to_height.")
    ok = models.BooleanField()
    blocks_checked = models.PositiveIntegerField()
    transactions_checked = models.PositiveBigIntegerField()
    first_broken_transaction_id = models.BigIntegerField(null=True, blank=True)
    first_broken_block_height = models.PositiveBigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'FAILED'} @ {self.started_at:%Y-%m-%d %H:%M}"
