"""Writes to the ledger: accounts, balanced transactions, reversals, sealing, verification.

Every booking goes through :func:`transactions_post_many` (``transaction_post`` is the
one-entry case), which validates everything before it writes, is idempotent by key and
writes one INSERT per table whatever the batch size. Nothing here updates or deletes a
row; the models and, on PostgreSQL, the database refuse it (migration 0002).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, connection
from django.db import transaction as db_transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, NotFound, ValidationFailed
from apps.common.units import MONEY_PLACES
from apps.ledger import hashing, store
from apps.ledger.choices import AccountKind, CoopAccount
from apps.ledger.models import Account, Block, Posting, Transaction, Verification
from apps.members.models import Member

logger = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
MAX_AMOUNT = Decimal(10) ** 16  # numeric(20, 4): 16 digits before the point
MAX_DESCRIPTION = 500
MAX_MEMO = 64
# Sealing takes the oldest pending transactions up to this many per block; the rest go
# into the next block. It bounds the memory of one seal, not how much is sealed.
BLOCK_MAX_TRANSACTIONS = 100_000
# One PostgreSQL advisory lock serialises sealers; writers never take it.
SEAL_LOCK_ID = int.from_bytes(hashlib.sha256(b"energycoop.ledger.seal").digest()[:8], "big", signed=True)
_POST_ATTEMPTS = 3
_VERIFY_CHUNK = 10_000
_MAX_PROBLEMS = 50


# --- Accounts -------------------------------------------------------------------------


def account_for_member(*, member: Member) -> Account:
    """The member's account, created on first use (safe when two callers race)."""
    if member.pk is None:
        raise ValidationFailed("The member is not saved.", fields={"member": ["Save the member first."]})
    account = Account.objects.filter(member_id=member.pk).first()
    if account is not None:
        return account
    return _account_get_or_create(
        code=f"member:{member.number}", kind=AccountKind.MEMBER, member=member, name=f"Member {member.number}"
    )


def accounts_for_members(*, members: Sequence[Member]) -> dict[int, Account]:
    """Every member's account by member id, creating the missing ones in one statement.

    For settlement, which books thousands of members at once; safe when two callers race
    (a conflicting insert is skipped and the winner's row is read back).
    """
    wanted = {m.pk: m for m in members}

    def read(member_ids: list[int]) -> dict[int, Account]:
        return {a.member_id: a for a in Account.objects.filter(member_id__in=member_ids) if a.member_id is not None}

    accounts = read(list(wanted))
    missing = [m for pk, m in wanted.items() if pk not in accounts]
    if missing:
        now = timezone.now()
        Account.objects.bulk_create(
            [
                Account(
                    code=f"member:{m.number}",
                    kind=AccountKind.MEMBER,
                    member=m,
                    name=f"Member {m.number}",
                    created_at=now,
                )
                for m in missing
            ],
            ignore_conflicts=True,
        )
        accounts.update(read([m.pk for m in missing]))
    return accounts


def coop_account(*, code: str) -> Account:
    """One of the coop's accounts (a :class:`CoopAccount` code), created on first use."""
    if code not in CoopAccount.values:
        raise ValidationFailed(
            f"Unknown coop account {code!r}.", fields={"code": [f"One of {', '.join(CoopAccount.values)}."]}
        )
    return _account_get_or_create(
        code=f"coop:{code}", kind=AccountKind.COOP, member=None, name=str(CoopAccount(code).label)
    )


def _account_get_or_create(*, code: str, kind: str, member: Member | None, name: str) -> Account:
    account = Account.objects.filter(code=code).first()
    if account is not None:
        return account
    try:
        with db_transaction.atomic():
            account = Account(code=code, kind=kind, member=member, name=name, created_at=timezone.now())
            account.save()
            return account
    except IntegrityError:
        # Another caller created it first: theirs is the one.
        return Account.objects.get(code=code)


# --- Posting ----------------------------------------------------------------------------


class PostingSpec(NamedTuple):
    """One line: ``amount`` is credited to ``account`` (negative: debited)."""

    account: Account
    amount: Decimal
    memo: str = ""


PostingInput = PostingSpec | tuple[Account, Decimal] | tuple[Account, Decimal, str]


@dataclasses.dataclass(frozen=True)
class TransactionSpec:
    """One booking for :func:`transactions_post_many`; the same fields as :func:`transaction_post`."""

    idempotency_key: str
    postings: Sequence[PostingInput]
    description: str
    kind: str
    occurred_at: dt.datetime
    reverses: Transaction | None = None


@dataclasses.dataclass
class _Draft:
    index: int
    key: str
    kind: str
    description: str
    occurred_at: dt.datetime
    reverses_id: int | None
    lines: list[tuple[int, Decimal, str]]  # (account id, amount, memo)
    content_hash: str = ""


def transaction_post(
    *,
    idempotency_key: str,
    postings: Sequence[PostingInput],
    description: str,
    kind: str,
    occurred_at: dt.datetime,
    reverses: Transaction | None = None,
) -> Transaction:
    """Book one balanced transaction, or return the one already booked under this key.

    Postings are ``(account, amount)`` or ``(account, amount, memo)``; amounts are
    ``Decimal`` with at most 4 decimals, never zero, and sum to zero. The same key with the
    same content returns the existing transaction; with other content it is a
    :class:`Conflict` (``idempotency_key_reused``). Nothing is written when anything is refused.
    """
    spec = TransactionSpec(
        idempotency_key=idempotency_key,
        postings=postings,
        description=description,
        kind=kind,
        occurred_at=occurred_at,
        reverses=reverses,
    )
    return transactions_post_many(entries=[spec])[0]


def transactions_post_many(*, entries: Sequence[TransactionSpec]) -> list[Transaction]:
    """Book many transactions at once (a settlement run): one INSERT per table, all or nothing.

    Returns the transactions in the order of ``entries``; entries whose key is already
    booked with the same content return the existing transaction (so a rerun after a crash
    books only what is missing), and a key booked with other content refuses the whole batch.
    """
    drafts = [_draft(spec, index=i, many=len(entries) > 1) for i, spec in enumerate(entries)]
    if not drafts:
        return []
    for attempt in range(_POST_ATTEMPTS):
        try:
            with db_transaction.atomic():
                return _post_drafts(drafts)
        except IntegrityError:
            # A concurrent caller booked one of these keys (or reversed one of these
            # transactions) first; its row is committed now, so the next attempt returns
            # or refuses it. Anything else is a bug and is raised as it is.
            if attempt == _POST_ATTEMPTS - 1 or not _lost_a_race(drafts):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _refuse(message: str, *, where: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={where: [message]})


def _draft(spec: TransactionSpec, *, index: int, many: bool) -> _Draft:
    prefix = f"entries[{index}]." if many else ""
    key = spec.idempotency_key
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise _refuse(
            "An idempotency key is 1 to 200 printable ASCII characters without spaces.",
            where=f"{prefix}idempotency_key",
        )
    if not isinstance(spec.kind, str) or not KIND_RE.match(spec.kind):
        raise _refuse(
            "A kind is a lowercase word of up to 32 characters (letters, digits, _ . -), e.g. settlement.",
            where=f"{prefix}kind",
        )
    if not isinstance(spec.description, str) or len(spec.description) > MAX_DESCRIPTION:
        raise _refuse(f"A description is text of at most {MAX_DESCRIPTION} characters.", where=f"{prefix}description")
    occurred_at = spec.occurred_at
    if not isinstance(occurred_at, dt.datetime) or occurred_at.tzinfo is None:
        raise _refuse("occurred_at must be an aware datetime (UTC).", where=f"{prefix}occurred_at")
    reverses_id = None
    if spec.reverses is not None:
        if not isinstance(spec.reverses, Transaction) or spec.reverses.pk is None:
            raise _refuse("reverses must be a booked ledger transaction.", where=f"{prefix}reverses")
        reverses_id = spec.reverses.pk
    postings = spec.postings
    if isinstance(postings, str | bytes) or not isinstance(postings, Sequence) or len(postings) < 2:
        raise _refuse("A transaction has at least two postings.", where=f"{prefix}postings")
    lines: list[tuple[int, Decimal, str]] = []
    total = Decimal(0)
    for line, posting in enumerate(postings):
        where = f"{prefix}postings[{line}]"
        account, amount, memo = _posting_parts(posting, where=where)
        lines.append((account.pk, amount, memo))
        total += amount
    if total != 0:
        raise ValidationFailed(
            f"The postings of {key!r} sum to {total}, not zero; every transaction balances.",
            code="unbalanced",
            fields={f"{prefix}postings": [f"The amounts sum to {total}; they must sum to 0."]},
        )
    return _Draft(
        index=index,
        key=key,
        kind=spec.kind,
        description=spec.description,
        occurred_at=occurred_at.astimezone(dt.UTC),
        reverses_id=reverses_id,
        lines=lines,
    )


def _posting_parts(posting: Any, *, where: str) -> tuple[Account, Decimal, str]:
    if not isinstance(posting, tuple) or len(posting) not in (2, 3):
        raise _refuse("A posting is (account, amount) or (account, amount, memo).", where=where)
    account, amount = posting[0], posting[1]
    memo = posting[2] if len(posting) == 3 else ""
    if not isinstance(account, Account) or account.pk is None:
        raise _refuse("A posting's account is a saved ledger Account.", where=where)
    if not isinstance(memo, str) or len(memo) > MAX_MEMO:
        raise _refuse(f"A memo is text of at most {MAX_MEMO} characters.", where=where)
    return account, _amount(amount, where=where), memo


def _amount(value: Any, *, where: str) -> Decimal:
    if isinstance(value, float):
        raise _refuse(
            f"The amount {value!r} is a float; money is Decimal (e.g. Decimal('1.2345')), never float.",
            where=where,
            code="float_amount",
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise _refuse(f"The amount must be a Decimal, not {type(value).__name__}.", where=where)
    amount = Decimal(value)
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise _refuse(f"The amount {value} is out of range.", where=where)
    try:
        exact = amount.quantize(MONEY_PLACES) == amount
    except InvalidOperation:
        exact = False
    if not exact:
        raise _refuse(
            f"The amount {value} has more than 4 decimal places; round it once with apps.common.units.money_round.",
            where=where,
            code="too_many_decimals",
        )
    if amount == 0:
        raise _refuse("A posting of zero moves nothing; leave it out.", where=where, code="zero_amount")
    return amount.quantize(MONEY_PLACES)


def _post_drafts(drafts: list[_Draft]) -> list[Transaction]:
    codes = _account_codes({account_id for d in drafts for account_id, _a, _m in d.lines})
    reversed_hashes = _reversed_hashes({d.reverses_id for d in drafts if d.reverses_id is not None})

    def content_hash(draft: _Draft, created_at: dt.datetime) -> str:
        return hashing.transaction_digest(
            idempotency_key=draft.key,
            kind=draft.kind,
            description=draft.description,
            occurred_at=hashing.instant_canonical(draft.occurred_at),
            created_at=hashing.instant_canonical(created_at),
            reverses_hash=reversed_hashes[draft.reverses_id] if draft.reverses_id is not None else None,
            postings=[(codes[a], hashing.amount_canonical(amount), memo) for a, amount, memo in draft.lines],
        )

    now = timezone.now()
    for draft in drafts:
        draft.content_hash = content_hash(draft, now)
    unique: dict[str, _Draft] = {}
    for draft in drafts:
        seen = unique.setdefault(draft.key, draft)
        if seen.content_hash != draft.content_hash:
            raise ValidationFailed(
                f"The batch books {draft.key!r} twice with different content.",
                code="duplicate_key",
                fields={f"entries[{draft.index}].idempotency_key": ["Used twice in this batch."]},
            )
    existing = store.transactions_by_key(list(unique))
    for key, tx in existing.items():
        # The same request hashes the same when written at the same time as the stored one.
        if tx.content_hash != content_hash(unique[key], tx.created_at):
            raise Conflict(
                f"The idempotency key {key!r} was already used for transaction {tx.pk} with other content.",
                code="idempotency_key_reused",
                fields={"idempotency_key": ["Already used with other content."]},
            )
    new = [d for d in unique.values() if d.key not in existing]
    _check_reversals(new)
    created: list[Transaction] = []
    if new:
        created = store.transactions_insert(
            [
                store.NewTransaction(d.key, d.kind, d.description, d.occurred_at, now, d.reverses_id, d.content_hash)
                for d in new
            ]
        )
        store.postings_insert(
            (tx.pk, line, account_id, amount, memo)
            for tx, d in zip(created, new, strict=True)
            for line, (account_id, amount, memo) in enumerate(d.lines)
        )
    by_key = existing | {tx.idempotency_key: tx for tx in created}
    return [by_key[d.key] for d in drafts]


def _account_codes(account_ids: set[int]) -> dict[int, str]:
    ids = sorted(account_ids)
    codes = store.account_codes(ids)
    missing = [i for i in ids if i not in codes]
    if missing:
        raise ValidationFailed(f"No ledger account with id {missing[0]}.", fields={"postings": ["Unknown account."]})
    return codes


def _reversed_hashes(tx_ids: set[int]) -> dict[int, str]:
    if not tx_ids:
        return {}
    found = list(Transaction.objects.filter(pk__in=tx_ids).only("id", "content_hash", "reverses_id"))
    by_id = {tx.pk: tx for tx in found}
    for tx_id in sorted(tx_ids):
        target = by_id.get(tx_id)
        if target is None:
            raise NotFound(f"No ledger transaction {tx_id} to reverse.")
        if target.reverses_id is not None:
            raise Conflict(
                f"Transaction {tx_id} is itself a reversal; book a new transaction instead of reversing it.",
                code="cannot_reverse_reversal",
            )
    return {tx_id: tx.content_hash for tx_id, tx in by_id.items()}


def _check_reversals(new: list[_Draft]) -> None:
    targets: dict[int, str] = {}
    for draft in new:
        if draft.reverses_id is None:
            continue
        if draft.reverses_id in targets:
            raise ValidationFailed(
                f"The batch reverses transaction {draft.reverses_id} twice.",
                code="duplicate_reversal",
                fields={f"entries[{draft.index}].reverses": ["Reversed twice in this batch."]},
            )
        targets[draft.reverses_id] = draft.key
    if targets:
        taken = Transaction.objects.filter(reverses_id__in=list(targets)).values_list("reverses_id", "pk").first()
        if taken is not None:
            raise Conflict(
                f"Transaction {taken[0]} was already reversed by transaction {taken[1]}.", code="already_reversed"
            )


def _lost_a_race(drafts: list[_Draft]) -> bool:
    if store.keys_taken([d.key for d in drafts]):
        return True
    targets = [d.reverses_id for d in drafts if d.reverses_id is not None]
    return bool(targets) and Transaction.objects.filter(reverses_id__in=targets).exists()


def transaction_reverse(
    *,
    transaction: Transaction,
    idempotency_key: str,
    description: str | None = None,
    occurred_at: dt.datetime | None = None,
    kind: str = "reversal",
) -> Transaction:
    """Book the exact negation of ``transaction`` (same accounts and memos, amounts negated).

    A transaction is reversed at most once and a reversal is never reversed (the database
    holds one reversal per transaction). ``occurred_at`` defaults to the original's, so that
    a replay with the same key is the same content; ``created_at`` records when it was booked.
    """
    if not isinstance(transaction, Transaction) or transaction.pk is None:
        raise ValidationFailed("Reverse a booked ledger transaction.", fields={"transaction": ["Not booked."]})
    original = Transaction.objects.filter(pk=transaction.pk).first()
    if original is None:
        raise NotFound(f"No ledger transaction {transaction.pk}.")
    postings = [
        PostingSpec(account=p.account, amount=-p.amount, memo=p.memo)
        for p in Posting.objects.filter(transaction=original).select_related("account").order_by("line")
    ]
    return transaction_post(
        idempotency_key=idempotency_key,
        postings=postings,
        description=description if description is not None else f"Reversal of {original.idempotency_key}",
        kind=kind,
        occurred_at=occurred_at or original.occurred_at,
        reverses=original,
    )


# --- Sealing ------------------------------------------------------------------------------


def ledger_seal(*, max_transactions: int = BLOCK_MAX_TRANSACTIONS) -> Block | None:
    """Append one block over the transactions not sealed yet (oldest first), or None if there are none.

    Two sealers at once take turns on one advisory lock (PostgreSQL; SQLite serialises
    writers anyway), so the chain never forks; posting never takes that lock.
    """
    with db_transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])
        head = Block.objects.order_by("-height").only("height", "block_hash", "pending_from_xid").first()
        pending, pending_from_xid = store.pending_for_seal(
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
        store.block_entries_insert(block_id=block.pk, entries=pending)
    return block


def ledger_seal_all() -> list[Block]:
    """Seal until nothing is pending (several blocks when more than a block's worth waits)."""
    blocks = []
    while (block := ledger_seal()) is not None:
        blocks.append(block)
    return blocks


# --- Verification ----------------------------------------------------------------------------


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
    with _snapshot():
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
        entry_counts = _entry_counts(min_block_id=min((b[0] for b in blocks), default=None))
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
                block_id=block_id, height=height, tx_count=tx_count, codes=codes, findings=findings
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
        unsealed = _verify_unsealed(codes=codes, findings=findings)
        total = store.postings_total()
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


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent read: on PostgreSQL a REPEATABLE READ, READ ONLY transaction of its own."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with db_transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    else:
        with db_transaction.atomic():
            yield


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


def _entry_counts(*, min_block_id: int | None) -> dict[int, int]:
    if min_block_id is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT block_id, COUNT(*) FROM ledger_blockentry WHERE block_id >= %s GROUP BY block_id", [min_block_id]
        )
        return dict(cursor.fetchall())


def _verify_block_transactions(
    *, block_id: int, height: int, tx_count: int, codes: dict[int, str], findings: _Findings
) -> tuple[str, bytes]:
    """Check the block's transactions in position order; return the recomputed (root, upper nodes)."""
    chunk_roots: list[bytes] = []
    chunk: list[str] = []
    expected_position, last_id = 0, 0
    while True:
        rows = store.block_transactions(block_id=block_id, from_position=expected_position, limit=_VERIFY_CHUNK)
        if not rows:
            break
        postings = store.block_postings(block_id=block_id, from_position=rows[0][0], to_position=rows[-1][0])
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


def _verify_unsealed(*, codes: dict[int, str], findings: _Findings) -> int:
    checked, after = 0, 0
    while txs := store.unsealed_transactions(after_id=after, limit=_VERIFY_CHUNK):
        postings = store.unsealed_postings(first_id=txs[0].id, last_id=txs[-1].id)
        for tx in txs:
            _verify_transaction(tx, postings.get(tx.id, []), codes=codes, findings=findings, height=None)
        checked += len(txs)
        after = txs[-1].id
    return checked


def _verify_transaction(
    tx: store.TxRecord,
    postings: list[store.PostingRecord],
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
