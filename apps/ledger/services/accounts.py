"""Ledger accounts: one per member and the coop's own, each created on first use (race-safe)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone

from apps.common.exceptions import ValidationFailed
from apps.ledger.choices import AccountKind, CoopAccount
from apps.ledger.models import Account
from apps.members.models import Member


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
