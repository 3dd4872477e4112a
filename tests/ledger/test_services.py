"""Posting, idempotency, reversal and refusals through the services; balances from postings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.common.exceptions import Conflict, NotFound, ValidationFailed
from apps.ledger import hashing
from apps.ledger.choices import CoopAccount
from apps.ledger.exceptions import LedgerAppendOnly
from apps.ledger.models import Account, Posting, Transaction
from apps.ledger.selectors import account_balance, account_balances, member_balance
from apps.ledger.services import (
    TransactionSpec,
    account_for_member,
    coop_account,
    transaction_post,
    transaction_reverse,
    transactions_post_many,
)
from tests.factories import member_make
from tests.ledger.conftest import OCCURRED_AT, book

pytestmark = pytest.mark.django_db


def _spec(key: str, *postings, kind: str = "settlement", reverses=None) -> TransactionSpec:
    return TransactionSpec(
        idempotency_key=key,
        postings=list(postings),
        description=f"booking {key}",
        kind=kind,
        occurred_at=OCCURRED_AT,
        reverses=reverses,
    )


def test_a_balanced_transaction_is_booked_with_its_hash_and_moves_balances(member, member_account):
    grid = coop_account(code=CoopAccount.GRID_PURCHASES)
    fees = coop_account(code=CoopAccount.NETWORK_FEES)
    tx = transaction_post(
        idempotency_key="settlement:2026-11-20T09:00:00Z:100001:r1",
        postings=[
            (member_account, Decimal("-3.2100"), "grid_cost"),
            (grid, Decimal("3.0000")),
            (fees, Decimal("0.21")),
        ],
        description="Interval 09:00",
        kind="settlement",
        occurred_at=OCCURRED_AT,
    )
    postings = list(tx.postings.order_by("line"))
    assert [(p.account_id, p.amount, p.memo) for p in postings] == [
        (member_account.pk, Decimal("-3.2100"), "grid_cost"),
        (grid.pk, Decimal("3.0000"), ""),
        (fees.pk, Decimal("0.2100"), ""),
    ]
    expected = hashing.transaction_hash(
        hashing.transaction_content(
            idempotency_key=tx.idempotency_key,
            kind="settlement",
            description="Interval 09:00",
            occurred_at="2026-11-20T09:00:00.000000Z",
            created_at=hashing.instant_canonical(Transaction.objects.get(pk=tx.pk).created_at),
            reverses_hash=None,
            postings=[
                (member_account.code, "-3.2100", "grid_cost"),
                ("coop:grid_purchases", "3.0000", ""),
                ("coop:network_fees", "0.2100", ""),
            ],
        )
    )
    assert tx.content_hash == expected
    # Member balance is positive when the coop owes the member: here the member owes 3.21.
    assert member_balance(member=member) == Decimal("-3.2100")
    assert account_balance(account=grid) == Decimal("3.0000")
    assert account_balances(accounts=[member_account, grid, fees]) == {
        member_account.pk: Decimal("-3.2100"),
        grid.pk: Decimal("3.0000"),
        fees.pk: Decimal("0.2100"),
    }
    assert member_balance(member=member_make()) == Decimal("0.0000")


def test_accounts_are_get_or_create(member):
    first = account_for_member(member=member)
    assert account_for_member(member=member) == first
    assert first.code == f"member:{member.number}" and first.kind == "member"
    assert coop_account(code="rounding") == coop_account(code=CoopAccount.ROUNDING)
    assert {a.code for a in Account.objects.filter(kind="coop")} == {"coop:rounding"}
    with pytest.raises(ValidationFailed, match="Unknown coop account"):
        coop_account(code="petty_cash")


@pytest.mark.parametrize(
    ("postings", "code", "message"),
    [
        (lambda m, c: [(m, 1.5), (c, -1.5)], "float_amount", "float"),
        (lambda m, c: [(m, Decimal("1.23456")), (c, Decimal("-1.23456"))], "too_many_decimals", "4 decimal"),
        (lambda m, c: [(m, Decimal("1.0000")), (c, Decimal("-0.9999"))], "unbalanced", "sum to 0.0001"),
        (lambda m, c: [(m, Decimal("1")), (c, Decimal("-1")), (c, Decimal("0"))], "zero_amount", "zero"),
        (lambda m, c: [(m, Decimal("0"))], "invalid", "at least two"),
        (lambda m, c: [(m, "1.00"), (c, "-1.00")], "invalid", "Decimal, not str"),
        (lambda m, c: [(m, Decimal("NaN")), (c, Decimal("1"))], "invalid", "out of range"),
        (lambda m, c: [(m, Decimal("1E+16")), (c, Decimal("-1E+16"))], "invalid", "out of range"),
        (lambda m, c: [(m.pk, Decimal("1")), (c, Decimal("-1"))], "invalid", "saved ledger Account"),
        (lambda m, c: [(m, Decimal("1"), "x" * 65), (c, Decimal("-1"))], "invalid", "memo"),
    ],
)
def test_refused_postings_write_nothing(member_account, postings, code, message):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    with pytest.raises(ValidationFailed, match=message) as excinfo:
        transaction_post(
            idempotency_key="k-1",
            postings=postings(member_account, clearing),
            description="",
            kind="settlement",
            occurred_at=OCCURRED_AT,
        )
    assert excinfo.value.code == code
    assert excinfo.value.fields
    assert not Transaction.objects.exists() and not Posting.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idempotency_key", ""),
        ("idempotency_key", "has space"),
        ("idempotency_key", "x" * 201),
        ("kind", "Settlement"),
        ("kind", ""),
        ("description", "d" * 501),
        ("occurred_at", dt.datetime(2026, 11, 20, 9, 0)),  # naive
        ("occurred_at", "2026-11-20T09:00:00Z"),
    ],
)
def test_refused_fields_name_the_field(member_account, field, value):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    kwargs = {
        "idempotency_key": "k-1",
        "postings": [(member_account, Decimal("1")), (clearing, Decimal("-1"))],
        "description": "",
        "kind": "settlement",
        "occurred_at": OCCURRED_AT,
        field: value,
    }
    with pytest.raises(ValidationFailed) as excinfo:
        transaction_post(**kwargs)
    assert field in excinfo.value.fields
    assert not Transaction.objects.exists()


def test_same_key_same_content_returns_the_existing_transaction(member_account):
    first = book(member_account, "2.5000", key="settlement:i1:m1:r1")
    again = book(member_account, "2.5", key="settlement:i1:m1:r1")
    assert again.pk == first.pk
    assert Transaction.objects.count() == 1 and Posting.objects.count() == 2


def test_same_key_other_content_is_a_conflict(member_account):
    book(member_account, "2.5000", key="settlement:i1:m1:r1")
    with pytest.raises(Conflict) as excinfo:
        book(member_account, "2.5001", key="settlement:i1:m1:r1")
    assert excinfo.value.code == "idempotency_key_reused"
    assert Transaction.objects.count() == 1


def test_bulk_books_many_in_one_statement_per_table(member_account, other_account, django_assert_max_num_queries):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    fees = coop_account(code=CoopAccount.COOP_FEES)
    specs = [
        _spec(
            f"settlement:i{i}:r1",
            (member_account if i % 2 else other_account, Decimal(i) / 100),
            (clearing, -Decimal(i) / 100 - Decimal("0.0010")),
            (fees, Decimal("0.0010")),
        )
        for i in range(1, 201)
    ]
    # codes, reversed hashes (none), existing keys, 2 inserts, savepoint handling
    with django_assert_max_num_queries(8):
        txs = transactions_post_many(entries=specs)
    assert [t.idempotency_key for t in txs] == [s.idempotency_key for s in specs]
    assert Transaction.objects.count() == 200 and Posting.objects.count() == 600
    assert sum(account_balances(accounts=[member_account, other_account, clearing, fees]).values()) == 0


def test_bulk_rerun_returns_existing_and_books_only_what_is_missing(member_account):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    specs = [_spec(f"run:{i}", (member_account, Decimal("1")), (clearing, Decimal("-1"))) for i in range(5)]
    first = transactions_post_many(entries=specs[:3])
    second = transactions_post_many(entries=specs)
    assert [t.pk for t in second[:3]] == [t.pk for t in first]
    assert Transaction.objects.count() == 5


def test_bulk_with_one_bad_entry_writes_nothing(member_account):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    specs = [_spec(f"run:{i}", (member_account, Decimal("1")), (clearing, Decimal("-1"))) for i in range(5)]
    specs.append(_spec("run:bad", (member_account, Decimal("1")), (clearing, Decimal("-2"))))
    with pytest.raises(ValidationFailed) as excinfo:
        transactions_post_many(entries=specs)
    assert "entries[5].postings" in excinfo.value.fields
    book(member_account, "1", key="run:0")
    conflicting = [_spec("run:0", (member_account, Decimal("5")), (clearing, Decimal("-5"))), *specs[1:5]]
    with pytest.raises(Conflict):
        transactions_post_many(entries=conflicting)
    assert list(Transaction.objects.values_list("idempotency_key", flat=True)) == ["run:0"]


def test_bulk_refuses_one_key_twice_with_different_content(member_account):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    one = _spec("dup", (member_account, Decimal("1")), (clearing, Decimal("-1")))
    other = _spec("dup", (member_account, Decimal("2")), (clearing, Decimal("-2")))
    assert len({t.pk for t in transactions_post_many(entries=[one, one])}) == 1
    with pytest.raises(ValidationFailed, match="twice"):
        transactions_post_many(entries=[_spec("dup2", *one.postings), _spec("dup2", *other.postings)])


def test_reversal_books_the_negation_once(member, member_account):
    original = book(member_account, "4.2000", key="settlement:i1:m1:r1")
    reversal = transaction_reverse(transaction=original, idempotency_key="settlement:i1:m1:r1:reversal")
    assert reversal.reverses_id == original.pk and reversal.kind == "reversal"
    assert reversal.occurred_at == original.occurred_at
    assert [(p.account_id, p.amount, p.memo) for p in reversal.postings.order_by("line")] == [
        (p.account_id, -p.amount, p.memo) for p in original.postings.order_by("line")
    ]
    assert member_balance(member=member) == Decimal("0.0000")
    # The reversal's hash binds the original's hash.
    content = hashing.transaction_content(
        idempotency_key=reversal.idempotency_key,
        kind="reversal",
        description="Reversal of settlement:i1:m1:r1",
        occurred_at=hashing.instant_canonical(original.occurred_at),
        created_at=hashing.instant_canonical(reversal.created_at),
        reverses_hash=original.content_hash,
        postings=[
            (member_account.code, "-4.2000", "p2p_revenue"),
            ("coop:p2p_clearing", "4.2000", ""),
        ],
    )
    assert reversal.content_hash == hashing.transaction_hash(content)
    # The correction: a new transaction under the next revision's key.
    book(member_account, "4.1000", key="settlement:i1:m1:r2")
    assert member_balance(member=member) == Decimal("4.1000")
    # Replaying the reversal returns it; a second reversal under another key is refused.
    assert transaction_reverse(transaction=original, idempotency_key="settlement:i1:m1:r1:reversal") == reversal
    with pytest.raises(Conflict) as excinfo:
        transaction_reverse(transaction=original, idempotency_key="another-key")
    assert excinfo.value.code == "already_reversed"
    with pytest.raises(Conflict) as excinfo:
        transaction_reverse(transaction=reversal, idempotency_key="reverse-the-reversal")
    assert excinfo.value.code == "cannot_reverse_reversal"
    assert Transaction.objects.count() == 3


def test_reversing_an_unknown_transaction_is_not_found(member_account):
    ghost = Transaction(pk=999_999)
    with pytest.raises(NotFound):
        transaction_reverse(transaction=ghost, idempotency_key="x")


def test_the_orm_refuses_to_change_or_remove_ledger_rows(member_account):
    tx = book(member_account)
    posting = tx.postings.first()
    tx.description = "changed"
    with pytest.raises(LedgerAppendOnly):
        tx.save()
    with pytest.raises(LedgerAppendOnly):
        posting.delete()
    with pytest.raises(LedgerAppendOnly):
        Posting.objects.filter(pk=posting.pk).update(amount=Decimal("9"))
    with pytest.raises(LedgerAppendOnly):
        Transaction.objects.all().delete()
    with pytest.raises(LedgerAppendOnly):
        Posting.objects.bulk_update([posting], ["amount"])
    with pytest.raises(LedgerAppendOnly):
        Account.objects.update_or_create(code=member_account.code, defaults={"name": "x"})
    tx.refresh_from_db()
    assert tx.description == "test booking"


def test_transactions_are_found_by_key_and_id(member_account):
    from apps.ledger.selectors import transaction_find, transaction_get

    tx = book(member_account, key="settlement:find:r1")
    assert transaction_find(idempotency_key="settlement:find:r1") == tx
    assert transaction_find(idempotency_key="nothing") is None
    assert transaction_get(pk=tx.pk) == tx
    with pytest.raises(NotFound):
        transaction_get(pk=tx.pk + 1000)


def test_accounts_for_many_members_at_once(member, django_assert_max_num_queries):
    from apps.ledger.services import accounts_for_members

    existing = account_for_member(member=member)
    others = [member_make() for _ in range(3)]
    with django_assert_max_num_queries(3):
        accounts = accounts_for_members(members=[member, *others])
    assert accounts[member.pk] == existing
    assert {accounts[m.pk].code for m in others} == {f"member:{m.number}" for m in others}
    assert accounts_for_members(members=others) == {m.pk: accounts[m.pk] for m in others}
    assert Account.objects.filter(kind="member").count() == 4
