"""A self sign-up becomes an applicant membership, waiting for an operator's approval."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import user_signed_up

from apps.members.services import member_for_new_signup


def _on_user_signed_up(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    member_for_new_signup(user=user)


def connect() -> None:
    user_signed_up.connect(_on_user_signed_up, dispatch_uid="members-signup-applicant")
