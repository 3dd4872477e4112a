from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.meters.models import Meter
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
