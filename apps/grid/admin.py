from django.contrib import admin

from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer


@admin.register(Substation)
class SubstationAdmin(admin.ModelAdmin):
    list_display = ("name", "rated_power_w", "created_at")
    search_fields = ("name",)


@admin.register(Transformer)
class TransformerAdmin(admin.ModelAdmin):
    list_display = ("name", "substation", "rated_power_w")
    list_filter = ("substation",)
    search_fields = ("name", "substation__name")


@admin.register(Feeder)
class FeederAdmin(admin.ModelAdmin):
    list_display = ("name", "transformer", "rated_power_w")
    list_filter = ("transformer__substation", "transformer")
    search_fields = ("name", "transformer__name")


@admin.register(ConnectionPoint)
class ConnectionPointAdmin(admin.ModelAdmin):
    list_display = ("code", "feeder", "capacity_w", "address")
    list_filter = ("feeder",)
    search_fields = ("code", "address", "feeder__name")
    list_select_related = ("feeder",)
