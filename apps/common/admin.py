from django.contrib import admin

from apps.common.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "last_seen", "count")
    readonly_fields = ("name", "last_seen", "count")
