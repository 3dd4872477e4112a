"""Verification: recomputing every hash, Merkle root and chain link; checkpoints and alerts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction as db_transaction
from django.utils import timezone

from apps.ledger import hashing
from apps.ledger.choices import AccountKind
from apps.ledger.models import Account, Block, Verification
from apps.ledger.store import LedgerStore, PostingRecord, TxRecord, store

logger = logging.getLogger(__name__)

_VERIFY_CHUNK = 10_000
_MAX_PROBLEMS = 50


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """What ``ledger_verify`` found. ``first_broken_transaction_id`` names the first bad transaction."""

    ok: bool
    from_height: int
    to_height: int | None
    head_hash: str
    blocks_checked: int
    transactions_checked: int
    unsealed_checked: int
    first_broken_transaction_id: int | None
    first_broken_block_height: int | None
    problems: tuple[str, ...]
    seconds: float

    def summary(self) -> str:
        span = (
            f"blocks {self.from_height}..{self.to_height}"
            if self.to_height is not None and self.to_height >= self.from_height
            else "no new blocks"
        )
        counts = (
            f"{span} ({self.blocks_checked} blocks, {self.transactions_checked} sealed and "
            f"{self.unsealed_checked} unsealed transactions) in {self.seconds:.2f} s"
        )
        if self.ok:
            head = f"; head {self.to_height} {self.head_hash}" if self.to_height else ""
            return f"Ledger OK: {counts}{head}."
        if self.first_broken_transaction_id is not None:
            where = f"first broken transaction id={self.first_broken_transaction_id}: "
        elif self.first_broken_block_height is not None:
            where = f"first broken block height={self.first_broken_block_height}: "
        else:
            where = ""
        return f"Ledger BROKEN: {where}{self.problems[0]} ({len(self.problems)} problem(s); checked {counts})."


class _Findings:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.count = 0
        self.first_tx: int | None = None
        self.first_block: int | None = None

    def tx(self, tx_id: int, message: str, *, height: int | None = None) -> None:
        if self.first_tx is None:
            self.first_tx = tx_id
        where = f"block {height}" if height is not None else "unsealed"
        self._add(f"transaction {tx_id} ({where}): {message}", height)

    def block(self, height: int, message: str) -> None:
        self._add(f"block {height}: {message}", height)

    def ledger(self, message: str) -> None:
        self._add(message, None)

    def _add(self, message: str, height: int | None) -> None:
        self.count += 1
        if height is not None and self.first_block is None:
            self.first_block = height
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(message)


def ledger_verify(*, from_block: int | None = None, anchor_hash: str | None = None) -> VerificationResult:
    """Recompute every hash, Merkle root and chain link, and check that every transaction balances.

    From ``from_block`` (a height) on, or the whole chain; the block before ``from_block``
    must still hash to itself and, when given, to ``anchor_hash`` (the head a previous run
    verified). Transactions not sealed yet are checked too, every member account must still
    name its member, all postings must sum to zero, and on a full run every block an earlier
    verification recorded as a head must still have that hash.
    """
    started = time.monotonic()
    start = max(1, from_block or 1)
    findings = _Findings()
    ledger_store = store()
    with ledger_store.snapshot():
        codes = _verify_accounts(findings=findings)
        previous_hash = _anchor_hash(start=start, anchor_hash=anchor_hash, findings=findings)
        if start == 1:
            _verify_checkpoints(findings=findings)
        blocks = list(
            Block.objects.filter(height__gte=start)
            .order_by("height")
            .values_list(
                "id", "height", "previous_hash", "merkle_root", "tx_count", "sealed_at", "block_hash", "merkle_nodes"
            )
        )
        entry_counts = ledger_store.block_entry_counts(min_block_id=min((b[0] for b in blocks), default=None))
        checked = 0
        head_hash, to_height = (previous_hash, start - 1) if start > 1 else ("", None)
        expected_height = start
        for block_id, height, prev, root, tx_count, sealed_at, stored_hash, stored_nodes in blocks:
            if height != expected_height:
                findings.block(height, f"expected height {expected_height}: the chain has a gap")
            expected_height = height + 1
            if prev != previous_hash:
                findings.block(height, "previous_hash does not match the previous block's hash")
            if entry_counts.get(block_id, 0) != tx_count:
                findings.block(height, f"holds {entry_counts.get(block_id, 0)} transactions, header says {tx_count}")
            recomputed_root, nodes = _verify_block_transactions(
                ledger_store, block_id=block_id, height=height, tx_count=tx_count, codes=codes, findings=findings
            )
            checked += tx_count
            if recomputed_root != root:
                findings.block(height, "the Merkle root does not match its transactions' hashes")
            if nodes != bytes(stored_nodes):
                findings.block(height, "the stored upper Merkle nodes do not match")
            header = hashing.block_header(
                height=height,
                previous_hash=prev,
                merkle_root=root,
                tx_count=tx_count,
                sealed_at=hashing.instant_canonical(sealed_at),
            )
            if hashing.block_hash(header) != stored_hash:
                findings.block(height, "the block hash does not match its header")
            previous_hash, head_hash, to_height = stored_hash, stored_hash, height
        unsealed = _verify_unsealed(ledger_store, codes=codes, findings=findings)
        total = ledger_store.postings_total()
        if total != 0:
            findings.ledger(f"all postings together sum to {total}, not zero")
    return VerificationResult(
        ok=findings.count == 0,
        from_height=start,
        to_height=to_height,
        head_hash=head_hash,
        blocks_checked=len(blocks),
        transactions_checked=checked,
        unsealed_checked=unsealed,
        first_broken_transaction_id=findings.first_tx,
        first_broken_block_height=findings.first_block,
        problems=tuple(findings.problems),
        seconds=time.monotonic() - started,
    )


def _verify_accounts(*, findings: _Findings) -> dict[int, str]:
    """Account codes by id; a member account must still belong to the member its code names."""
    codes = {}
    rows = Account.objects.values_list("id", "code", "kind", "member__number")
    for account_id, code, kind, member_number in rows:
        codes[account_id] = code
        expected = f"member:{member_number}" if kind == AccountKind.MEMBER else None
        if (kind == AccountKind.MEMBER and code != expected) or (
            kind == AccountKind.COOP and (member_number is not None or not code.startswith("coop:"))
        ):
            findings.ledger(f"account {account_id} ({code}) no longer matches its kind or member")
    return codes


def _verify_checkpoints(*, findings: _Findings) -> None:
    """Every head an earlier verification recorded must still be in the chain with the same hash."""
    recorded: list[tuple[int, str]] = [
        (height, head_hash)
        for height, head_hash in Verification.objects.filter(ok=True, to_height__isnull=False)
        .values_list("to_height", "head_hash")
        .distinct()
        if height is not None
    ]
    current = dict(Block.objects.filter(height__in={h for h, _ in recorded}).values_list("height", "block_hash"))
    for height, head_hash in recorded:
        if current.get(height) != head_hash:
            findings.block(height, "its hash differs from the one an earlier verification recorded")


def _anchor_hash(*, start: int, anchor_hash: str | None, findings: _Findings) -> str:
    if start == 1:
        return hashing.GENESIS_HASH
    anchor = Block.objects.filter(height=start - 1).first()
    if anchor is None:
        findings.block(start - 1, "the block to continue from is missing")
        return anchor_hash or ""
    header = hashing.block_header(
        height=anchor.height,
        previous_hash=anchor.previous_hash,
        merkle_root=anchor.merkle_root,
        tx_count=anchor.tx_count,
        sealed_at=hashing.instant_canonical(anchor.sealed_at),
    )
    if hashing.block_hash(header) != anchor.block_hash:
        findings.block(anchor.height, "the block hash does not match its header")
    if anchor_hash is not None and anchor.block_hash != anchor_hash:
        findings.block(anchor.height, "its hash differs from the one verified before: the chain was rewritten")
    return anchor.block_hash


def _verify_block_transactions(
    ledger_store: LedgerStore, *, block_id: int, height: int, tx_count: int, codes: dict[int, str], findings: _Findings
) -> tuple[str, bytes]:
    """Check the block's transactions in position order; return the recomputed (root, upper nodes)."""
    chunk_roots: list[bytes] = []
    chunk: list[str] = []
    expected_position, last_id = 0, 0
    while True:
        rows = ledger_store.block_transactions(block_id=block_id, from_position=expected_position, limit=_VERIFY_CHUNK)
        if not rows:
            break
        postings = ledger_store.block_postings(block_id=block_id, from_position=rows[0][0], to_position=rows[-1][0])
        for position, sealed_hash, tx in rows:
            if position != expected_position:
                findings.tx(tx.id, f"sits at position {position}, where {expected_position} was due", height=height)
            if tx.id <= last_id:
                findings.tx(tx.id, "is out of id order in its block", height=height)
            _verify_transaction(tx, postings.get(tx.id, []), codes=codes, findings=findings, height=height)
            if sealed_hash != tx.content_hash:
                findings.tx(tx.id, "its stored hash differs from the hash sealed in its block", height=height)
            chunk.append(sealed_hash)
            if len(chunk) == hashing.CHUNK_SIZE:
                chunk_roots.append(hashing.chunk_root(chunk))
                chunk = []
            expected_position, last_id = position + 1, tx.id
        if len(rows) < _VERIFY_CHUNK:
            break
    if chunk:
        chunk_roots.append(hashing.chunk_root(chunk))
    if expected_position != tx_count:
        findings.block(height, f"positions run to {expected_position}, header says {tx_count} transactions")
    return hashing.block_tree(chunk_roots)


def _verify_unsealed(ledger_store: LedgerStore, *, codes: dict[int, str], findings: _Findings) -> int:
    checked, after = 0, 0
    while txs := ledger_store.unsealed_transactions(after_id=after, limit=_VERIFY_CHUNK):
        postings = ledger_store.unsealed_postings(first_id=txs[0].id, last_id=txs[-1].id)
        for tx in txs:
            _verify_transaction(tx, postings.get(tx.id, []), codes=codes, findings=findings, height=None)
        checked += len(txs)
        after = txs[-1].id
    return checked


def _verify_transaction(
    tx: TxRecord,
    postings: list[PostingRecord],
    *,
    codes: dict[int, str],
    findings: _Findings,
    height: int | None,
) -> None:
    digest = hashing.transaction_digest(
        idempotency_key=tx.key,
        kind=tx.kind,
        description=tx.description,
        occurred_at=tx.occurred_at,
        created_at=tx.created_at,
        reverses_hash=tx.reverses_hash,
        postings=[(codes.get(account_id, f"?{account_id}"), amount, memo) for _l, account_id, amount, memo in postings],
    )
    if digest != tx.content_hash:
        findings.tx(tx.id, "its content does not match its stored hash", height=height)
    amounts = [Decimal(amount) for _l, _a, amount, _m in postings]
    if sum(amounts) != 0:
        findings.tx(tx.id, f"its postings sum to {sum(amounts)}, not zero", height=height)
    if len(postings) < 2 or [line for line, *_rest in postings] != list(range(len(postings))):
        findings.tx(tx.id, f"has {len(postings)} postings, not a complete set of lines", height=height)
    if not all(amounts):
        findings.tx(tx.id, "has a posting of zero", height=height)


def ledger_verification_run(*, full: bool = False) -> Verification:
    """Verify from the last verified block (or everything), record a checkpoint, alert on failure.

    After a failure the next run starts again from the last block that verified, so the
    alert repeats until someone repairs the ledger.
    """
    started_at = timezone.now()
    last_ok = None if full else ledger_last_verified()
    if last_ok is None:
        result = ledger_verify()
    else:
        result = ledger_verify(from_block=(last_ok.to_height or 0) + 1, anchor_hash=last_ok.head_hash)
    checkpoint = ledger_verification_record(result=result, started_at=started_at)
    if not result.ok:
        ledger_alert_operators(result=result)
    return checkpoint


def ledger_last_verified() -> Verification | None:
    """The latest checkpoint that verified up to a block, where the next incremental check starts."""
    return Verification.objects.filter(ok=True, to_height__isnull=False).order_by("-id").first()


def ledger_verification_record(*, result: VerificationResult, started_at: dt.datetime) -> Verification:
    """Append a checkpoint for ``result``."""
    checkpoint = Verification(
        started_at=started_at,
        finished_at=timezone.now(),
        full=result.from_height == 1,
        from_height=result.from_height,
        to_height=result.to_height,
        head_hash=result.head_hash,
        ok=result.ok,
        blocks_checked=result.blocks_checked,
        transactions_checked=result.transactions_checked + result.unsealed_checked,
        first_broken_transaction_id=result.first_broken_transaction_id,
        first_broken_block_height=result.first_broken_block_height,
        message="\n".join([result.summary(), *result.problems]),
    )
    checkpoint.save()
    return checkpoint


def ledger_alert_operators(*, result: VerificationResult) -> None:
    """Tell people: an ERROR log line and an email to settings.ADMINS and active staff."""
    logger.error("Ledger verification failed: %s", result.summary())
    # ADMINS holds (name, email) pairs, or plain addresses from Django 6 on.
    recipients = {entry if isinstance(entry, str) else entry[1] for entry in settings.ADMINS}
    recipients |= set(get_user_model().objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    recipients.discard("")
    if not recipients:
        return
    body = "\n".join(
        [result.summary(), "", *result.problems, "", "Run `python manage.py ledger_verify` to check again."]
    )

    def _send() -> None:
        send_mail(
            subject=f"[{settings.COOP_NAME}] Ledger verification FAILED",
            message=body,
            from_email=None,
            recipient_list=sorted(recipients),
            fail_silently=True,
        )

    db_transaction.on_commit(_send)
