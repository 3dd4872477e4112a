"""Booking: balanced transactions and their reversals, validated in full before anything is written.

Every booking goes through :func:`transactions_post_many` (``transaction_post`` is the
one-entry case), which validates everything before it writes, is idempotent by key and
writes one INSERT per table whatever the batch size. Nothing here updates or deletes a
row; the models and, on PostgreSQL, the database refuse it (migration 0002).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, NotFound, ValidationFailed
from apps.common.units import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, MONEY_PLACES
from apps.ledger import hashing
from apps.ledger.models import Account, Posting, Transaction
from apps.ledger.store import NewTransaction, store

KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
# The money column's shape (apps.common.units): this many digits before the point at most.
MAX_AMOUNT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)
MAX_DESCRIPTION = 500
MAX_MEMO = 64
_POST_ATTEMPTS = 3


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
            f"The amount {value} has more than {MONEY_DECIMAL_PLACES} decimal places;"
            " round it once with apps.common.units.money_round.",
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
    existing = store().transactions_by_key(list(unique))
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
        created = store().transactions_insert(
            [
                NewTransaction(d.key, d.kind, d.description, d.occurred_at, now, d.reverses_id, d.content_hash)
                for d in new
            ]
        )
        store().postings_insert(
            (tx.pk, line, account_id, amount, memo)
            for tx, d in zip(created, new, strict=True)
            for line, (account_id, amount, memo) in enumerate(d.lines)
        )
    by_key = existing | {tx.idempotency_key: tx for tx in created}
    return [by_key[d.key] for d in drafts]


def _account_codes(account_ids: set[int]) -> dict[int, str]:
    ids = sorted(account_ids)
    codes = store().account_codes(ids)
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
    if store().keys_taken([d.key for d in drafts]):
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
