from django.contrib import admin

from apps.common.admin import ReadOnlyModelAdmin
from apps.market.models import (
    ClearingResult,
    DynamicPrice,
    Interval,
    Order,
    OrderEvent,
    TariffSchedule,
    Trade,
    TradingPreference,
)


@admin.register(TariffSchedule)
class TariffScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "name", "priority", "valid_from", "valid_until", "weekdays", "start_time", "end_time",
        "retail_price", "feed_in_price", "imbalance_price", "network_fee", "coop_fee",
    )  # fmt: skip
    list_filter = ("valid_from",)
    search_fields = ("name",)


@admin.register(DynamicPrice)
class DynamicPriceAdmin(admin.ModelAdmin):
    list_display = ("interval_start", "retail_price", "feed_in_price", "imbalance_price", "source")
    date_hierarchy = "interval_start"
    search_fields = ("source",)


@admin.register(Interval)
class IntervalAdmin(ReadOnlyModelAdmin):
    list_display = ("start", "state", "gate_closure", "retail_price", "feed_in_price")
    list_filter = ("state",)
    date_hierarchy = "start"


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at", "quantity_wh", "limit_price", "detail")


@admin.register(Order)
class OrderAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "member", "interval", "side", "quantity_wh", "limit_price", "status", "filled_wh", "source")
    list_filter = ("status", "side", "source")
    search_fields = ("member__number", "member__user__email")
    list_select_related = ("member__user", "interval")
    inlines = [OrderEventInline]


@admin.register(ClearingResult)
class ClearingResultAdmin(ReadOnlyModelAdmin):
    list_display = ("interval", "mechanism", "price", "volume_wh", "trades_count", "bids_wh", "offers_wh")
    list_filter = ("mechanism",)
    list_select_related = ("interval",)


@admin.register(Trade)
class TradeAdmin(ReadOnlyModelAdmin):
    list_display = ("interval", "buyer", "seller", "quantity_wh", "buyer_price", "seller_price", "buyer_amount")
    search_fields = ("buyer__number", "seller__number")
    list_select_related = ("interval", "buyer", "seller")


@admin.register(TradingPreference)
class TradingPreferenceAdmin(admin.ModelAdmin):
    list_display = ("member", "enabled", "sell_surplus", "buy_deficit", "sell_min_price", "buy_max_price")
    list_filter = ("enabled",)
    search_fields = ("member__number",)
