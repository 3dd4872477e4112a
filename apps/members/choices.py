"""Membership statuses and roles, with the allowed status transitions declared once."""

from django.db import models


class MemberStatus(models.TextChoices):
    APPLICANT = "applicant", "Applicant"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    LEFT = "left", "Left"


STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    MemberStatus.APPLICANT: frozenset({MemberStatus.ACTIVE, MemberStatus.LEFT}),
    MemberStatus.ACTIVE: frozenset({MemberStatus.SUSPENDED, MemberStatus.LEFT}),
    MemberStatus.SUSPENDED: frozenset({MemberStatus.ACTIVE, MemberStatus.LEFT}),
    MemberStatus.LEFT: frozenset(),
}


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    OPERATOR = "operator", "Operator"
    BILLING = "billing", "Billing (utility)"
    ADMIN = "admin", "Admin"
