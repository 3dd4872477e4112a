from django.contrib import admin

from apps.assets.models import DerAsset


@admin.register(DerAsset)
class DerAssetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "member", "meter", "rated_power_w", "capacity_wh", "flexible")
    list_filter = ("kind", "flexible", "meter__connection_point__feeder")
    search_fields = ("name", "member__number", "member__user__email", "meter__serial")
    list_select_related = ("member__user", "meter")
    autocomplete_fields = ("member", "meter")
