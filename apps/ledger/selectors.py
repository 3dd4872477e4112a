"""Reads of the ledger: balances (sums of postings), Merkle proofs, a member's proof export.

Balances are never stored in a mutable row: they are sums over an index that covers
(account, amount), so no account row is a lock that serialises settlement.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from apps.common.clock import format_instant
from apps.common.exceptions import Conflict, NotFound
from apps.common.units import MONEY_PLACES
from apps.ledger import hashing
from apps.ledger.models import Account, Block, BlockEntry, Posting, Transaction
from apps.members.models import Member

EXPORT_FORMAT = "energycoop-ledger-proofs/1"
_ZERO = Decimal(0).quantize(MONEY_PLACES)


def account_balance(*, account: Account) -> Decimal:
    """The sum of the account's postings (for a member: positive when the coop owes the member)."""
    total = Posting.objects.filter(account_id=account.pk).aggregate(total=Sum("amount"))["total"]
    return (total or _ZERO).quantize(MONEY_PLACES)


def account_balances(*, accounts: Iterable[Account]) -> dict[int, Decimal]:
    """Balances of many accounts in one query, by account id (zero for accounts without postings)."""
    ids = [a.pk for a in accounts]
    balances = dict.fromkeys(ids, _ZERO)
    rows = Posting.objects.filter(account_id__in=ids).values("account_id").annotate(total=Sum("amount"))
    for row in rows:
        balances[row["account_id"]] = row["total"].quantize(MONEY_PLACES)
    return balances


def member_balance(*, member: Member) -> Decimal:
    """What the coop owes the member (negative: what the member owes the coop); zero before any booking."""
    total = Posting.objects.filter(account__member_id=member.pk).aggregate(total=Sum("amount"))["total"]
    return (total or _ZERO).quantize(MONEY_PLACES)


def member_account(*, member: Member) -> Account | None:
    return Account.objects.filter(member_id=member.pk).first()


def transactions_for_account(*, account: Account) -> QuerySet[Transaction]:
    """The account's transactions, oldest first, with their postings and accounts prefetched."""
    return (
        Transaction.objects.filter(pk__in=Posting.objects.filter(account_id=account.pk).values("transaction_id"))
        .order_by("id")
        .prefetch_related("postings__account")
    )


def transaction_find(*, idempotency_key: str) -> Transaction | None:
    """The transaction booked under ``idempotency_key``, if any."""
    return Transaction.objects.filter(idempotency_key=idempotency_key).first()


def transaction_get(*, pk: int) -> Transaction:
    """One transaction by id (settlement reverses the one it booked)."""
    transaction = Transaction.objects.filter(pk=pk).first()
    if transaction is None:
        raise NotFound(f"No ledger transaction {pk}.")
    return transaction


def ledger_head() -> Block | None:
    return Block.objects.order_by("-height").first()


def block_header_data(block: Block) -> dict[str, Any]:
    """A block's public header: everything a member needs to recompute its hash, and the hash."""
    return {
        "height": block.height,
        "previous_hash": block.previous_hash,
        "merkle_root": block.merkle_root,
        "tx_count": block.tx_count,
        "sealed_at": hashing.instant_canonical(block.sealed_at),
        "block_hash": block.block_hash,
    }


def merkle_proof(*, transaction: Transaction) -> dict[str, Any]:
    """The transaction's path to its block's Merkle root, and the block header.

    ``{"transaction_id", "content_hash", "leaf_index", "tree_size", "path": [hex, ...],
    "block": {header}}``. Refused (``not_sealed``) until the transaction is sealed.
    """
    entry = BlockEntry.objects.filter(transaction_id=transaction.pk).select_related("block", "transaction").first()
    if entry is None:
        raise Conflict(f"Transaction {transaction.pk} is not sealed in a block yet.", code="not_sealed")
    proofs = _proofs_for([entry])
    return {
        "transaction_id": entry.transaction_id,
        "content_hash": entry.transaction.content_hash,
        **proofs[entry.transaction_id],
        "block": block_header_data(entry.block),
    }


def _proofs_for(entries: list[BlockEntry]) -> dict[int, dict[str, Any]]:
    """Proofs for many sealed transactions, reading only their runs of leaves (hashing.py)."""
    blocks = {e.block_id: e.block for e in entries}
    runs = {(e.block_id, e.position // hashing.CHUNK_SIZE) for e in entries}
    leaves: dict[tuple[int, int], list[str]] = defaultdict(list)
    run_list = sorted(runs)
    for start in range(0, len(run_list), 500):
        condition = Q()
        for block_id, run in run_list[start : start + 500]:
            lo = run * hashing.CHUNK_SIZE
            condition |= Q(block_id=block_id, position__gte=lo, position__lt=lo + hashing.CHUNK_SIZE)
        rows = (
            BlockEntry.objects.filter(condition)
            .order_by("block_id", "position")
            .values_list("block_id", "position", "transaction__content_hash")
        )
        for block_id, position, content_hash in rows:
            leaves[(block_id, position // hashing.CHUNK_SIZE)].append(content_hash)
    proofs = {}
    for e in entries:
        block = blocks[e.block_id]
        proofs[e.transaction_id] = {
            "leaf_index": e.position,
            "tree_size": block.tx_count,
            "path": hashing.block_path(
                leaf_index=e.position,
                tree_size=block.tx_count,
                chunk_hashes=leaves[(e.block_id, e.position // hashing.CHUNK_SIZE)],
                merkle_nodes=bytes(block.merkle_nodes),
            ),
        }
    return proofs


def member_ledger_export(*, member: Member, since: dt.datetime | None = None) -> dict[str, Any]:
    """Everything a member needs to check their own transactions offline, and nothing of anyone else's.

    Their transactions with all postings (the hash covers them), a Merkle proof for each
    sealed one, and the block headers from their first block to the head, so the chain
    links can be followed to the latest block. scripts/verify_ledger_proofs.py checks it;
    docs/ledger-verify.md describes the format.

    ``since``: only the transactions recorded (``created_at``) at or after it, the way to
    fetch what is new since an earlier download; ``opening_balance`` is then the balance of
    everything recorded before, so ``balance`` stays the member's whole balance.
    """
    account = member_account(member=member)
    head = ledger_head()
    transactions: list[Transaction] = []
    opening = _ZERO
    if account is not None:
        queryset = transactions_for_account(account=account).select_related("reverses")
        if since is not None:
            queryset = queryset.filter(created_at__gte=since)
            opening = (
                Posting.objects.filter(account_id=account.pk, transaction__created_at__lt=since).aggregate(
                    total=Sum("amount")
                )["total"]
                or _ZERO
            )
        transactions = list(queryset)
    entries = {
        e.transaction_id: e
        for e in BlockEntry.objects.filter(transaction_id__in=[t.pk for t in transactions]).select_related("block")
    }
    proofs = _proofs_for(list(entries.values()))
    first_height = min((e.block.height for e in entries.values()), default=head.height if head else None)
    blocks = (
        []
        if first_height is None
        else list(Block.objects.filter(height__gte=first_height).defer("merkle_nodes").order_by("height"))
    )
    balance = opening
    items = []
    for tx in transactions:
        postings = sorted(tx.postings.all(), key=lambda p: p.line)
        balance += sum((p.amount for p in postings if p.account_id == account.pk), _ZERO)  # type: ignore[union-attr]
        entry = entries.get(tx.pk)
        items.append(
            {
                "id": tx.pk,
                "idempotency_key": tx.idempotency_key,
                "kind": tx.kind,
                "description": tx.description,
                "occurred_at": hashing.instant_canonical(tx.occurred_at),
                "reverses": ({"id": tx.reverses_id, "content_hash": tx.reverses.content_hash} if tx.reverses else None),
                "postings": [
                    {"account": p.account.code, "amount": hashing.amount_canonical(p.amount), "memo": p.memo}
                    for p in postings
                ],
                "content_hash": tx.content_hash,
                "created_at": hashing.instant_canonical(tx.created_at),
                "proof": ({"block_height": entry.block.height, **proofs[tx.pk]} if entry is not None else None),
            }
        )
    return {
        "format": EXPORT_FORMAT,
        "generated_at": format_instant(timezone.now()),
        "member_number": member.number,
        "account": account.code if account else None,
        "currency": settings.CURRENCY,
        "since": format_instant(since) if since is not None else None,
        "opening_balance": hashing.amount_canonical(opening),
        "balance": hashing.amount_canonical(balance),
        "transactions": items,
        "blocks": [block_header_data(b) for b in blocks],
        "head": block_header_data(head) if head else None,
    }
