"""Row locks on memberships and tokens (built on ``apps.common.locks``).

The member row is the first lock any write of the member's takes (orders, status changes):
see the order in ``docs/architecture.md``.
"""

from __future__ import annotations

from apps.common.locks import one_for_update
from apps.members.models import ApiToken, Member, User


def member_lock(*, member_id: int) -> Member:
    """The member row, FOR UPDATE OF the member table only (raises Member.DoesNotExist)."""
    locked = one_for_update(Member.objects.all(), pk=member_id)
    if locked is None:
        raise Member.DoesNotExist(f"No member {member_id}.")
    return locked


def api_token_lock(*, token_id: int, user: User) -> ApiToken | None:
    """One of the user's tokens, FOR UPDATE OF the token table only; None if not theirs."""
    return one_for_update(ApiToken.objects.all(), pk=token_id, user=user)
