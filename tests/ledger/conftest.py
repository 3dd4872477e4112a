"""Ledger test helpers: accounts and small balanced bookings built through the services."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from apps.ledger.choices import CoopAccount
from apps.ledger.models import Account, Transaction
from apps.ledger.services import account_for_member, coop_account, transaction_post
from tests.factories import member_make

OCCURRED_AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
_keys = itertools.count(1)


def book(
    member_account: Account,
    amount: str = "1.2345",
    *,
    counter: Account | None = None,
    key: str | None = None,
    kind: str = "settlement",
) -> Transaction:
    """A two-line booking: ``amount`` to the member, the opposite to ``counter`` (P2P clearing)."""
    value = Decimal(amount)
    return transaction_post(
        idempotency_key=key or f"test:{next(_keys)}",
        postings=[
            (member_account, value, "p2p_revenue"),
            (counter or coop_account(code=CoopAccount.P2P_CLEARING), -value),
        ],
        description="test booking",
        kind=kind,
        occurred_at=OCCURRED_AT,
    )


@pytest.fixture
def member_account(member) -> Account:
    return account_for_member(member=member)


@pytest.fixture
def other_account(db) -> Account:
    return account_for_member(member=member_make())
