from django.contrib import admin

from apps.common.admin import ReadOnlyModelAdmin
from apps.settlement.models import MemberSettlement, RuleSet, SettledInterval


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyModelAdmin):
    list_display = ("version", "name", "created_at")


@admin.register(SettledInterval)
class SettledIntervalAdmin(ReadOnlyModelAdmin):
    list_display = ("interval_start", "revision", "estimated", "rule_version", "first_settled_at")
    list_filter = ("estimated", "rule_version")
    date_hierarchy = "interval_start"


@admin.register(MemberSettlement)
class MemberSettlementAdmin(ReadOnlyModelAdmin):
    list_display = (
        "interval_start", "member", "revision", "current", "estimated", "import_wh", "export_wh",
        "p2p_bought_wh", "p2p_sold_wh", "total",
    )  # fmt: skip
    list_filter = ("current", "estimated", "rule_version")
    search_fields = ("member__number",)
    list_select_related = ("member",)
    date_hierarchy = "interval_start"
