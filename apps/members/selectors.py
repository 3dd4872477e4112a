"""Reads of memberships and tokens."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.members.models import ApiToken, Member, User


def member_for_user(*, user: User) -> Member | None:
    if not user.is_authenticated:
        return None
    return Member.objects.filter(user=user).first()


def api_tokens_for_user(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")
