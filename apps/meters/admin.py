from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.meters.models import IntervalCorrection, Meter, ReadingRejection
from apps.meters.services import meter_key_rotate


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ("serial", "member", "role", "connection_point", "installed_at", "removed_at", "key_prefix")
    list_filter = ("role", "bidirectional", "connection_point__feeder")
    search_fields = ("serial", "member__number", "member__user__email", "connection_point__code")
    list_select_related = ("member__user", "connection_point")
    autocomplete_fields = ("member", "connection_point", "parent")
    readonly_fields = ("key_prefix", "key_rotated_at")
    actions = ["rotate_key"]

    @admin.action(description="Issue a new device key (shown once)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Meter]) -> None:
        for meter in queryset.order_by("pk"):
            key = meter_key_rotate(meter=meter)
            messages.warning(request, f"New device key for {meter.serial} (shown once): {key}")


@admin.register(ReadingRejection)
class ReadingRejectionAdmin(admin.ModelAdmin):
    """Refused readings, for operators tracing a misbehaving meter (read-only)."""

    list_display = ("received_at", "serial", "ts", "code", "message")
    list_filter = ("code",)
    search_fields = ("serial",)
    date_hierarchy = "received_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(IntervalCorrection)
class IntervalCorrectionAdmin(admin.ModelAdmin):
    """Stored interval energy that changed (estimates replaced), as settlement sees it (read-only)."""

    list_display = ("created_at", "meter", "interval_start", "old_import_wh", "new_import_wh", "old_estimated")
    search_fields = ("meter__serial",)
    list_select_related = ("meter",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
