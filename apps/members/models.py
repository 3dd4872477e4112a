"""Accounts, memberships and personal access tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models

from apps.common.models import TimeStampedModel
from apps.members.choices import MemberStatus, Role
from apps.members.managers import UserManager


class User(AbstractUser):
    """A login. Email is the identity (django-allauth verifies it); there is no username."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class Member(TimeStampedModel):
    """Coop membership of one account: number, status, shares and role."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="member")
    number = models.CharField(
        max_length=16,
        unique=True,
        validators=[RegexValidator(r"^[0-9]{1,15}$", "A membership number is digits only.")],
        help_text="Membership number, e.g. 100042.",
    )
    name = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=16, choices=MemberStatus.choices, default=MemberStatus.APPLICANT)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    shares = models.PositiveIntegerField(default=1)
    joined_at = models.DateTimeField(null=True, blank=True, help_text="When the membership became active.")

    class Meta:
        ordering = ["number"]
        indexes = [models.Index(fields=["status"], name="member_status_idx")]

    def __str__(self) -> str:
        return f"{self.number} {self.name or self.user.email}"

    @property
    def is_active_member(self) -> bool:
        return self.status == MemberStatus.ACTIVE


class MemberStatusChange(models.Model):
    """History: every status move, who made it and when (append-only)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=MemberStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=MemberStatus.choices)
    changed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["changed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.member.number}: {self.from_status or '-'} -> {self.to_status}"


class ApiToken(models.Model):
    """A personal access token: shown once at creation, stored as its SHA-256."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
