"""Sealing: appending blocks over the transactions not sealed yet, the chain never forking."""

from __future__ import annotations

from django.db import transaction as db_transaction
from django.utils import timezone

from apps.ledger import hashing
from apps.ledger.locks import seal_lock
from apps.ledger.models import Block
from apps.ledger.store import store

# Sealing takes the oldest pending transactions up to this many per block; the rest go
# into the next block. It bounds the memory of one seal, not how much is sealed.
BLOCK_MAX_TRANSACTIONS = 100_000


def ledger_seal(*, max_transactions: int = BLOCK_MAX_TRANSACTIONS) -> Block | None:
    """Append one block over the transactions not sealed yet (oldest first), or None if there are none.

    Two sealers at once take turns on one advisory lock (PostgreSQL; SQLite serialises
    writers anyway), so the chain never forks; posting never takes that lock.
    """
    with db_transaction.atomic():
        seal_lock()
        head = Block.objects.order_by("-height").only("height", "block_hash", "pending_from_xid").first()
        pending, pending_from_xid = store().pending_for_seal(
            from_xid=head.pending_from_xid if head else None, limit=max_transactions
        )
        if not pending:
            return None
        height = head.height + 1 if head else 1
        previous_hash = head.block_hash if head else hashing.GENESIS_HASH
        root, nodes = hashing.block_tree_from_hashes([h for _id, h in pending])
        sealed_at = timezone.now()
        header = hashing.block_header(
            height=height,
            previous_hash=previous_hash,
            merkle_root=root,
            tx_count=len(pending),
            sealed_at=hashing.instant_canonical(sealed_at),
        )
        block = Block(
            height=height,
            previous_hash=previous_hash,
            merkle_root=root,
            tx_count=len(pending),
            sealed_at=sealed_at,
            block_hash=hashing.block_hash(header),
            merkle_nodes=nodes,
            pending_from_xid=pending_from_xid,
        )
        block.save()
        store().block_entries_insert(block_id=block.pk, entries=pending)
    return block


def ledger_seal_all() -> list[Block]:
    """Seal until nothing is pending (several blocks when more than a block's worth waits)."""
    blocks = []
    while (block := ledger_seal()) is not None:
        blocks.append(block)
    return blocks
