"""Writes for accounts and memberships: every adapter (pages, admin, API, commands) calls these."""

from __future__ import annotations

import datetime as dt

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Max
from django.db.models.functions import Cast
from django.utils import timezone

from apps.common.exceptions import Conflict, NotFound, ValidationFailed
from apps.common.keys import key_hash, key_new
from apps.members.choices import STATUS_TRANSITIONS, MemberStatus, Role
from apps.members.locks import api_token_lock, member_lock
from apps.members.models import ApiToken, Member, MemberStatusChange, User
from apps.members.signals import api_token_revoked, membership_deactivated

FIRST_MEMBER_NUMBER = 100001
API_TOKEN_PREFIX = "ecp"  # noqa: S105 - a label, not a secret
# Touch last_used_at at most this often, so that reading with a token is not a write each time.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)

# What each staff-like role may do in the admin. Operators get a limited admin: members,
# meters, assets and the grid, never users' credentials or the ledger's rows.
ROLE_GROUP_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    Role.OPERATOR: {
        "members.member": ("view", "change"),
        "members.memberstatuschange": ("view",),
        "meters.meter": ("view", "add", "change"),
        "assets.derasset": ("view", "add", "change", "delete"),
        "grid.substation": ("view", "add", "change"),
        "grid.transformer": ("view", "add", "change"),
        "grid.feeder": ("view", "add", "change"),
        "grid.connectionpoint": ("view", "add", "change"),
        "common.heartbeat": ("view",),
        # The market: operators set tariffs and publish dynamic prices, and read the rest.
        "market.tariffschedule": ("view", "add", "change"),
        "market.dynamicprice": ("view", "add", "change"),
        "market.interval": ("view",),
        "market.order": ("view",),
        "market.orderevent": ("view",),
        "market.clearingresult": ("view",),
        "market.trade": ("view",),
        "market.tradingpreference": ("view",),
        # Settlement and the ledger: read-only, for audits.
        "settlement.ruleset": ("view",),
        "settlement.settledinterval": ("view",),
        "settlement.membersettlement": ("view",),
        "ledger.account": ("view",),
        "ledger.transaction": ("view",),
        "ledger.posting": ("view",),
        "ledger.block": ("view",),
        "ledger.verification": ("view",),
    },
    Role.BILLING: {},
}


def roles_groups_sync() -> None:
    """Create or refresh the permission groups of the operator and billing roles."""
    for role, grants in ROLE_GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        wanted: list[Permission] = []
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            codenames = [f"{action}_{model}" for action in actions]
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
        group.permissions.set(wanted)


def _role_apply(*, user: User, role: str) -> None:
    user.is_staff = role in {Role.OPERATOR, Role.ADMIN}
    user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    groups = list(Group.objects.filter(name=role)) if role in ROLE_GROUP_PERMISSIONS else []
    user.groups.set(groups)


def _member_number_next() -> str:
    top = Member.objects.aggregate(top=Max(Cast("number", BigIntegerField())))["top"]
    return str(max(FIRST_MEMBER_NUMBER - 1, top or 0) + 1)


def member_create(
    *,
    email: str,
    password: str | None = None,
    name: str = "",
    role: str = Role.MEMBER,
    status: str = MemberStatus.APPLICANT,
    shares: int = 1,
    email_verified: bool = False,
    by: User | None = None,
) -> Member:
    """A new account with its membership. Refuses an email that already has an account."""
    email = User.objects.normalize_email(email.strip()).lower()
    if not email or "@" not in email:
        raise ValidationFailed("A valid email address is required.", fields={"email": ["Enter a valid email."]})
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": [f"Choose one of {Role.values}."]})
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(f"An account with the email {email} already exists.", code="email_exists")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=email, password=password)
                if password is None:
                    user.set_unusable_password()
                    user.save(update_fields=["password"])
                EmailAddress.objects.create(user=user, email=email, primary=True, verified=email_verified)
                member = Member.objects.create(
                    user=user, number=_member_number_next(), name=name, role=role, status=status, shares=shares
                )
                if status == MemberStatus.ACTIVE:
                    member.joined_at = timezone.now()
                    member.save(update_fields=["joined_at"])
                MemberStatusChange.objects.create(member=member, to_status=status, changed_by=by, reason="created")
                _role_apply(user=user, role=role)
                return member
        except IntegrityError:
            if User.objects.filter(email__iexact=email).exists():
                raise Conflict(f"An account with the email {email} already exists.", code="email_exists") from None
            # Two creations picked the same number at once: take the next one.
            continue
    raise Conflict("Could not allocate a membership number; try again.", code="number_allocation")


def member_for_new_signup(*, user: User) -> Member:
    """The membership of a self sign-up: an applicant until an operator approves it."""
    existing = Member.objects.filter(user=user).first()
    if existing is not None:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                member = Member.objects.create(user=user, number=_member_number_next(), status=MemberStatus.APPLICANT)
                MemberStatusChange.objects.create(member=member, to_status=MemberStatus.APPLICANT, reason="signed up")
                return member
        except IntegrityError:
            continue
    raise Conflict("Could not allocate a membership number; try again.", code="number_allocation")


def member_set_status(*, member: Member, to_status: str, by: User | None = None, reason: str = "") -> Member:
    """Move a membership along an allowed transition and record it."""
    with transaction.atomic():
        locked = member_lock(member_id=member.pk)
        if to_status not in STATUS_TRANSITIONS[locked.status]:
            raise Conflict(
                f"A membership cannot go from {locked.status} to {to_status}.", code="invalid_status_transition"
            )
        from_status = locked.status
        locked.status = to_status
        fields = ["status", "updated_at"]
        if to_status == MemberStatus.ACTIVE and locked.joined_at is None:
            locked.joined_at = timezone.now()
            fields.append("joined_at")
        locked.save(update_fields=fields)
        MemberStatusChange.objects.create(
            member=locked, from_status=from_status, to_status=to_status, changed_by=by, reason=reason
        )
        if to_status == MemberStatus.LEFT:
            User.objects.filter(pk=locked.user_id).update(is_active=False)
            ApiToken.objects.filter(user_id=locked.user_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if from_status == MemberStatus.ACTIVE and to_status != MemberStatus.ACTIVE:
            # Live sockets belong to active members only: realtime closes theirs once this commits.
            membership_deactivated.send(sender=Member, member_id=locked.pk)
    return locked


def member_approve(*, member: Member, by: User | None = None) -> Member:
    """An operator accepts an applicant: the membership becomes active."""
    return member_set_status(member=member, to_status=MemberStatus.ACTIVE, by=by, reason="approved")


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal access token. The key is returned once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name.", fields={"name": ["This field is required."]})
    if len(name) > 100:
        raise ValidationFailed("The name is too long.", fields={"name": ["At most 100 characters."]})
    key = key_new(API_TOKEN_PREFIX)
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:10], key_hash=key_hash(key))
    return token, key


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; someone else's token is 'not found'."""
    with transaction.atomic():
        token = api_token_lock(token_id=token_id, user=user)
        if token is None:
            raise NotFound("No such token.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            api_token_revoked.send(sender=ApiToken, token_id=token.pk)  # realtime closes its sockets after commit
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The live token for ``key`` (not revoked, user active), or None."""
    token = ApiToken.objects.select_related("user", "user__member").filter(key_hash=key_hash(key)).first()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
