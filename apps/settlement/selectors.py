"""Reads of settlements, scoped to the member who asks."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDay

from apps.members.models import Member
from apps.settlement.models import MemberSettlement, RuleSet

LINE_FIELDS = (
    "import_wh", "export_wh", "p2p_bought_wh", "p2p_sold_wh", "grid_import_wh", "grid_export_wh",
    "p2p_cost", "p2p_revenue", "grid_cost", "grid_credit", "fees", "total",
)  # fmt: skip


def settlements_for_member(
    *, member: Member, interval_start: dt.datetime | None = None, start_from: dt.datetime | None = None
) -> QuerySet[MemberSettlement]:
    """The member's standing settlements (current revision), newest first."""
    qs = MemberSettlement.objects.filter(member=member, current=True)
    if interval_start is not None:
        qs = qs.filter(interval_start=interval_start)
    if start_from is not None:
        qs = qs.filter(interval_start__gte=start_from)
    return qs.order_by("-interval_start")


def settlement_days_for_member(*, member: Member, start_from: dt.datetime, tz: dt.tzinfo) -> list[dict]:
    """Per day (in the coop's time zone): the sums of the member's standing settlement lines."""
    rows = (
        MemberSettlement.objects.filter(member=member, current=True, interval_start__gte=start_from)
        .annotate(day=TruncDay("interval_start", tzinfo=tz))
        .values("day")
        .annotate(**{name: Sum(name) for name in LINE_FIELDS})
        .order_by("-day")
    )
    return [dict(row) for row in rows]


def rule_set_get(*, version: int) -> RuleSet | None:
    return RuleSet.objects.filter(version=version).first()
