from django.contrib import admin

from apps.settlement.models import MemberSettlement, RuleSet, SettledInterval


class ReadOnlyAdmin(admin.ModelAdmin):
    """Settlements are written by the settlement services only; the admin is for audits."""

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyAdmin):
    list_display = ("version", "name", "created_at")


@admin.register(SettledInterval)
class SettledIntervalAdmin(ReadOnlyAdmin):
    list_display = ("interval_start", "revision", "estimated", "rule_version", "first_settled_at")
    list_filter = ("estimated", "rule_version")
    date_hierarchy = "interval_start"


@admin.register(MemberSettlement)
class MemberSettlementAdmin(ReadOnlyAdmin):
    list_display = (
        "interval_start", "member", "revision", "current", "estimated", "import_wh", "export_wh",
        "p2p_bought_wh", "p2p_sold_wh", "total",
    )  # fmt: skip
    list_filter = ("current", "estimated", "rule_version")
    search_fields = ("member__number",)
    list_select_related = ("member",)
    date_hierarchy = "interval_start"
