"""Read-only admin views of the ledger: nothing here adds, changes or deletes a row.

Who sees them is the permission system's call (``view_*`` permissions; superusers see all).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.ledger.models import Account, Block, Posting, Transaction, Verification


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("line", "account", "amount", "memo")
    readonly_fields = fields
    ordering = ("line",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "kind", "name", "member", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name", "member__number")
    list_select_related = ("member",)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "idempotency_key", "kind", "occurred_at", "created_at", "reverses", "block_height")
    list_filter = ("kind",)
    search_fields = ("idempotency_key", "description", "content_hash")
    list_select_related = ("block_entry__block",)
    show_full_result_count = False  # counting millions of rows on every page is slow
    inlines = [PostingInline]
    raw_id_fields = ("reverses",)

    @admin.display(description="block")
    def block_height(self, obj: Transaction) -> int | None:
        entry = getattr(obj, "block_entry", None)
        return entry.block.height if entry else None


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("height", "tx_count", "sealed_at", "block_hash", "merkle_root")
    search_fields = ("block_hash", "merkle_root")
    exclude = ("merkle_nodes",)


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "ok",
        "full",
        "from_height",
        "to_height",
        "transactions_checked",
        "first_broken_transaction_id",
    )
    list_filter = ("ok", "full")
