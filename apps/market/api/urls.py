from django.urls import path

from apps.market.api import views

urlpatterns = [
    path("market/intervals/", views.IntervalListView.as_view(), name="api-market-intervals"),
    path("market/orders/", views.OrderListCreateView.as_view(), name="api-market-orders"),
    path("market/orders/<int:order_id>/", views.OrderDetailView.as_view(), name="api-market-order"),
    path("market/trades/", views.TradeListView.as_view(), name="api-market-trades"),
    path("market/results/<str:interval_start>/", views.ResultView.as_view(), name="api-market-result"),
    path("market/tariffs/", views.TariffView.as_view(), name="api-market-tariff"),
    path("market/tariffs/dynamic/", views.DynamicPriceView.as_view(), name="api-market-dynamic-prices"),
]
