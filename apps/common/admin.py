from django.contrib import admin
from django.http import HttpRequest

from apps.common.models import Heartbeat


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """For records only a service writes (clearing, settlement): the admin is for reading."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "last_seen", "count")
